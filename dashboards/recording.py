"""Prometheus recording rules: per-campaign counts, the center as their sum, ratios of sums.

Ratios divide a summed numerator by a summed denominator (absent when the denominator is 0), as
the KPI catalog defines them; averages of ratios would be wrong.
"""

from __future__ import annotations

from .common import DEFAULT_ABANDON_LIMIT, RecordingRule, RuleGroup

#: Windows recorded for every count and ratio.
WINDOWS = ("5m", "15m", "1h")
#: Extra window recorded only for the connect-rate baseline of the ConnectRateDrop alert.
BASELINE_WINDOW = "2h"

#: Recorded counts: name -> exporter counters summed (all per campaign, exported from 0).
COUNTS: dict[str, tuple[str, ...]] = {
    "dialed": ("callcenter_dialed_total",),
    "attempts_completed": ("callcenter_attempts_completed_total",),
    "answered": ("callcenter_answered_total",),
    "connected": ("callcenter_connected_total",),
    "abandoned": ("callcenter_abandoned_total",),
    "conversations": ("callcenter_conversations_total",),
    "conversions": ("callcenter_conversions_total",),
    "qualified_leads": ("callcenter_qualified_leads_total",),
    "handled": ("callcenter_handled_total",),
    # aht numerator: talk + hold of handled calls + wrap-up time (catalog: aht_seconds)
    "handle_seconds": (
        "callcenter_talk_seconds_total",
        "callcenter_hold_seconds_total",
        "callcenter_wrapup_seconds_total",
    ),
    # occupancy numerator and denominator (catalog: occupancy, productive_seconds)
    "busy_seconds": ("callcenter_on_call_seconds_total", "callcenter_wrap_up_seconds_total"),
    "productive_seconds": (
        "callcenter_available_seconds_total",
        "callcenter_on_call_seconds_total",
        "callcenter_wrap_up_seconds_total",
    ),
    "staffed_seconds": ("callcenter_staffed_seconds_total",),
}

#: Recorded ratios (catalog formulas): name -> (numerator count, denominator count).
RATIOS: dict[str, tuple[str, str]] = {
    "connect_rate": ("connected", "attempts_completed"),
    "answer_rate": ("answered", "attempts_completed"),
    "abandon_rate": ("abandoned", "connected"),
    "conversation_rate": ("conversations", "connected"),
    "conversion_rate": ("conversions", "connected"),
    "lead_rate": ("qualified_leads", "connected"),
    "occupancy": ("busy_seconds", "productive_seconds"),
}

#: Recorded averages: name -> (numerator count, denominator count, factor).
AVERAGES: dict[str, tuple[str, str, int]] = {
    "aht_seconds": ("handle_seconds", "handled", 1),
    "calls_per_agent_hour": ("handled", "staffed_seconds", 3600),
}


def count_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:increase{window}"


def ratio_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:ratio_rate{window}"


def avg_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:avg{window}"


def _rule(record: str, expr: str) -> RecordingRule:
    return {"record": record, "expr": expr}


def _window_rules(
    window: str, counts: list[str], ratios: list[str], averages: list[str]
) -> list[RecordingRule]:
    rules: list[RecordingRule] = []
    # 1. per-campaign increases, then 2. the center as the sum of the campaigns,
    # 3. ratios = summed numerator / summed denominator (absent when the denominator is 0).
    for name in counts:
        terms = [f"sum by (campaign) (increase({m}[{window}]))" for m in COUNTS[name]]
        rules.append(_rule(count_record("campaign", name, window), "\n+ ".join(terms)))
    for name in counts:
        rules.append(
            _rule(count_record("center", name, window), f"sum({count_record('campaign', name, window)})")
        )
    for level in ("campaign", "center"):
        for name in ratios:
            num, den = RATIOS[name]
            rules.append(
                _rule(
                    ratio_record(level, name, window),
                    f"{count_record(level, num, window)} / ({count_record(level, den, window)} > 0)",
                )
            )
        for name in averages:
            num, den, factor = AVERAGES[name]
            scale = f"{factor} * " if factor != 1 else ""
            rules.append(
                _rule(
                    avg_record(level, name, window),
                    f"{scale}{count_record(level, num, window)} / ({count_record(level, den, window)} > 0)",
                )
            )
    return rules


