"""The call-center wallboard: the whole center on top, one repeated row per campaign."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m

from ..common import ABANDON_WARN_SHARE, DEFAULT_ABANDON_LIMIT
from ..panels import AMBER, BLUE, GREEN, RED, Board, campaign_var, custom_var, stat, thresholds

RATE_WINDOWS = ["15m", "5m", "1h", "today"]


def _window_gauge(kpi: str, scope_kind: str, scope_filter: str, window: str = "$window") -> str:
    return f'max(callcenter_window_{kpi}{{scope_kind="{scope_kind}", {scope_filter}window="{window}"}})'


def wallboard() -> Board:
    b = Board(
        "callkpi-wallboard",
        "Call center wallboard",
        "Live wallboard: the whole center on top, one row per selected campaign below. Rates over the "
        "selected window from the exporter's windowed gauges; colours: green on target, amber watch, "
        "red act.",
        ["wallboard"],
        time_from="now-1h",
        refresh="10s",
    )
    b.variable(custom_var("window", "Rate window", RATE_WINDOWS, "15m"))
    b.variable(campaign_var())

    def kpi_row(scope_kind: str, scope_filter: str, camp_filter: str) -> None:
        b.panel(stat("Connect rate", _window_gauge("connect_rate_ratio", scope_kind, scope_filter), "percentunit",
                     thresholds(RED, (0.10, AMBER), (0.20, GREEN)), decimals=1,
                     description="Human answers / completed attempts over the window."))
        b.panel(stat("Abandon rate", _window_gauge("abandon_rate_ratio", scope_kind, scope_filter), "percentunit",
                     thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER),
                                (DEFAULT_ABANDON_LIMIT, RED)), decimals=1,
                     description="Abandoned / human answers over the window (red at the 3% default limit)."))
        b.panel(stat("Calls waiting", f"sum(callcenter_calls_waiting{{{camp_filter}}})", "none",
                     thresholds(GREEN, (3, AMBER), (10, RED)),
                     description="Answered by a person, not yet connected to an agent."))
        b.panel(stat("Longest wait", f"max(callcenter_longest_wait_seconds{{{camp_filter}}})", "s",
                     thresholds(GREEN, (2, AMBER), (5, RED)), decimals=0,
                     description="Longest current wait for an agent (compliance: connect within 2 s)."))
        b.panel(stat("AHT", _window_gauge("aht_seconds", scope_kind, scope_filter), "s",
                     thresholds(GREEN, (360, AMBER), (600, RED)), decimals=0,
                     description="Average handle time: (talk + hold + wrap-up) / handled calls."))
        b.panel(stat("Conversions today", _window_gauge("conversions", scope_kind, scope_filter, "today"), "none",
                     thresholds(RED, (1, AMBER), (10, GREEN)), decimals=0,
                     description="Wrap-ups with a success disposition since local midnight."))

    b.row("Center")
    kpi_row("center", "", "")
    b.panel(stat("Agents by state",
                 'sum by (state) (callcenter_agents{scope_kind="center", state!="logged_out"})', "none",
                 thresholds(BLUE), legend="{{state}}", w=12, text_mode=common_m.BigValueTextMode.VALUE_AND_NAME,
                 description="Agents logged in, by current state.")
            .override_by_name("available", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": GREEN})])
            .override_by_name("on_call", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": BLUE})])
            .override_by_name("wrap_up", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": AMBER})])
            .override_by_name("paused", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": RED})])
            .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS)))
    b.panel(stat("Occupancy", _window_gauge("occupancy_ratio", "center", ""), "percentunit",
                 thresholds(AMBER, (0.70, GREEN), (0.92, RED)), decimals=0,
                 description="(on call + wrap-up) / (available + on call + wrap-up). Red above 92%: burnout risk."))
    b.panel(stat("Calls talking", "sum(callcenter_calls_talking)", "none", thresholds(BLUE)))
    b.panel(stat("Calls ringing", "sum(callcenter_calls_ringing)", "none", thresholds(BLUE)))

    b.row("Campaign $campaign", repeat="campaign")
    kpi_row("campaign", 'scope_id=~"$campaign", ', 'campaign=~"$campaign"')
    return b
