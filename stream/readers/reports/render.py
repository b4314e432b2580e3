"""A `Report` as HTML (one self-contained file: uPlot and the chart code inlined, no CDN), CSV,
XLSX (openpyxl) or Markdown. Every format shows the same numbers: the report's."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "static"
FORMATS = ("html", "csv", "xlsx", "md")
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
                 "md": "text/markdown; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_RATE_SUFFIXES = ("_rate", "occupancy", "service_level")


def fmt(kpi: str, value: Any, *, change: bool = False) -> str:
    """A KPI value as people read it (rates in %, durations in s); a change carries its sign."""
    if value is None:
        return "–"
    if not isinstance(value, int | float):
        return str(value)
    sign = "+" if change and value > 0 else ""
    if kpi.endswith(_RATE_SUFFIXES):
        return f"{sign}{value * 100:.1f}{' pp' if change else ' %'}"
    if kpi.endswith("_seconds"):
        return f"{sign}{value:.0f} s"
    if float(value).is_integer():
        return f"{sign}{int(value):,}"
    return f"{sign}{value:,.2f}"


# -- tables: one list of rows per section, shared by every format ----------------------------

Table = tuple[str, list[str], list[list[Any]]]
"""(title, header, rows) with raw values (the formats decide how to show them)."""


def tables(report: dict[str, Any]) -> Iterator[Table]:
    kpis = report["kpis"]
    for b in report["scopes"]:
        yield (f"KPIs {b['scope']}", ["kpi", "value", "previous", "change"],
               [[k, b["kpis"].get(k), b["previous"].get(k), b["change"].get(k)] for k in kpis])
    if report["targets"]:
        yield ("Targets", ["target", "scope", "kpi", "goal", "value", "attainment", "status"],
               [[t["name"], t["scope"], t["kpi"], t["goal"], t["value"], t["attainment"], t["status"]]
                for t in report["targets"]])
    for key, title in (("agents", "Agents ranked"), ("teams", "Teams ranked")):
        part = report[key]
        yield (f"{title} by {part['sort']}", ["rank", part["by"], *part["kpis"]],
               [[r["rank"], r["id"], *(r["kpis"].get(k) for k in part["kpis"])] for r in part["rows"]])
    yield ("Hourly profile", ["hour", "attempts", "connect_rate", "live_contacts", "conversion_rate"],
           [[c["hour"], c["attempts"], c["connect_rate"], c["live_contacts"], c["conversion_rate"]]
            for c in sorted(report["hours"], key=lambda c: c["hour"])])
    yield ("Compliance", ["campaign", "abandon_rate", "limit", "status"],
           [[c["campaign_id"], c["abandon_rate"], c["limit"], c["status"]] for c in report["compliance"]])
    rows = []
    for e in report["experiments"]:
        for v in e["variants"]:
            rows.append([e["name"], v["variant"], e["primary_kpi"], v["rate"], v["lift"], v["p_value"],
                         v["trials"], v["verdict"]])
    yield ("Experiments", ["experiment", "variant", "kpi", "value", "lift", "p_value", "trials", "verdict"], rows)


def _cell(header: str, row_kpi: str | None, value: Any) -> str:
    kpi = row_kpi if header in ("value", "previous", "change", "goal") and row_kpi else header
    return fmt(kpi, value, change=header == "change")


def _shown(header: list[str], row: list[Any]) -> list[str]:
    row_kpi = next((str(v) for h, v in zip(header, row, strict=True) if h == "kpi"), None)
    return [v if isinstance(v, str) else _cell(h, row_kpi, v) for h, v in zip(header, row, strict=True)]


def _period_line(report: dict[str, Any]) -> str:
    notes = "".join(f" Note: {n}." for n in report.get("notes", {}).values())
    return (f"{report['from']} – {report['to']} ({report['timezone']}), compared with "
            f"{report['previous']['from']} – {report['previous']['to']}"
            + ("" if report["complete"] else "; the period is not over: so far") + notes)


# -- formats ------------------------------------------------------------------------------------

def to_csv(report: dict[str, Any]) -> bytes:
    """One CSV with a `section` column: raw numbers (rates as fractions), for spreadsheets."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "report", report["title"], report["from"], report["to"]])
    for title, header, rows in tables(report):
        w.writerow([])
        w.writerow(["section", *header])
        for row in rows:
            w.writerow([title, *("" if v is None else v for v in row)])
    return out.getvalue().encode()


