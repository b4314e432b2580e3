"""Campaigns: funnel, rates over time, compliance, money and targets."""

from __future__ import annotations

from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m

from ..common import ABANDON_WARN_SHARE, DEFAULT_ABANDON_LIMIT
from ..panels import (
    AMBER,
    BLUE,
    GREEN,
    RED,
    Board,
    Column,
    bargauge,
    campaign_var,
    color_cell,
    gauge,
    stat,
    table,
    thresholds,
    timeseries,
)
from ..recording import catalog_quotient


def campaigns() -> Board:
    b = Board(
        "callkpi-campaigns",
        "Campaigns",
        "Per-campaign funnel, rates over time, compliance and cost. Counts over the dashboard's time range.",
        ["campaigns"],
        time_from="now-24h",
        refresh="1m",
    )
    b.variable(campaign_var())
    sel = 'campaign=~"$campaign"'

    def total(metric: str, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} (increase({metric}{{{sel}}}[$__range]))"

    def per_campaign(metric: str) -> str:
        return total(metric, "campaign")

    b.row("Funnel (selected time range)")
    b.panel(bargauge(
        "Funnel: dial → connect → conversation → qualified lead → sale",
        [
            (total("callcenter_dialed_total"), "1 dialed"),
            (total("callcenter_connected_total"), "2 connected (person)"),
            (total("callcenter_conversations_total"), "3 conversations"),
            (total("callcenter_qualified_leads_total"), "4 qualified leads"),
            (total("callcenter_orders_total"), "5 sales"),
        ],
        "none", thresholds(BLUE), w=12, h=9,
        description="Counts over the selected time range, for the selected campaigns.",
    ))
    b.panel(table(
        "Campaign scorecard (selected time range)",
        {"campaign": "Campaign"},
        [
            Column(total("callcenter_dialed_total", "campaign"), "Dialed", "none"),
            *(Column(catalog_quotient(kpi, per_campaign), name, "percentunit")
              for kpi, name in (("connect_rate", "Connect rate"), ("abandon_rate", "Abandon rate"),
                                ("conversion_rate", "Conversion rate"))),
            Column(total("callcenter_revenue_total", "campaign"), "Revenue", "none"),
        ],
        w=12, h=9, sort_by="Dialed",
        description="Ratios are sums of numerators over sums of denominators over the range.",
    ))

    b.row("Rates over time")
    b.panel(timeseries("Connect rate (15 min)", [(f"campaign:callcenter_connect_rate:ratio_rate15m{{{sel}}}", "{{campaign}}")],
                       "percentunit", w=8))
    b.panel(timeseries("Abandon rate (15 min)", [(f"campaign:callcenter_abandon_rate:ratio_rate15m{{{sel}}}", "{{campaign}}")],
                       "percentunit", w=8,
                       th=thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED))))
    b.panel(timeseries("Conversion and lead rate (1 h)", [
        (f"campaign:callcenter_conversion_rate:ratio_rate1h{{{sel}}}", "conversion {{campaign}}"),
        (f"campaign:callcenter_lead_rate:ratio_rate1h{{{sel}}}", "lead {{campaign}}"),
    ], "percentunit", w=8))

    b.row("Compliance")
    b.panel(gauge("US abandon rate, rolling 30 days",
                  f"max by (campaign) (callcenter_compliance_us_abandon_rate_30d_ratio{{{sel}}})", "{{campaign}}",
                  "percentunit",
                  thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED)),
                  description="FCC/FTC TSR: compliance abandons / live answers over 30 days. Limit 3% by default "
                              "(see the limit panel for the configured one)."))
    b.panel(gauge("UK abandon rate, today",
                  f"max by (campaign) (callcenter_compliance_uk_abandon_rate_today_ratio{{{sel}}})", "{{campaign}}",
                  "percentunit",
                  thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED)),
                  description="Ofcom: (abandoned − estimated machine abandons) / (agent-connected + abandoned), per day."))
    b.panel(bargauge("Abandon headroom (abandons left)",
                     [(f"max by (campaign) (callcenter_compliance_abandon_headroom{{{sel}}})", "{{campaign}}")],
                     "none", thresholds(RED, (1, AMBER), (20, GREEN)), w=4, h=7,
                     description="How many more compliance abandons the window takes before it breaches the limit."))
    b.panel(stat("Configured abandon limit",
                 f"max by (campaign) (callcenter_compliance_abandon_limit_ratio{{{sel}}})", "percentunit",
                 thresholds(BLUE), legend="{{campaign}}", w=4, h=7, decimals=1,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME))

    b.row("Money and targets")
    b.panel(stat("Cost per lead (today)",
                 'max by (scope_kind, scope_id) (callcenter_window_cost_per_lead{window="today", '
                 'scope_kind=~"center|campaign", scope_id=~"$campaign|"})',
                 "none", thresholds(BLUE), legend="{{scope_kind}} {{scope_id}}", w=6, h=6, decimals=2,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME,
                 description="Cost (agent time + telephony + dials, from the cost configuration) / qualified leads. "
                             "Empty until costs are configured."), optional=True)
    b.panel(stat("Revenue (today)",
                 'max by (scope_id) (callcenter_window_revenue{scope_kind="campaign", scope_id=~"$campaign", window="today"})',
                 "none", thresholds(BLUE), legend="{{scope_id}}", w=6, h=6, decimals=0,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME))
    b.panel(table(
        "Targets",
        {"target": "Target", "kpi": "KPI", "scope": "Scope"},
        [
            Column("max by (target, kpi, scope) (callcenter_target_status)", "Status", overrides=(
                dash_m.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                    "0": {"text": "ok", "color": GREEN, "index": 0},
                    "1": {"text": "warn", "color": AMBER, "index": 1},
                    "2": {"text": "critical", "color": RED, "index": 2},
                }}]),
                color_cell())),
            Column("max by (target, kpi, scope) (callcenter_target_attainment_ratio)", "Attainment",
                   "percentunit"),
        ],
        w=12, h=6,
        description="SMART targets from the configuration: status and attainment (value / goal, direction-aware).",
    ), optional=True)
    return b
