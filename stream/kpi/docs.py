"""Render docs/kpis.md from the catalog, so the docs can never disagree with the code.

`python -m stream.kpi.docs > docs/kpis.md` regenerates it; a test fails when it is stale.
"""

from __future__ import annotations

from stream.kpi.catalog import COUNTERS, KPIS

SECTION_TITLES = {"counts": "Counts", "durations": "Durations (reported in seconds)",
                  "agent_time": "Agent time (open states count up to the query time)",
                  "rates": "Rates (fractions 0..1)"}


def render() -> str:
    lines = [
        "# KPI reference",
        "",
        "Generated from `stream/kpi/catalog.py` (`python -m stream.kpi.docs > docs/kpis.md`).",
        "Every KPI is computed at read time from counters summed over the window's buckets:",
        "a ratio is Σ numerator ÷ Σ denominator, never an average of ratios; a zero denominator",
        "gives `null`. The API, the CLI, the exporter and the wallboard use these definitions.",
        "Cost (`cost`, `cost_per_call`, `cost_per_lead`, `roi`) and compliance KPIs are defined in",
        "`stream/kpi/cost.py` and `stream/kpi/compliance.py` (see docs/configuration.md).",
        "",
    ]
    for section, title in SECTION_TITLES.items():
        lines += [f"## {title}", "", "| KPI | formula | meaning |", "|---|---|---|"]
        for k in KPIS:
            if k.section == section:
                lines.append(f"| `{k.name}` | `{k.formula}` | {k.help} |")
        lines.append("")
    lines += ["## Stored counters", "",
              "Kept per scope and per minute and hour bucket; `_ms` counters hold milliseconds. "
              "Paused time is also kept per reason as `paused_ms:<reason>` "
              "(reported as `paused_seconds_by_reason`).", "",
              "| counter | Prometheus | what is counted |", "|---|---|---|"]
    lines += [f"| `{c.name}` | `{c.metric_name}` | {c.help} |" for c in COUNTERS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