def _caller_id_rules(window: str) -> list[RecordingRule]:
    """Per caller ID connect rate, and the rate of the campaign's *other* caller IDs."""
    rules: list[RecordingRule] = []
    for name in ("dialed", "attempts_completed", "connected"):
        rules.append(
            _rule(
                f"campaign_caller_id:callcenter_caller_id_{name}:increase{window}",
                f"sum by (campaign, caller_id) (increase(callcenter_caller_id_{name}_total[{window}]))",
            )
        )
    for name in ("attempts_completed", "connected"):
        rules.append(
            _rule(
                f"campaign:callcenter_caller_id_{name}:increase{window}",
                f"sum by (campaign) (campaign_caller_id:callcenter_caller_id_{name}:increase{window})",
            )
        )
    for name in ("attempts_completed", "connected"):
        # campaign total minus this caller ID, kept with the caller ID's labels
        rules.append(
            _rule(
                f"campaign_caller_id:callcenter_caller_id_others_{name}:increase{window}",
                f"campaign_caller_id:callcenter_caller_id_{name}:increase{window} * -1"
                f" + on (campaign) group_left () campaign:callcenter_caller_id_{name}:increase{window}",
            )
        )
    rules.append(
        _rule(
            f"campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate{window}",
            f"campaign_caller_id:callcenter_caller_id_connected:increase{window}"
            f" / (campaign_caller_id:callcenter_caller_id_attempts_completed:increase{window} > 0)",
        )
    )
    rules.append(
        _rule(
            f"campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate{window}",
            f"campaign_caller_id:callcenter_caller_id_others_connected:increase{window}"
            f" / (campaign_caller_id:callcenter_caller_id_others_attempts_completed:increase{window} > 0)",
        )
    )
    return rules


def _pipeline_rules() -> list[RecordingRule]:
    rules: list[RecordingRule] = []
    for window in ("10m", "6h"):
        rules += [
            _rule(
                f"center:callcenter_pipeline_events_consumed:increase{window}",
                f"sum(increase(callcenter_pipeline_events_consumed_total[{window}]))",
            ),
            _rule(
                f"center:callcenter_pipeline_events_rejected:increase{window}",
                f"sum(increase(callcenter_pipeline_events_rejected_total[{window}]))",
            ),
            _rule(
                f"center:callcenter_pipeline_rejected:ratio_rate{window}",
                f"center:callcenter_pipeline_events_rejected:increase{window}"
                f" / (center:callcenter_pipeline_events_consumed:increase{window} > 0)",
            ),
        ]
    for q in ("0.5", "0.99"):
        pct = q.split(".")[1].ljust(2, "0")
        rules.append(
            _rule(
                f"center:callcenter_pipeline_event_to_store_seconds:p{pct}_5m",
                f"histogram_quantile({q}, sum by (le) (rate(callcenter_pipeline_event_to_store_seconds_bucket[5m])))",
            )
        )
    rules.append(
        _rule(
            "center:callcenter_pipeline_event_to_store:increase5m",
            "sum(increase(callcenter_pipeline_event_to_store_seconds_count[5m]))",
        )
    )
    return rules


def _compliance_rules() -> list[RecordingRule]:
    return [
        _rule(
            "campaign:callcenter_compliance_abandon_limit:ratio",
            # the configured limit, or the default for a campaign the exporter gives no limit for
            "max by (campaign) (callcenter_compliance_abandon_limit_ratio)"
            f" or on (campaign) ({DEFAULT_ABANDON_LIMIT} + 0 * max by (campaign)"
            " ({__name__=~\"callcenter_compliance_(us_abandon_rate_30d|uk_abandon_rate_today)_ratio\"}))",
        ),
        _rule(
            "campaign:callcenter_compliance_us_abandon_rate_30d:ratio",
            "max by (campaign) (callcenter_compliance_us_abandon_rate_30d_ratio)",
        ),
        _rule(
            "campaign:callcenter_compliance_uk_abandon_rate_today:ratio",
            "max by (campaign) (callcenter_compliance_uk_abandon_rate_today_ratio)",
        ),
        _rule(
            "campaign:callcenter_connected:today",
            'max by (campaign) (label_replace(callcenter_window_connected{window="today", scope_kind="campaign"},'
            ' "campaign", "$1", "scope_id", "(.*)"))',
        ),
    ]



def recording_groups() -> list[RuleGroup]:
    """The recording-rule groups of rules.yml, in evaluation order."""
    groups: list[RuleGroup] = [
        {
            "name": f"callkpi.kpi.{window}",
            "rules": _window_rules(window, list(COUNTS), list(RATIOS), list(AVERAGES)),
        }
        for window in WINDOWS
    ]
    groups.append(
        {
            "name": f"callkpi.kpi.{BASELINE_WINDOW}",
            "rules": _window_rules(BASELINE_WINDOW, ["connected", "attempts_completed"], ["connect_rate"], []),
        }
    )
    groups.append({"name": "callkpi.caller_id.1h", "rules": _caller_id_rules("1h")})
    groups.append({"name": "callkpi.pipeline", "rules": _pipeline_rules()})
    groups.append({"name": "callkpi.compliance", "rules": _compliance_rules()})
    groups.append(
        {
            "name": "callkpi.compliance.30d",
            # a 30-day range is heavy: evaluate it every 2 minutes only (still well inside the
            # 5-minute lookback, so the alerts reading it never see a gap)
            "interval": "2m",
            "rules": [
                _rule(
                    "campaign:callcenter_connected:increase30d",
                    "sum by (campaign) (increase(callcenter_connected_total[30d]))",
                )
            ],
        }
    )
    return groups
