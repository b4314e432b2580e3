"""Caller-ID health (spam-flag detection) and the best hour to call."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from ..panels import AMBER, GREEN, RED, Board, Column, bargauge, campaign_var, table, thresholds, timeseries
from ..recording import net_increase


def hour_of_day_connect_rate(hour: int, sel: str) -> str:
    """Connect rate of local hour-of-day `hour` over the last 7 days (exact: sums, then divide).

    A 1h-step subquery is aligned to whole UTC hours; at step t, increase(...[1h]) covers the hour
    starting at t-1h, whose local hour is (hour(t) - 1 + $utc_offset) mod 24.
    """
    def part(metric: str) -> str:
        return (
            f"sum_over_time((sum(increase({metric}{{{sel}}}[1h])) "
            f"and on () ((hour() + 23 + $utc_offset) % 24 == {hour}))[7d:1h])"
        )

    return f"{part('callcenter_connected_total')} / ({part('callcenter_attempts_completed_total')} > 0)"


def caller_ids() -> Board:
    b = Board(
        "callkpi-caller-ids",
        "Caller-ID health and best hour to call",
        "Connect rate per outbound caller ID against the other caller IDs (spam-flag detection), "
        "and connect rate by hour of day.",
        ["caller-id"],
        time_from="now-24h",
        refresh="1m",
    )
    # Caller-ID counters have no campaign label (the store counts a number across campaigns): the
    # campaign selector filters the best-hour panels only, which read the per-campaign counters.
    b.variable(campaign_var())
    b.variable(
        dash_b.TextBoxVariable("utc_offset")
        .label("UTC offset (h)")
        .description("Whole hours to add to UTC to get the call center's local time (CALLKPI_TIMEZONE).")
        .default_value("0")
    )
    sel = 'campaign=~"$campaign"'

    def by_cid(metric: str, window: str) -> str:
        return net_increase(metric, window, "caller_id")

    b.panel(table(
        "Caller IDs",
        {"caller_id": "Caller ID"},
        [
            Column("caller_id:callcenter_caller_id_connect_rate:ratio_rate1h",
                   "Connect rate 1 h", "percentunit"),
            Column("caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h",
                   "Other caller IDs 1 h", "percentunit"),
            Column("caller_id:callcenter_caller_id_attempts_completed:increase1h",
                   "Attempts 1 h", "none"),
            Column(f"{by_cid('callcenter_caller_id_connected_total', '24h')} / ({by_cid('callcenter_caller_id_attempts_completed_total', '24h')} > 0)",
                   "Connect rate 24 h", "percentunit"),
            Column(by_cid("callcenter_caller_id_dialed_total", "24h"), "Dialed 24 h", "none"),
        ],
        h=10, sort_by="Attempts 1 h",
        description="A caller ID far below the other caller IDs is probably flagged as spam. Caller IDs are "
                    "counted across campaigns (the campaign selector does not apply here).",
    ))
    b.panel(timeseries("Connect rate per caller ID (1 h)", [
        ("caller_id:callcenter_caller_id_connect_rate:ratio_rate1h", "{{caller_id}}"),
    ], "percentunit", w=12))
    b.panel(timeseries("Caller ID vs the other caller IDs (1 h)", [
        ("caller_id:callcenter_caller_id_connect_rate:ratio_rate1h"
         " / (caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h > 0)",
         "{{caller_id}}"),
    ], "percentunit", w=12, max_val=None, th=thresholds(RED, (0.5, AMBER), (0.8, GREEN)),
        description="1 = as good as the others; the spam-flag alert fires below 0.5."))
    b.row("Best hour to call")
    b.panel(bargauge(
        "Connect rate by hour of day (last 7 days)",
        [(hour_of_day_connect_rate(h, sel), f"{h:02d}") for h in range(24)],
        "percentunit", thresholds(RED, (0.10, AMBER), (0.20, GREEN)), w=24, h=9, vertical=True,
        description="Human answers / completed attempts in each local hour of the day, summed over 7 days. "
                    "Set the UTC offset variable to the center's time zone.",
    ))
    b.panel(timeseries("Hourly connect rate (last 7 days)", [
        (f"sum(increase(callcenter_connected_total{{{sel}}}[1h])) / (sum(increase(callcenter_attempts_completed_total{{{sel}}}[1h])) > 0)",
         "connect rate"),
    ], "percentunit", w=12, bars=True, interval="1h").time_from("7d"))
    b.panel(timeseries("Hourly completed attempts (last 7 days)", [
        (f"sum(increase(callcenter_attempts_completed_total{{{sel}}}[1h]))", "attempts"),
    ], "none", w=12, bars=True, interval="1h").time_from("7d"))
    return b
