/* callkpi wallboard. Vanilla ES2020, no framework, no build step, no external resources.
 *
 * Data: the HTTP API under api/v1/ (relative to the page). Live: EventSource on api/v1/stream;
 * every `update` schedules a debounced refetch; a 10 s poll is the fallback. The access token,
 * when the page URL carries ?token=..., goes to every fetch as `Authorization: Bearer` and to
 * the EventSource as ?token= (EventSource cannot set headers).
 *
 * Test hooks (docs/wallboard.md): every big number has data-kpi and data-value (the raw API
 * number, "" for null), agent grid rows have data-agent-id, campaign rows data-campaign-id,
 * and <body data-updated-at> is set after each render in which every request succeeded
 * (<body data-requested-at>: when that render's requests were sent).
 */
(() => {
  "use strict";

  const REFRESH_DEBOUNCE_MS = 300;
  const MIN_REFRESH_INTERVAL_MS = 1000;
  const POLL_MS = 10000;
  const SCOPES_EVERY_MS = 60000;
  const FETCH_TIMEOUT_MS = 10000;
  const MAX_BACKOFF_MS = 15000;
  const LEADERS = 10;
  const MAX_PAGES = 100;
  /** The agent tiles' and leader boards' KPIs: the grid is asked for these alone (the whole
   * catalog for 5,000 agents cost most of a refresh's server time). */
  const AGENT_KPIS = "handled,aht_seconds,calls_per_agent_hour,conversions,occupancy";
  const STATE_ORDER = { on_call: 0, wrap_up: 1, available: 2, paused: 3, logged_out: 4 };
  const STATE_LABEL = { available: "available", on_call: "on call", wrap_up: "wrap-up",
    paused: "paused", logged_out: "logged out" };
  const SEVERITY = { critical: 3, warn: 2, ok: 1 };

  // ------------------------------------------------------------------ URL state
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token") || "";
  const kiosk = params.get("kiosk") === "1";
  const state = {
    scope: params.get("scope") || "center",
    view: params.get("view") === "table" ? "table" : "tiles",
    sort: params.get("sort") || "state",
    dir: params.get("dir") === "desc" ? "desc" : (params.get("dir") === "asc" ? "asc" : null),
    data: {},
    scopesAt: 0,
    agentsFetchedAt: 0, // client clock when the agent list arrived (seconds_in_state is relative to it)
    agentsVersion: 0, // bumped on every new agent list; the grid is rebuilt only then
    agentsRendered: -1,
  };

  function saveUrl() {
    const p = new URLSearchParams(window.location.search);
    p.set("scope", state.scope);
    if (state.view === "table") p.set("view", "table"); else p.delete("view");
    p.set("sort", state.sort);
    p.set("dir", sortDir());
    const url = window.location.pathname + "?" + p.toString() + window.location.hash;
    try { window.history.replaceState(null, "", url); } catch (e) { /* file:// etc. */ }
  }

  // ------------------------------------------------------------------ helpers
  const $ = (id) => document.getElementById(id);

  function num(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }
  function get(obj, ...path) {
    let o = obj;
    for (const k of path) {
      if (o === null || o === undefined || typeof o !== "object") return undefined;
      o = o[k];
    }
    return o;
  }
  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }
  function setAttr(node, name, value) {
    if (!node) return;
    if (value === null || value === undefined) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
    } else if (node.getAttribute(name) !== String(value)) {
      node.setAttribute(name, String(value));
    }
  }
  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const dec1Fmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const dec2Fmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function pct(v) {
    const n = num(v);
    return n === null ? "—" : (n * 100).toFixed(1) + "%";
  }
  function dur(v) {
    const n = num(v);
    if (n === null) return "—";
    const s = Math.max(0, Math.floor(n));
    const m = Math.floor(s / 60);
    const r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  function count(v) {
    const n = num(v);
    return n === null ? "—" : intFmt.format(n);
  }
  function money(v, decimals) {
    const n = num(v);
    if (n === null) return "—";
    return decimals ? dec2Fmt.format(n) : intFmt.format(n);
  }
  /** Format any KPI by its name (catalog naming conventions). */
  function fmtKpi(name, v) {
    if (num(v) === null) return "—";
    if (/(_rate|^occupancy|^roi|_ratio|attainment)$/.test(name) || /_rate_/.test(name)) return pct(v);
    if (/_seconds$/.test(name)) return dur(v);
    if (/^(revenue|cost|cost_per_call|cost_per_lead|avg_order_value)$/.test(name)) return money(v, true);
    if (/^calls_per_/.test(name)) return dec1Fmt.format(v);
    if (/^(csat_avg|avg_mos|avg_lead_score)$/.test(name)) return dec2Fmt.format(v);
    return Number.isInteger(v) ? intFmt.format(v) : dec1Fmt.format(v);
  }
  function dataValue(v) {
    const n = num(v);
    return n === null ? "" : String(n);
  }

  // ------------------------------------------------------------------ API
  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function apiUrl(path, query) {
    const u = new URL("api/v1/" + path, document.baseURI);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null) u.searchParams.set(k, v);
    }
    return u;
  }

  async function api(path, query) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = { Accept: "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      const res = await fetch(apiUrl(path, query), { headers, signal: ctrl.signal, cache: "no-store" });
      if (!res.ok) {
        let msg = res.statusText;
        try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
        throw new HttpError(res.status, path + ": " + res.status + " " + msg);
      }
      return await res.json();
    } finally {
      clearTimeout(timer);
    }
  }

  /** A paged list (`/agents`, `/campaigns`: at most the server's page size per request): every
   * page, in order, joined under `key`. */
  async function apiAll(path, query, key) {
    const first = await api(path, query);
    let page = first;
    for (let n = 0; n < MAX_PAGES && page && Number.isInteger(page.next_offset); n++) {
      page = await api(path, { ...query, offset: page.next_offset });
      if (Array.isArray(page[key])) first[key] = first[key].concat(page[key]);
    }
    return first;
  }

  // ------------------------------------------------------------------ scopes the token may read
  function scopeAllowed(scope) {
    const s = state.data.scopes;
    if (!s) return true;
    if (scope === "center") return s.center !== false;
    const [kind, ...rest] = scope.split(":");
    const ids = s[kind];
    return !Array.isArray(ids) || kind === "agent" || ids.includes(rest.join(":"));
  }
  /** A token restricted to some campaigns or teams cannot read the center: open on the first
   * scope it may read instead (the picker lists only those). */
  function firstAllowedScope() {
    if (scopeAllowed(state.scope)) return state.scope;
    const s = state.data.scopes || {};
    for (const kind of ["campaign", "team"]) {
      if (Array.isArray(s[kind]) && s[kind].length) return kind + ":" + s[kind][0];
    }
    return state.scope;
  }

  // ------------------------------------------------------------------ connection indicator
  let streamOpen = false;
  let lastError = null;

  function setConn(kind, text) {
    const c = $("conn");
    setAttr(c, "data-state", kind);
    setText(c, text);
  }
  function showConn() {
    if (lastError && lastError.status === 401) {
      setConn("unauthorized", "unauthorized: open the page with ?token=…");
    } else if (!streamOpen) {
      setConn("reconnecting", "reconnecting…");
    } else if (lastError) {
      setConn("error", "data error: " + (lastError.message || "request failed"));
    } else {
      setConn("live", "live");
    }
  }

  // ------------------------------------------------------------------ refresh scheduling
  let inFlight = false;
  let pending = false;
  let timer = null;
  let lastRefreshAt = 0;
  let generation = 0;

  function scheduleRefresh(delay) {
    if (timer !== null) return;
    const wait = Math.max(delay, MIN_REFRESH_INTERVAL_MS - (Date.now() - lastRefreshAt), 0);
    timer = setTimeout(() => { timer = null; refresh(); }, wait);
  }

  async function refresh() {
    if (inFlight) { pending = true; return; }
    inFlight = true;
    if (!state.data.scopes) {
      try {
        state.data.scopes = await api("scopes");
        state.scopesAt = Date.now();
      } catch (e) { /* asked again with the others below */ }
      const allowed = firstAllowedScope();
      if (allowed !== state.scope) { state.scope = allowed; saveUrl(); }
    }
    const gen = generation;
    const requestedAt = new Date().toISOString();
    const scope = state.scope;
    const reqs = {
      kpis: api("kpis", { scope, window: "today" }),
      live: api("live", { scope }),
      agents: apiAll("agents", { scope, window: "today", kpis: AGENT_KPIS }, "agents"),
      targets: api("targets"),
      compliance: api("compliance"),
      campaigns: apiAll("campaigns", { window: "today" }, "campaigns"),
    };
    if (!state.data.scopes || Date.now() - state.scopesAt > SCOPES_EVERY_MS) reqs.scopes = api("scopes");
    const keys = Object.keys(reqs);
    try {
      const results = await Promise.allSettled(keys.map((k) => reqs[k]));
      if (gen !== generation) return; // the scope changed meanwhile: a fresh refresh follows
      let error = null;
      results.forEach((r, i) => {
        if (r.status === "fulfilled" && r.value && typeof r.value === "object") {
          state.data[keys[i]] = r.value;
          if (keys[i] === "scopes") state.scopesAt = Date.now();
          if (keys[i] === "agents") { state.agentsFetchedAt = Date.now(); state.agentsVersion += 1; }
        } else if (r.status === "rejected") {
          if (!error || r.reason.status === 401) error = r.reason;
        }
      });
      lastError = error;
      render();
      if (!error) {
        document.body.setAttribute("data-requested-at", requestedAt);
        document.body.setAttribute("data-updated-at", new Date().toISOString());
      }
    } catch (e) {
      lastError = e;
      console.error(e); // eslint-disable-line no-console
    } finally {
      inFlight = false;
      lastRefreshAt = Date.now();
      showConn();
      if (pending) { pending = false; scheduleRefresh(0); }
    }
  }

  // ------------------------------------------------------------------ live stream
  let es = null;
  let backoff = 1000;

  function connectStream() {
    if (es) { es.close(); es = null; }
    if (typeof window.EventSource !== "function") return; // the poll still works
    const u = apiUrl("stream", token ? { token } : {});
    es = new EventSource(u.toString());
    es.addEventListener("open", () => {
      streamOpen = true;
      backoff = 1000;
      showConn();
      scheduleRefresh(0); // we may have missed updates while disconnected
    });
    es.addEventListener("update", () => scheduleRefresh(REFRESH_DEBOUNCE_MS));
    es.addEventListener("error", () => {
      streamOpen = false;
      showConn();
      // CONNECTING: the browser retries by itself. CLOSED (an HTTP error, e.g. while the
      // server restarts behind a proxy): reconnect ourselves with backoff.
      if (es && es.readyState === EventSource.CLOSED) {
        es.close();
        es = null;
        setTimeout(connectStream, backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    });
  }

  // ------------------------------------------------------------------ render: targets
  function targetsFor(kpi, scope) {
    const list = get(state.data, "targets", "targets");
    if (!Array.isArray(list)) return [];
    return list.filter((t) => t && t.kpi === kpi && t.scope === scope);
  }
  function worstStatus(statuses) {
    let best = null;
    for (const s of statuses) {
      if (SEVERITY[s] && (!best || SEVERITY[s] > SEVERITY[best])) best = s;
    }
    return best;
  }
  function targetLine(t) {
    const goal = fmtKpi(t.kpi, t.goal);
    let s = "goal " + goal + " (" + (t.window || "?") + ")";
    if (num(t.projected) !== null) s += " · proj " + fmtKpi(t.kpi, t.projected);
    return s;
  }

  // ------------------------------------------------------------------ render: big numbers
  function setBig(kpi, value, text) {
    const node = $("kpi-" + kpi);
    if (!node) return;
    setAttr(node, "data-value", dataValue(value));
    setText(node, text);
    const card = $("card-" + kpi);
    if (!card) return;
    const ts = targetsFor(kpi, state.scope);
    const status = worstStatus(ts.map((t) => t.status));
    setAttr(card, "data-status", status);
    setAttr(node, "data-status", status);
    setAttr(card, "title", ts.length ? ts.map((t) => (t.name || t.kpi) + ": " + (t.status || "?") + ", " + targetLine(t)).join("\n") : null);
    const sub = card.querySelector("[data-target-for]");
    if (sub) setText(sub, ts.length === 1 ? targetLine(ts[0]) : (ts.length > 1 ? ts.length + " targets" : ""));
  }
  function setSub(kpi, value, text, status) {
    const node = $("kpi-" + kpi);
    if (!node) return;
    setAttr(node, "data-value", dataValue(value));
    setText(node, text);
    setAttr(node, "data-status", status || null);
  }

  function complianceFor(scope) {
    const list = get(state.data, "compliance", "campaigns");
    if (!Array.isArray(list)) return null;
    if (scope.startsWith("campaign:")) {
      const id = scope.slice("campaign:".length);
      return list.find((e) => e && e.campaign_id === id && !e.group) || null;
    }
    if (scope === "center") {
      // The tightest budget anywhere: the entry with the least headroom.
      let best = null;
      for (const e of list) {
        if (!e || num(e.abandon_headroom) === null) continue;
        if (!best || e.abandon_headroom < best.abandon_headroom) best = e;
      }
      return best;
    }
    return null;
  }

  function renderBig() {
    const k = get(state.data, "kpis", "kpis") || {};
    // a source without answering-machine detection: the connect rate cannot be known, so the
    // card shows the answer rate and says why (the API's notes)
    const why = get(state.data, "kpis", "notes", "connect_rate");
    const card = $("card-connect_rate");
    const label = card ? card.querySelector(".label") : null;
    if (label) setText(label, why ? "Answer rate today" : "Connect rate today");
    if (why) setBig("connect_rate", k.answer_rate, pct(k.answer_rate));
    else setBig("connect_rate", k.connect_rate, pct(k.connect_rate));
    if (why && card) setAttr(card, "title", "Connect rate " + why);
    setAttr(card, "data-substitute", why ? "answer_rate" : null);
    setBig("abandon_rate", k.abandon_rate, pct(k.abandon_rate));
    setBig("aht_seconds", k.aht_seconds, dur(k.aht_seconds));
    setBig("conversions", k.conversions, count(k.conversions));
    setBig("revenue", k.revenue, money(k.revenue, false));
    setSub("conversion_rate", k.conversion_rate, "rate " + pct(k.conversion_rate));
    setSub("roi", k.roi, "ROI " + pct(k.roi));

    const c = complianceFor(state.scope);
    const where = c && state.scope === "center" ? " (" + c.campaign_id + ")" : "";
    setSub("abandon_headroom", c ? c.abandon_headroom : null,
      "headroom " + (c ? count(c.abandon_headroom) + where : "—"), c ? c.status : null);
    const headroomNode = $("kpi-abandon_headroom");
    setAttr(headroomNode, "data-campaign-id", c ? c.campaign_id : null);
    setSub("us_abandon_rate_30d", c ? c.us_abandon_rate_30d : null,
      "30d " + pct(c ? c.us_abandon_rate_30d : null) + (c && num(c.limit) !== null ? " / " + pct(c.limit) : ""),
      c ? c.status : null);

    const live = state.data.live || {};
    const calls = live.calls || {};
    setBig("calls_waiting", calls.waiting, count(calls.waiting));
    setSub("longest_wait_seconds", calls.longest_wait_seconds, "longest " + dur(calls.longest_wait_seconds));
    setSub("calls_ringing", calls.ringing, "ringing " + count(calls.ringing));
    setSub("calls_talking", calls.talking, "talking " + count(calls.talking));
    const by = get(live, "agents", "by_state") || {};
    for (const s of ["available", "on_call", "wrap_up", "paused"]) {
      const v = num(by[s]) === null ? (live.agents ? 0 : null) : by[s];
      setSub("agents_" + s, v, count(v));
    }
    const reasons = get(live, "agents", "paused_by_reason") || {};
    const parts = Object.entries(reasons)
      .filter(([, n]) => num(n) !== null && n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => r + " " + n);
    setText($("paused-reasons"), parts.length ? "paused: " + parts.join(" · ") : "");
  }

  // ------------------------------------------------------------------ render: agent grid
  const agents = new Map(); // agent_id -> { root, parts, rec, sinceClient }
  let order = [];

  function makeAgent(id) {
    const root = el("div", "agent");
    root.setAttribute("data-agent-id", id);
    root.setAttribute("role", "row");
    const parts = {
      id: el("span", "a-id", id),
      team: el("span", "a-team"),
      state: el("span", "a-state"),
      time: el("span", "a-time"),
      stats: el("span", "a-stats"),
      handled: el("span", "a-handled"),
      aht: el("span", "a-aht"),
      cph: el("span", "a-cph"),
      conv: el("span", "a-conv"),
      occ: el("span", "a-occ"),
    };
    parts.handled.setAttribute("data-kpi", "handled");
    parts.aht.setAttribute("data-kpi", "aht_seconds");
    parts.cph.setAttribute("data-kpi", "calls_per_agent_hour");
    parts.conv.setAttribute("data-kpi", "conversions");
    parts.occ.setAttribute("data-kpi", "occupancy");
    parts.time.setAttribute("data-kpi", "seconds_in_state");
    parts.stats.append(parts.handled, parts.aht, parts.cph, parts.conv, parts.occ);
    root.append(parts.id, parts.team, parts.state, parts.time, parts.stats);
    return { root, parts, rec: null, sinceClient: 0 };
  }

  function updateAgent(a, rec, fetchedAt) {
    a.rec = rec;
    const k = rec.kpis || {};
    const st = typeof rec.state === "string" ? rec.state : "logged_out";
    setAttr(a.root, "data-state", st);
    setAttr(a.root, "data-team-id", rec.team_id == null ? null : rec.team_id);
    setText(a.parts.team, rec.team_id == null ? "" : String(rec.team_id));
    const label = st === "paused" && rec.reason ? "paused: " + rec.reason : (STATE_LABEL[st] || st);
    setText(a.parts.state, st === "paused" && rec.reason ? String(rec.reason) : (STATE_LABEL[st] || st));
    if (a.root.title !== rec.agent_id + " · " + label) a.root.title = rec.agent_id + " · " + label;
    const secs = num(rec.seconds_in_state);
    a.sinceClient = secs === null ? null : fetchedAt - secs * 1000;
    setAttr(a.parts.time, "data-value", dataValue(secs));
    tickAgent(a, Date.now());
    const cells = [
      [a.parts.handled, k.handled, count(k.handled)],
      [a.parts.aht, k.aht_seconds, dur(k.aht_seconds)],
      [a.parts.cph, k.calls_per_agent_hour, num(k.calls_per_agent_hour) === null ? "—" : dec1Fmt.format(k.calls_per_agent_hour)],
      [a.parts.conv, k.conversions, count(k.conversions)],
      [a.parts.occ, k.occupancy, pct(k.occupancy)],
    ];
    for (const [node, v, text] of cells) {
      setAttr(node, "data-value", dataValue(v));
      setText(node, text);
    }
  }

  function tickAgent(a, now) {
    setText(a.parts.time, a.sinceClient === null ? "—" : dur((now - a.sinceClient) / 1000));
  }

  function sortDir() {
    if (state.dir) return state.dir;
    // Natural directions: names ascending, numbers descending (biggest first).
    return ["agent_id", "team_id", "state"].includes(state.sort) ? "asc" : "desc";
  }

  function sortValue(a, key) {
    const r = a.rec || {};
    switch (key) {
      case "agent_id": return String(r.agent_id || "");
      case "team_id": return r.team_id == null ? "" : String(r.team_id);
      case "state": return STATE_ORDER[r.state] === undefined ? 9 : STATE_ORDER[r.state];
      case "seconds_in_state": return a.sinceClient === null ? null : -a.sinceClient;
      default: return num(get(r, "kpis", key));
    }
  }

  function compareAgents(x, y) {
    const key = state.sort;
    const dir = sortDir() === "asc" ? 1 : -1;
    const a = sortValue(x, key);
    const b = sortValue(y, key);
    if (a === null && b !== null) return 1; // missing values last, whatever the direction
    if (b === null && a !== null) return -1;
    let c = 0;
    if (a !== null && b !== null) c = typeof a === "string" ? a.localeCompare(b, undefined, { numeric: true }) : a - b;
    c *= dir;
    if (c === 0 && key === "state") {
      // Within a state, longest in state first (whatever the direction).
      const sa = x.sinceClient === null ? Infinity : x.sinceClient;
      const sb = y.sinceClient === null ? Infinity : y.sinceClient;
      c = sa === sb ? 0 : (sa < sb ? -1 : 1);
    }
    // Ties: by agent id, ascending.
    if (c === 0) c = String(x.rec.agent_id).localeCompare(String(y.rec.agent_id), undefined, { numeric: true });
    return c;
  }

  function placeAgents() {
    const grid = $("agent-grid");
    const sorted = Array.from(agents.values()).sort(compareAgents);
    const ids = sorted.map((a) => a.rec.agent_id);
    const same = ids.length === order.length && ids.every((id, i) => id === order[i]);
    if (!same) {
      const frag = document.createDocumentFragment();
      for (const a of sorted) frag.appendChild(a.root);
      grid.appendChild(frag); // moves nodes; nothing is recreated
      order = ids;
    }
  }

  function renderAgents() {
    const list = get(state.data, "agents", "agents");
    if (!Array.isArray(list) || state.agentsRendered === state.agentsVersion) return;
    state.agentsRendered = state.agentsVersion;
    const fetchedAt = state.agentsFetchedAt || Date.now();
    const seen = new Set();
    for (const rec of list) {
      if (!rec || rec.agent_id === undefined || rec.agent_id === null) continue;
      const id = String(rec.agent_id);
      if (seen.has(id)) continue;
      seen.add(id);
      let a = agents.get(id);
      if (!a) { a = makeAgent(id); agents.set(id, a); }
      updateAgent(a, { ...rec, agent_id: id }, fetchedAt);
    }
    for (const [id, a] of agents) {
      if (!seen.has(id)) { a.root.remove(); agents.delete(id); }
    }
    placeAgents();
    $("agent-empty").hidden = agents.size > 0;
    fitTiles();
  }

  /** The start every agent id shares, up to its last separator ("agent-0001".."agent-0500":
   * "agent-"), or "" when the ids share none or one id would be left empty. */
  function sharedPrefix(ids) {
    if (ids.length < 2) return "";
    let p = ids[0];
    for (const id of ids) {
      while (p && !id.startsWith(p)) p = p.slice(0, -1);
      if (!p) return "";
    }
    const m = p.match(/^.*[-_.:/ ]/);
    if (!m || ids.some((id) => id.length === m[0].length)) return "";
    return m[0];
  }

  /** Tiles too narrow for a whole id show it without the shared prefix, so that the part that
   * tells agents apart stays readable (the tile's tooltip has the whole id). */
  function labelAgents() {
    const short = state.view === "tiles" && $("agent-grid").classList.contains("compact");
    const cut = short ? sharedPrefix(Array.from(agents.keys())).length : 0;
    for (const [id, a] of agents) setText(a.parts.id, id.slice(cut));
  }

  /** Size tiles so that every agent fits the panel (500 agents on a 1080p screen). */
  function fitTiles() {
    const grid = $("agent-grid");
    if (state.view !== "tiles") { labelAgents(); return; }
    if (window.innerWidth <= 900) { // narrow screens scroll the page: default tile size
      for (const p of ["--tile-w", "--tile-h", "--tile-font"]) grid.style.removeProperty(p);
      grid.classList.remove("compact", "tiny");
      labelAgents();
      return;
    }
    const n = agents.size;
    // clientWidth rounds a fractional width up: floor the real box and keep a pixel spare.
    const box = grid.getBoundingClientRect();
    const W = Math.floor(box.width) - 1;
    const H = Math.floor(box.height) - 1;
    if (!n || !W || !H) return;
    const gap = 3;
    let chosen = null;
    for (let w = 200; w >= 46; w -= 2) {
      const h = Math.max(18, Math.round(w * 0.42));
      const cols = Math.max(1, Math.floor((W + gap) / (w + gap)));
      const rows = Math.ceil(n / cols);
      if (rows * (h + gap) - gap <= H) { chosen = { w, h }; break; }
    }
    // Fits: no scrollbar (a transient one would steal width). Does not fit: smallest tiles, scroll.
    grid.style.overflowY = chosen ? "hidden" : "auto";
    if (!chosen) chosen = { w: 46, h: 19 };
    const cols = Math.max(1, Math.floor((W + gap) / (chosen.w + gap)));
    const w = Math.floor((W - (cols - 1) * gap) / cols); // stretch to the full width
    grid.style.setProperty("--tile-w", w + "px");
    grid.style.setProperty("--tile-h", chosen.h + "px");
    grid.style.setProperty("--tile-font", Math.max(9, Math.min(16, Math.round(chosen.h * 0.36))) + "px");
    grid.classList.toggle("compact", w < 96);
    grid.classList.toggle("tiny", chosen.h < 26);
    labelAgents();
  }

  function renderSortHeader() {
    for (const b of document.querySelectorAll("#agent-head button[data-sort]")) {
      const key = b.getAttribute("data-sort");
      setAttr(b, "aria-sort", key === state.sort ? (sortDir() === "asc" ? "ascending" : "descending") : null);
    }
  }

  // ------------------------------------------------------------------ render: side panels
  function renderLeaders() {
    const list = (get(state.data, "agents", "agents") || []).filter((r) => r && r.agent_id != null);
    const k = (r, name) => num(get(r, "kpis", name)) || 0;
    const byConv = list.filter((r) => k(r, "conversions") > 0)
      .sort((a, b) => k(b, "conversions") - k(a, "conversions") || k(b, "handled") - k(a, "handled")
        || String(a.agent_id).localeCompare(String(b.agent_id)))
      .slice(0, LEADERS);
    const byHandled = list.filter((r) => k(r, "handled") > 0)
      .sort((a, b) => k(b, "handled") - k(a, "handled") || k(b, "conversions") - k(a, "conversions")
        || String(a.agent_id).localeCompare(String(b.agent_id)))
      .slice(0, LEADERS);
    fillLeaders($("lead-conversions"), byConv, "conversions", "no conversions yet");
    fillLeaders($("lead-handled"), byHandled, "handled", "no handled calls yet");
  }

  function fillLeaders(ol, rows, kpi, emptyText) {
    const items = rows.map((r, i) => {
      const li = el("li");
      li.setAttribute("data-leader-id", String(r.agent_id));
      const rank = el("span", "rank", (i + 1) + ".");
      const who = el("span", "who", String(r.agent_id));
      const n = el("span", "num", count(get(r, "kpis", kpi)));
      n.setAttribute("data-kpi", kpi);
      n.setAttribute("data-value", dataValue(get(r, "kpis", kpi)));
      li.append(rank, who, n);
      return li;
    });
    if (!items.length) items.push(el("li", "none", emptyText));
    ol.replaceChildren(...items);
  }

  function renderCampaigns() {
    const rows = get(state.data, "campaigns", "campaigns");
    if (!Array.isArray(rows)) return;
    const comp = new Map();
    for (const e of get(state.data, "compliance", "campaigns") || []) {
      if (e && !e.group) comp.set(e.campaign_id, e);
    }
    const sorted = rows.filter((r) => r && r.campaign_id != null)
      .sort((a, b) => String(a.campaign_id).localeCompare(String(b.campaign_id), undefined, { numeric: true }));
    const trs = sorted.map((r) => {
      const k = r.kpis || {};
      const c = comp.get(r.campaign_id);
      const tr = el("tr");
      tr.setAttribute("data-campaign-id", String(r.campaign_id));
      const name = el("td", null, String(r.campaign_id));
      name.title = String(r.campaign_id);
      tr.appendChild(name);
      const cells = [
        ["dialed", k.dialed, count(k.dialed)],
        ["connect_rate", k.connect_rate, pct(k.connect_rate)],
        ["abandon_rate", k.abandon_rate, pct(k.abandon_rate)],
        ["abandon_headroom", c ? c.abandon_headroom : null, c ? count(c.abandon_headroom) : "—"],
        ["conversions", k.conversions, count(k.conversions)],
        ["revenue", k.revenue, money(k.revenue, false)],
      ];
      for (const [kpi, v, text] of cells) {
        const td = el("td", null, text);
        td.setAttribute("data-kpi", kpi);
        td.setAttribute("data-value", dataValue(v));
        const status = kpi === "abandon_headroom" ? (c && c.status) :
          worstStatus(targetsFor(kpi, "campaign:" + r.campaign_id).map((t) => t.status));
        if (status && SEVERITY[status] > 1) td.setAttribute("data-status", status);
        tr.appendChild(td);
      }
      if (c) tr.title = "30-day abandon " + pct(c.us_abandon_rate_30d) + " of " + pct(c.limit) +
        " · today (UK) " + pct(c.uk_abandon_rate_today) + " · projected " + pct(c.abandon_rate_projected);
      return tr;
    });
    $("campaign-table").tBodies[0].replaceChildren(...trs);
  }

  function renderBanner() {
    const items = [];
    for (const t of get(state.data, "targets", "targets") || []) {
      if (!t || (t.status !== "warn" && t.status !== "critical")) continue;
      const text = (t.name || t.kpi) + " · " + (t.scope || "") + ": " + fmtKpi(t.kpi, t.value) +
        " (goal " + fmtKpi(t.kpi, t.goal) + (num(t.projected) !== null ? ", projected " + fmtKpi(t.kpi, t.projected) : "") + ")";
      items.push({ sev: t.status, text, kind: "target", key: (t.name || "") + "|" + (t.scope || "") });
    }
    for (const c of get(state.data, "compliance", "campaigns") || []) {
      if (!c || (c.status !== "warn" && c.status !== "critical")) continue;
      const text = "Abandon " + (c.group ? "group " : "") + c.campaign_id + ": 30d " + pct(c.us_abandon_rate_30d) +
        ", today " + pct(c.uk_abandon_rate_today) + " (limit " + pct(c.limit) + ", headroom " + count(c.abandon_headroom) + ")";
      items.push({ sev: c.status, text, kind: "compliance", key: String(c.campaign_id) });
    }
    items.sort((a, b) => SEVERITY[b.sev] - SEVERITY[a.sev] || a.text.localeCompare(b.text));
    const lis = items.map((i) => {
      const li = el("li", i.sev, i.text);
      li.setAttribute("data-alert", i.kind);
      li.setAttribute("data-key", i.key);
      return li;
    });
    $("alerts").replaceChildren(...lis);
    const banner = $("banner");
    if (banner.hidden !== !lis.length) {
      banner.hidden = !lis.length;
    }
    fitBanner();
  }

  /** The banner keeps to a few lines (the board below must not jump); what does not fit, the
   * least severe entries, is hidden and counted in a last "+N more" entry (its tooltip lists them). */
  function fitBanner() {
    const banner = $("banner");
    const ul = $("alerts");
    const items = Array.from(ul.querySelectorAll("li[data-alert]"));
    for (const li of items) li.hidden = false;
    const old = ul.querySelector("li.more");
    if (old) old.remove();
    if (banner.hidden || banner.scrollHeight <= banner.clientHeight) return;
    const more = el("li", "more");
    ul.appendChild(more);
    for (let i = items.length - 1; i >= 0; i--) {
      items[i].hidden = true;
      more.textContent = "+" + (items.length - i) + " more";
      more.title = items.slice(i).map((li) => li.textContent).join("\n");
      if (banner.scrollHeight <= banner.clientHeight) break;
    }
  }

  function renderScopes() {
    const s = state.data.scopes || {};
    const sel = $("scope-picker");
    const wanted = s.center === false ? [] : [["center", "Center"]];
    const add = (kind, label) => {
      const ids = Array.isArray(s[kind]) ? s[kind].slice() : [];
      ids.sort((a, b) => String(a).localeCompare(String(b), undefined, { numeric: true }));
      for (const id of ids) wanted.push([kind + ":" + id, label + " " + id]);
    };
    add("campaign", "Campaign");
    add("team", "Team");
    if (!wanted.some(([v]) => v === state.scope)) wanted.push([state.scope, state.scope]);
    const current = Array.from(sel.options).map((o) => o.value + "\u0000" + o.textContent).join("\u0001");
    const next = wanted.map(([v, l]) => v + "\u0000" + l).join("\u0001");
    if (current !== next) {
      sel.replaceChildren(...wanted.map(([v, l]) => {
        const o = el("option", null, l);
        o.value = v;
        return o;
      }));
    }
    if (sel.value !== state.scope) sel.value = state.scope;
  }

  function renderScopeLabel() {
    const s = state.scope;
    const label = s === "center" ? "Whole center" : s.replace(/^(\w+):/, (m, k) => k.charAt(0).toUpperCase() + k.slice(1) + " ");
    setText($("scope-label"), label);
    document.title = label + " · wallboard";
    document.body.setAttribute("data-scope", s);
  }

  function render() {
    const parts = [renderScopes, renderScopeLabel, renderBig, renderAgents, renderSortHeader,
      renderLeaders, renderCampaigns, renderBanner];
    for (const part of parts) {
      try { part(); } catch (e) { console.error(e); } // eslint-disable-line no-console
    }
  }

  // ------------------------------------------------------------------ ticking clock
  function tick() {
    const now = Date.now();
    for (const a of agents.values()) tickAgent(a, now);
    setText($("clock"), new Date(now).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  }

  // ------------------------------------------------------------------ controls
  function setScope(scope) {
    if (!scope || scope === state.scope) return;
    state.scope = scope;
    generation += 1;
    // Drop the previous scope's numbers at once rather than show them under the new name.
    delete state.data.kpis;
    delete state.data.live;
    delete state.data.agents;
    for (const a of agents.values()) a.root.remove();
    agents.clear();
    order = [];
    state.agentsRendered = -1;
    saveUrl();
    render();
    document.body.setAttribute("data-updated-at", "");
    document.body.setAttribute("data-requested-at", "");
    scheduleRefresh(0);
  }

  function setView(view) {
    state.view = view === "table" ? "table" : "tiles";
    const grid = $("agent-grid");
    grid.classList.toggle("tiles", state.view === "tiles");
    grid.classList.toggle("table", state.view === "table");
    $("agent-head").classList.toggle("as-table", state.view === "table");
    if (state.view === "table") {
      grid.style.overflowY = "";
      grid.classList.remove("compact", "tiny");
      for (const p of ["--tile-w", "--tile-h", "--tile-font"]) grid.style.removeProperty(p);
    }
    for (const b of document.querySelectorAll(".view-toggle button")) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === state.view));
    }
    saveUrl();
    fitTiles();
  }

  function init() {
    if (kiosk) document.body.classList.add("kiosk");
    $("scope-picker").addEventListener("change", (e) => setScope(e.target.value));
    for (const b of document.querySelectorAll(".view-toggle button")) {
      b.addEventListener("click", () => setView(b.getAttribute("data-view")));
    }
    $("agent-head").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-sort]");
      if (!b) return;
      const key = b.getAttribute("data-sort");
      if (key === state.sort) state.dir = sortDir() === "asc" ? "desc" : "asc";
      else { state.sort = key; state.dir = null; }
      saveUrl();
      renderSortHeader();
      placeAgents();
    });
    // Refit whenever the panel changes size: window resize, the banner appearing, the big
    // numbers growing a line. Only the size matters, so a refit cannot loop.
    let fitQueued = false;
    const queueFit = () => {
      if (fitQueued) return;
      fitQueued = true;
      requestAnimationFrame(() => { fitQueued = false; fitTiles(); });
    };
    if (typeof window.ResizeObserver === "function") {
      let lastSize = "";
      new ResizeObserver((entries) => {
        const r = entries[entries.length - 1].contentRect;
        const size = Math.round(r.width) + "x" + Math.round(r.height);
        if (size !== lastSize) { lastSize = size; queueFit(); }
      }).observe($("agent-grid"));
    }
    window.addEventListener("resize", () => { queueFit(); fitBanner(); });
    setView(state.view);
    renderSortHeader();
    render();
    showConn();
    connectStream();
    refresh();
    setInterval(() => scheduleRefresh(0), POLL_MS);
    setInterval(tick, 1000);
    tick();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
