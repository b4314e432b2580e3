/* Trend sparklines under the wallboard's big numbers: today by 15 minutes (solid) and yesterday
 * (dashed) at the same local time of day, from GET /api/v1/series (window today / yesterday,
 * step 15m), drawn by the vendored uPlot. Rates are each slot's own rate; counts and sums
 * (conversions, revenue) run up through the day like the big number above them. Refetched at
 * most once a minute, after the board's own refreshes (body[data-updated-at]) or every 5 minutes.
 * A failed fetch leaves the last lines; the board reports connection problems itself. */
(function () {
  "use strict";
  const KPIS = ["connect_rate", "abandon_rate", "aht_seconds", "conversions", "revenue"];
  const CUMULATIVE = new Set(["conversions", "revenue"]);
  const EVERY_MS = 60000;
  const POLL_MS = 300000;
  const token = new URLSearchParams(window.location.search).get("token") || "";
  let lastAt = 0;
  let busy = false;

  async function series(scope, window) {
    const u = new URL("api/v1/series", document.baseURI);
    const q = { scope, window, step: "15m", kpis: KPIS.join(",") };
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const res = await fetch(u, { headers, cache: "no-store" });
    if (!res.ok) throw new Error("series " + res.status);
    return res.json();
  }

  /** [minutes since the local day's start, value] per point; counts accumulated. */
  function line(answer, kpi) {
    const start = Date.parse(answer.from);
    let total = 0;
    return answer.points.map((p) => {
      let v = p.kpis[kpi];
      if (CUMULATIVE.has(kpi)) { total += v || 0; v = total; }
      return [(Date.parse(p.from) - start) / 60000, v === undefined ? null : v];
    });
  }

  function draw(kpi, today, yesterday) {
    const card = document.getElementById("card-" + kpi);
    if (!card) return;
    let el = card.querySelector(".spark");
    if (!el) {
      el = document.createElement("div");
      el.className = "spark";
      el.setAttribute("data-spark-for", kpi);
      el.title = "today by 15 minutes (solid) and yesterday (dashed)";
      card.appendChild(el);
    }
    const t = line(today, kpi), y = line(yesterday, kpi);
    const xs = Array.from({ length: 96 }, (_, i) => i * 15);
    const at = (pts) => { const m = new Map(pts); return xs.map((x) => (m.has(x) ? m.get(x) : null)); };
    const data = [xs, at(t), at(y)];
    el._spark = { today: t, yesterday: y };
    const width = Math.max(80, el.clientWidth || card.clientWidth - 16);
    if (el._plot) { el._plot.setData(data); el._plot.setSize({ width, height: 34 }); }
    else {
      el.innerHTML = "";
      el._plot = new uPlot({
        width, height: 34, legend: { show: false }, cursor: { show: false }, select: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false, range: [0, 1440] } },
        series: [{}, { stroke: "#58a6ff", width: 1.5, spanGaps: false },
                 { stroke: "#8b98a5", width: 1, dash: [3, 3] }],
      }, data, el);
    }
    el.setAttribute("data-drawn", "1");
    el.setAttribute("data-points", String(t.length));
  }

  async function refresh() {
    if (busy || typeof uPlot === "undefined") return;
    busy = true;
    lastAt = Date.now();
    try {
      const scope = document.body.dataset.scope || new URLSearchParams(window.location.search).get("scope") || "center";
      const [today, yesterday] = await Promise.all([series(scope, "today"), series(scope, "yesterday")]);
      for (const k of KPIS) draw(k, today, yesterday);
      document.body.setAttribute("data-sparks-scope", scope);
    } catch (e) {
      /* the board shows connection problems; keep the last lines */
    } finally {
      busy = false;
    }
  }

  function maybe() {
    const scopeChanged = document.body.dataset.scope !== document.body.dataset.sparksScope;
    if (scopeChanged || Date.now() - lastAt >= EVERY_MS) refresh();
  }

  new MutationObserver(maybe).observe(document.body, { attributes: true,
    attributeFilter: ["data-updated-at", "data-scope"] });
  setInterval(maybe, POLL_MS);
  window.addEventListener("load", maybe);
})();
