"""Render docs/kpis.md from the catalog, so the docs can never disagree with the code.

`python -m stream.kpi.docs > docs/kpis.md` regenerates it; a test fails when it is stale.
"""

from __future__ import annotations

from stream.kpi.catalog import COUNTERS, KPIS
from stream.kpi.retention import RETENTION_KPIS

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
        "**Inbound calls** (contract 1.1): a call with a `call.offered` is inbound, whatever order",
        "its events arrive in. It never counts in `dialed`, `attempts_completed`, `answered`,",
        "`connected`, `machine_answered`, `abandoned` or `compliance_abandons`: its abandon counts",
        "as `inbound_abandoned`, and it is `inbound_answered` at its first `call.connected`",
        "(earliest `ts`, then `event_id`), whose `wait_ms` is its speed of answer and decides the",
        "service level (`service_level_threshold_ms`, default 20 s). Its connects, ends and",
        "wrap-ups count like any call's (`agent_connected`, `handled`, AHT, agent time, outcomes),",
        "so the funnel rates are over live contacts, `connected + offered`, and `completion_rate`",
        "over `dialed + offered`: without inbound calls both are what they were in v1. Compliance",
        "counts outbound calls only: the UK rate's `agent_connected` leaves out",
        "`inbound_agent_connected` (a blended campaign's inbound connects). A transfer",
        "is the first agent's leg ended (`call.ended`, `hangup_by: agent`) and the next agent's",
        "`call.connected` on the same call (docs/event-contract.md).",
        "",
        "**Scopes**: `center`, `campaign:<id>`, `team:<id>`, `agent:<id>`, `caller_id:<did>`,",
        "`list:<id>`, and `variant:<id>` (1.1: the `variant` of the call's `call.dialed`, an",
        "experiment arm, attributed to every event of the call like `list:`, also retroactively).",
        "Call gaps count for the agent, its team and the campaign, caller ID and list of the call",
        "they end at, not for its variant (a gap lies between two calls, of any variants).",
        "",
    ]
    for section, title in SECTION_TITLES.items():
        lines += [f"## {title}", "", "| KPI | formula | meaning |", "|---|---|---|"]
        for k in KPIS:
            if k.section == section:
                lines.append(f"| `{k.name}` | `{k.formula}` | {k.help} |")
        lines.append("")
    lines += ["## Customer retention (distinct leads, per local week and month)", "",
              "Defined in `stream/kpi/retention.py`, not the catalog: they are sizes of sets of "
              "leads, not sums of counters. S(P) is the set of leads (`lead_id` of the call's "
              "`call.dialed`, also when it arrives after the wrap-up) with a `call.wrapup` "
              "disposition `sale` in period P: the local calendar week (from Monday 00:00) or "
              "month in the configured time zone, per `center` and `campaign:<id>`. Served by "
              "`GET /api/v1/retention?scope=...&period=week|month` and `callkpi retention`; "
              "only counts are shown, never a lead_id (docs/redis-layout.md: memory).", "",
              "| KPI | formula | meaning |", "|---|---|---|"]
    lines += [f"| `{k.name}` | `{k.formula}` | {k.help} |" for k in RETENTION_KPIS]
    lines += ["", "## Stored counters", "",
              "Kept per scope and per minute and hour bucket; `_ms` counters hold milliseconds. "
              "Paused time is also kept per reason as `paused_ms:<reason>` "
              "(reported as `paused_seconds_by_reason`), and wrap-ups per `disposition_code` "
              "(1.1) as `wrapups:<code>` (reported as `wrapups_by_code`, a count per code).", "",
              "| counter | Prometheus | what is counted |", "|---|---|---|"]
    lines += [f"| `{c.name}` | `{c.metric_name}` | {c.help} |" for c in COUNTERS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
