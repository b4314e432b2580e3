/* callkpi charts: line charts of KPI series (with the comparison period) and the best-hour
   profile, drawn by the vendored uPlot (static/vendor/uplot/, MIT). Shared by the /reports page
   and the self-contained HTML report (inlined there). Every drawn chart marks its container
   with data-drawn="1" (the browser tests wait for it). */
(function (global) {
  "use strict";
  var RATE = /(_rate|occupancy|service_level)$/;

  function fmtValue(kpi, v) {
    if (v === null || v === undefined) return "–";
    if (RATE.test(kpi)) return (v * 100).toFixed(1) + " %";
    if (/_seconds$/.test(kpi)) return v.toFixed(0) + " s";
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : (+v.toFixed(2)).toString();
  }

  function size(el, height) {
    var w = Math.max(240, Math.floor(el.clientWidth || el.parentNode.clientWidth || 600));
    return { width: w, height: height || 220 };
  }

  function mark(el, plot) {
    el.setAttribute("data-drawn", "1");
    el._plot = plot;
    return plot;
  }

  /* points: the series API's points; kpi: one of their KPIs. The comparison line is drawn when
     the points carry `compare`. */
  function seriesChart(el, points, kpi, opts) {
    opts = opts || {};
    el.innerHTML = "";
    var xs = [], now = [], before = [], hasCompare = false;
    points.forEach(function (p) {
      xs.push(Date.parse(p.from) / 1000);
      now.push(p.kpis[kpi] === undefined ? null : p.kpis[kpi]);
      var c = p.compare ? p.compare.kpis[kpi] : null;
      if (p.compare) hasCompare = true;
      before.push(c === undefined ? null : c);
    });
    var series = [{}, { label: opts.label || kpi, stroke: "#2b6cb0", width: 2,
                        value: function (u, v) { return fmtValue(kpi, v); } }];
    var data = [xs, now];
    if (hasCompare) {
      series.push({ label: opts.compareLabel || "previous", stroke: "#a0aec0", width: 1.5, dash: [6, 4],
                    value: function (u, v) { return fmtValue(kpi, v); } });
      data.push(before);
    }
    var s = size(el, opts.height);
    var plot = new uPlot({
      width: s.width, height: s.height, series: series,
      scales: { x: { time: true } },
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return fmtValue(kpi, v); }); },
                   size: 70 }],
      legend: { show: opts.legend !== false }
    }, data, el);
    return mark(el, plot);
  }

  /* cells: the breakdown API's hour_of_day cells: connect and conversion rate per local hour. */
  function hourChart(el, cells, opts) {
    opts = opts || {};
    el.innerHTML = "";
    var byHour = {};
    cells.forEach(function (c) { byHour[c.hour] = c; });
    var xs = [], connect = [], conversion = [];
    for (var h = 0; h < 24; h++) {
      var c = byHour[h];
      xs.push(h);
      connect.push(c && c.connect_rate !== null ? c.connect_rate : null);
      conversion.push(c && c.conversion_rate !== null ? c.conversion_rate : null);
    }
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    var s = size(el, opts.height);
    var plot = new uPlot({
      width: s.width, height: s.height,
      scales: { x: { time: false, range: [-0.5, 23.5] } },
      series: [{ label: "hour", value: function (u, v) { return v === null ? "–" : v + ":00"; } },
               { label: "connect rate", stroke: "#2b6cb0", fill: "rgba(43,108,176,0.35)", paths: bars,
                 value: function (u, v) { return fmtValue("connect_rate", v); } },
               { label: "conversion rate", stroke: "#2f855a", width: 2,
                 value: function (u, v) { return fmtValue("conversion_rate", v); } }],
      axes: [{ values: function (u, vals) { return vals.map(function (v) { return v + "h"; }); } },
             { values: function (u, vals) { return vals.map(function (v) { return fmtValue("connect_rate", v); }); },
               size: 60 }]
    }, [xs, connect, conversion], el);
    return mark(el, plot);
  }

  /* A weekday × hour heatmap (the breakdown API's weekday_hour cells) as a coloured grid: a
     table, not a chart library's job; its cells carry their attempts and interval as titles. */
  function heatmap(el, cells, kpi) {
    kpi = kpi || "connect_rate";
    var days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    var grid = {}, max = 0;
    cells.forEach(function (c) {
      grid[c.weekday + ":" + c.hour] = c;
      if (c[kpi] !== null && c[kpi] > max) max = c[kpi];
    });
    var html = "<table class='heatmap'><tr><th></th>";
    for (var h = 0; h < 24; h++) html += "<th>" + h + "</th>";
    html += "</tr>";
    for (var d = 0; d < 7; d++) {
      html += "<tr><th>" + days[d] + "</th>";
      for (var hh = 0; hh < 24; hh++) {
        var c = grid[d + ":" + hh], v = c ? c[kpi] : null;
        var a = v === null || v === undefined || max === 0 ? 0 : v / max;
        var ci = c && c[kpi + "_ci"] ? " [" + fmtValue(kpi, c[kpi + "_ci"][0]) + " – " + fmtValue(kpi, c[kpi + "_ci"][1]) + "]" : "";
        var title = c ? fmtValue(kpi, v) + ci + ", " + c.attempts + " attempts" : "no calls";
        html += "<td style='background:rgba(43,108,176," + a.toFixed(2) + ")' title='" + title + "'></td>";
      }
      html += "</tr>";
    }
    el.innerHTML = html + "</table>";
    el.setAttribute("data-drawn", "1");
  }

  global.CallkpiCharts = { seriesChart: seriesChart, hourChart: hourChart, heatmap: heatmap,
                           fmtValue: fmtValue };
})(window);
