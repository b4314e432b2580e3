/* The /reports page: GET /api/v1/report for the chosen period and scope (the same answer the
   report files are made of), a line chart of any KPI from GET /api/v1/series with the previous
   period, the weekday × hour heatmap from GET /api/v1/breakdown. The access token, when the
   URL carries ?token=..., goes to every fetch as Authorization: Bearer and into the download
   links. */
(function () {
  "use strict";
  var C = window.CallkpiCharts;
  var params = new URLSearchParams(location.search);
  var token = params.get("token") || "";
  var $ = function (id) { return document.getElementById(id); };
  var state = { report: null };

  function url(path, query) {
    var q = new URLSearchParams(query || {});
    return path + (q.toString() ? "?" + q : "");
  }
  function download(path, query) {
    var q = Object.assign({}, query);
    if (token) q.token = token;
    return url(path, q);
  }
  async function api(path, query) {
    var headers = token ? { Authorization: "Bearer " + token } : {};
    var res = await fetch(url(path, query), { headers: headers, cache: "no-store" });
    var body = await res.json();
    if (!res.ok) throw new Error(body.error || ("HTTP " + res.status));
    return body;
  }
  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }
  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function fill(table, rows) {
    var body = table.querySelector("tbody");
    body.innerHTML = "";
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { tr.appendChild(typeof c === "string" ? cell(c) : c); });
      body.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr"), td = cell("(none)");
      td.colSpan = table.querySelectorAll("thead th").length || 1;
      tr.appendChild(td); body.appendChild(tr);
    }
  }
  function change(kpi, v) {
    if (v === null || v === undefined) return cell("–");
    var lowerBetter = /(abandon|aht|_seconds$|refusal|complaint)/.test(kpi);
    var good = lowerBetter ? v < 0 : v > 0;
    var text = (v > 0 ? "+" : "") + (/(_rate|occupancy)$/.test(kpi) ? (v * 100).toFixed(1) + " pp" : C.fmtValue(kpi, v));
    return cell(text, v === 0 ? "" : (good ? "up" : "down"));
  }

  async function scopes() {
    var s = await api("/api/v1/scopes");
    var sel = $("scope"), opts = [];
    if (s.center) opts.push("center");
    ["campaign", "team", "list", "caller_id", "variant"].forEach(function (kind) {
      (s[kind] || []).forEach(function (id) { opts.push(kind + ":" + id); });
    });
    opts.forEach(function (o) { var e = document.createElement("option"); e.value = e.textContent = o; sel.appendChild(e); });
    if (params.get("scope") && opts.indexOf(params.get("scope")) >= 0) sel.value = params.get("scope");
  }

  function query() {
    var q = { period: $("period").value, scope: $("scope").value };
    if ($("date").value) q.date = $("date").value;
    return q;
  }

  function ranking(table, part, sortKpi) {
    var kpis = part.kpis;
    table.querySelector("thead").innerHTML = "<tr><th>#</th><th>" + part.by + "</th>" +
      kpis.map(function (k) { return "<th>" + k + "</th>"; }).join("") + "</tr>";
    var rows = part.rows.slice();
    if (sortKpi) {
      var lower = /(aht|_seconds$)/.test(sortKpi);
      rows.sort(function (a, b) {
        var x = a.kpis[sortKpi], y = b.kpis[sortKpi];
        if (x === null) return 1; if (y === null) return -1;
        return lower ? x - y : y - x;
      });
    }
    fill(table, rows.map(function (r, i) {
      return [String(i + 1), r.id].concat(kpis.map(function (k) { return C.fmtValue(k, r.kpis[k]); }));
    }));
  }

  async function drawSeries() {
    var r = state.report, kpi = $("kpi").value;
    var s = await api("/api/v1/series", { scope: $("scope").value, from: r.from, to: r.series.points.length ?
      r.series.points[r.series.points.length - 1].to : r.to, step: r.series.step, kpis: kpi, compare: "previous_period" });
    C.seriesChart($("chart-series"), s.points, kpi, { label: kpi + " " + r.label, compareLabel: "previous " + r.period });
  }

  async function show() {
    status("loading…");
    var q = query();
    try {
      var r = await api("/api/v1/report", q);
      state.report = r;
      var sel = $("kpi"), chosen = sel.value;
      if (sel.options.length !== r.series_kpis.length) {  // any catalog KPI can be charted
        sel.innerHTML = "";
        r.series_kpis.forEach(function (k) { var e = document.createElement("option"); e.value = e.textContent = k; sel.appendChild(e); });
        sel.value = r.series_kpis.indexOf(chosen) >= 0 ? chosen : "connect_rate";
      }
      $("title").textContent = r.title + (r.complete ? "" : " (so far)");
      $("range").textContent = r.from + " – " + r.to + " (" + r.timezone + "), compared with " +
        r.previous.from + " – " + r.previous.to;
      var b = r.scopes[0];
      fill($("comparison"), r.kpis.map(function (k) {
        return [k, C.fmtValue(k, b.kpis[k]), C.fmtValue(k, b.previous[k]), change(k, b.change[k])];
      }));
      ranking($("agents"), r.agents, $("rank-kpi").value);
      ranking($("teams"), r.teams);
      fill($("targets"), r.targets.map(function (t) {
        return [t.name, t.scope, t.kpi, C.fmtValue(t.kpi, t.goal), C.fmtValue(t.kpi, t.value), t.status];
      }));
      fill($("compliance"), r.compliance.map(function (c) {
        return [c.campaign_id, C.fmtValue("abandon_rate", c.abandon_rate), C.fmtValue("abandon_rate", c.limit), c.status];
      }));
      var ex = [];
      r.experiments.forEach(function (e) {
        e.variants.forEach(function (v) {
          ex.push([e.name, v.variant + (v.control ? " (control)" : ""), e.primary_kpi, C.fmtValue(e.primary_kpi, v.rate),
                   v.lift === null ? "–" : (v.lift * 100).toFixed(1) + " %", v.p_value === null ? "–" : v.p_value.toPrecision(2), v.verdict]);
        });
      });
      fill($("experiments"), ex);
      C.hourChart($("chart-hours"), r.hours);
      await drawSeries();
      var heat = await api("/api/v1/breakdown", { scope: q.scope, by: "weekday_hour", window: "30d" });
      C.heatmap($("heatmap"), heat.cells, "connect_rate");
      $("csv").href = download("/api/v1/report", Object.assign({ format: "csv" }, q));
      $("html").href = download("/api/v1/report", Object.assign({ format: "html" }, q));
      $("xlsx").href = download("/api/v1/report", Object.assign({ format: "xlsx" }, q));
      status("generated " + r.generated_at);
      document.body.setAttribute("data-ready", "1");
    } catch (err) {
      status(String(err.message || err), true);
    }
  }

  async function init() {
    var first = document.createElement("option");
    first.value = first.textContent = "connect_rate";
    $("kpi").appendChild(first);  // every catalog KPI once the first report arrives
    ["conversions", "conversion_rate", "handled", "aht_seconds", "occupancy"].forEach(function (k) {
      var e = document.createElement("option"); e.value = e.textContent = k; $("rank-kpi").appendChild(e);
    });
    if (params.get("period")) $("period").value = params.get("period");
    if (params.get("date")) $("date").value = params.get("date");
    $("picker").addEventListener("submit", function (ev) { ev.preventDefault(); show(); });
    $("kpi").addEventListener("change", function () { drawSeries().catch(function (e) { status(e.message, true); }); });
    $("rank-kpi").addEventListener("change", function () { if (state.report) ranking($("agents"), state.report.agents, $("rank-kpi").value); });
    try {
      await scopes();
    } catch (err) {
      status(String(err.message || err), true);
      return;
    }
    await show();
  }
  init();
})();