def to_md(report: dict[str, Any]) -> bytes:
    lines = [f"# {report['title']}", "", _period_line(report), ""]
    for title, header, rows in tables(report):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_shown(header, r)) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines).encode()


def to_xlsx(report: dict[str, Any]) -> bytes:
    """One sheet per section, raw numbers with number formats (rates as %)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    first = True
    for title, header, rows in tables(report):
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = title[:31].replace(":", " ")
        ws.append(header)
        for c in ws[1]:
            c.font = Font(bold=True)
        for row in rows:
            ws.append(row)
        for col, h in enumerate(header, start=1):
            if h.endswith(_RATE_SUFFIXES) or h in ("attainment", "lift"):
                for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                    cell.number_format = "0.0%"
    meta = wb.create_sheet("Report")
    for k in ("title", "period", "label", "from", "to", "timezone", "generated_at"):
        meta.append([k, report[k]])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _html_table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _shown(header, r)) + "</tr>"
                   for r in rows) or f"<tr><td colspan='{len(header)}'>(none)</td></tr>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<section><h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table></section>"


_CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#1a202c;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:right}th{background:#f7fafc}
td:first-child,th:first-child{text-align:left}.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{min-height:240px}.heatmap td{width:14px;height:14px;padding:0}"""

_DRAW = """(function(){var R=JSON.parse(document.getElementById('report-data').textContent);
var C=window.CallkpiCharts;document.querySelectorAll('[data-kpi]').forEach(function(el){
C.seriesChart(el,R.series.points,el.getAttribute('data-kpi'),{label:el.getAttribute('data-kpi')+' '+R.label,compareLabel:'previous '+R.period});});
var h=document.getElementById('chart-hours');if(h)C.hourChart(h,R.hours);})();"""


def to_html(report: dict[str, Any]) -> bytes:
    vendor = STATIC / "vendor" / "uplot"
    data = json.dumps(report, allow_nan=False).replace("</", "<\\/")
    charts = "".join(f"<div><h3>{html.escape(k)}</h3><div class='chart' data-kpi='{html.escape(k)}'></div></div>"
                     for k in report["series"]["kpis"])
    sections = "".join(_html_table(*t) for t in tables(report))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(report['title'])}</title>
<style>{(vendor / 'uPlot.min.css').read_text()}</style><style>{_CSS}</style></head><body>
<h1>{html.escape(report['title'])}</h1><p>{html.escape(_period_line(report))}</p>
<section><h2>Trends ({html.escape(report['series']['scope'])}, by {html.escape(report['series']['step'])})</h2>
<div class="charts">{charts}<div><h3>best hours</h3><div class="chart" id="chart-hours"></div></div></div></section>
{sections}
<p><small>Generated {html.escape(report['generated_at'])} by callkpi. Charts: uPlot (MIT licence).</small></p>
<script type="application/json" id="report-data">{data}</script>
<script>{(vendor / 'uPlot.iife.min.js').read_text()}</script>
<script>{(STATIC / 'reports' / 'charts.js').read_text()}</script>
<script>{_DRAW}</script></body></html>"""
    return page.encode()


RENDERERS = {"html": to_html, "csv": to_csv, "xlsx": to_xlsx, "md": to_md}


def render(report: dict[str, Any], fmt_name: str) -> bytes:
    return RENDERERS[fmt_name](report)
