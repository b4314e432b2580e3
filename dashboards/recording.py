"""Prometheus recording rules: per-campaign counts, the center as their sum, ratios of sums.

Ratios divide a summed numerator by a summed denominator (absent when the denominator is 0);
averages of ratios would be wrong. Which counters a ratio's numerator and denominator sum comes
from the KPI catalog (stream/kpi/catalog.py), so a rule cannot restate a formula differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

from stream.kpi.catalog import COUNTERS, KPI_BY_NAME

from .common import DEFAULT_ABANDON_LIMIT, RecordingRule, RuleGroup

COUNTER_BY_NAME = {c.name: c for c in COUNTERS}

#: Windows recorded for every count and ratio.
WINDOWS = ("5m", "15m", "1h")
#: Extra window recorded only for the connect-rate baseline of the ConnectRateDrop alert.
BASELINE_WINDOW = "2h"

#: Recorded counts, by name. Each is the sum of catalog counters (stream/kpi/catalog.py): a count
#: KPI of the catalog (its numerator), or one of SUMS_OF_KPIS below.
COUNTS: tuple[str, ...] = (
    "dialed", "attempts_completed", "answered", "connected", "abandoned", "conversations", "conversions",
    "qualified_leads", "handled", "handle_seconds", "busy_seconds", "productive_seconds", "staffed_seconds",
    "live_contacts",
)

#: Recorded counts the catalog has no KPI of its own for: name -> (catalog KPI, its numerator or
#: denominator) whose counters are summed.
SUMS_OF_KPIS: dict[str, tuple[str, Literal["numerator", "denominator"]]] = {
    "handle_seconds": ("aht_seconds", "numerator"),  # talk + hold of handled calls + wrap-up
    "busy_seconds": ("occupancy", "numerator"),  # on call + wrap-up
    "live_contacts": ("conversion_rate", "denominator"),  # live persons reached, outbound + inbound
}

#: A sum the exporter exports as one counter of its own (stream/readers/exporter.py).
EXPORTED_SUMS: dict[tuple[str, ...], str] = {("answered", "unanswered"): "callcenter_attempts_completed_total"}

#: Recorded ratios and averages: catalog KPIs, numerator ÷ denominator as the catalog defines them.
RATIOS: tuple[str, ...] = (
    "connect_rate", "answer_rate", "abandon_rate", "conversation_rate", "conversion_rate", "lead_rate", "occupancy",
)
AVERAGES: tuple[str, ...] = ("aht_seconds", "calls_per_agent_hour")


def count_counters(name: str) -> tuple[str, ...]:
    """The catalog counters a recorded count sums."""
    if name in SUMS_OF_KPIS:
        of_kpi, part = SUMS_OF_KPIS[name]
        counters: tuple[str, ...] = getattr(KPI_BY_NAME[of_kpi], part)
        return counters
    kpi = KPI_BY_NAME[name]
    if kpi.denominator:
        raise ValueError(f"{name} is a quotient in the catalog, not a count")
    return kpi.numerator


def exporter_metrics(counters: tuple[str, ...]) -> tuple[str, ...]:
    """The exporter counters (per campaign, in base units) that sum to these catalog counters."""
    if counters in EXPORTED_SUMS:
        return (EXPORTED_SUMS[counters],)
    return tuple(COUNTER_BY_NAME[c].metric_name for c in counters)


def count_metrics(name: str) -> tuple[str, ...]:
    """The exporter counters a recorded count sums."""
    return exporter_metrics(count_counters(name))


def catalog_quotient(kpi_name: str, increase: Callable[[str], str]) -> str:
    """A catalog ratio as PromQL over any range: Σ increase of the numerator's exporter counters
    ÷ Σ of the denominator's (absent when 0). `increase(metric)` writes one counter's increase,
    e.g. over a dashboard's `$__range`."""
    kpi = KPI_BY_NAME[kpi_name]

    def total(counters: tuple[str, ...]) -> str:
        terms = [increase(m) for m in exporter_metrics(counters)]
        return terms[0] if len(terms) == 1 else f"({' + '.join(terms)})"

    return f"{total(kpi.numerator)} / ({total(kpi.denominator)} > 0)"


class Quotient(NamedTuple):
    """A recorded ratio or average: factor × count `numerator` ÷ count `denominator`."""

    numerator: str
    denominator: str
    factor: float


def _count_of(counters: tuple[str, ...]) -> str:
    for name in COUNTS:
        if count_counters(name) == counters:
            return name
    raise ValueError(f"no recorded count sums {counters}: add one to COUNTS or SUMS_OF_KPIS")


def _in_milliseconds(counters: tuple[str, ...]) -> bool:
    kinds = {COUNTER_BY_NAME[c].ms for c in counters}
    if len(kinds) != 1:
        raise ValueError(f"{counters} mixes ms and other counters")
    return kinds.pop()


def quotient(kpi_name: str) -> Quotient:
    """The catalog KPI as a quotient of recorded counts; ms counters are exported in seconds."""
    kpi = KPI_BY_NAME[kpi_name]
    factor = kpi.scale
    factor *= 1000 if _in_milliseconds(kpi.numerator) else 1
    factor /= 1000 if _in_milliseconds(kpi.denominator) else 1
    return Quotient(_count_of(kpi.numerator), _count_of(kpi.denominator), factor)


#: What late events took back, per exported counter (label `counter`: the counter's name without
#: `callcenter_` and `_total`): the `_total` counters only grow (additions), so a late
#: `agent.state` that shortens a closed interval, or a call re-attributed to another caller ID,
#: never looks like a counter reset (docs/observability.md).
RETRACTED = "callcenter_retracted_total"
CALLER_ID_RETRACTED = "callcenter_caller_id_retracted_total"


def net_increase(metric: str, window: str, by: str) -> str:
    """increase() of an exported counter minus what was retracted from it in the window.

    A series without its retraction series (an older exporter, a counter never retracted)
    counts as nothing retracted."""
    if metric.startswith("callcenter_caller_id_"):
        retracted, counter = CALLER_ID_RETRACTED, metric.removeprefix("callcenter_caller_id_")
    else:
        retracted, counter = RETRACTED, metric.removeprefix("callcenter_")
    counter = counter.removesuffix("_total")
    added = f"sum by ({by}) (increase({metric}[{window}]))"
    back = f'sum by ({by}) (increase({retracted}{{counter="{counter}"}}[{window}]))'
    return f"({added} - ({back} or {added} * 0))"


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
        terms = [net_increase(m, window, "campaign") for m in count_metrics(name)]
        rules.append(_rule(count_record("campaign", name, window), "\n+ ".join(terms)))
    for name in counts:
        rules.append(
            _rule(count_record("center", name, window), f"sum({count_record('campaign', name, window)})")
        )
    for level in ("campaign", "center"):
        for name, record in [(n, ratio_record) for n in ratios] + [(n, avg_record) for n in averages]:
            num, den, factor = quotient(name)
            scale = f"{factor:g} * " if factor != 1 else ""
            rules.append(
                _rule(
                    record(level, name, window),
                    f"{scale}{count_record(level, num, window)} / ({count_record(level, den, window)} > 0)",
                )
            )
    return rules


def _caller_id_rules(window: str) -> list[RecordingRule]:
    """Per caller ID connect rate, and the rate of the center's *other* caller IDs.

    The exporter's caller-ID series carry `caller_id` only (the store counts a number across
    campaigns), so a number is compared with all other numbers of the center."""
    rules: list[RecordingRule] = []
    for name in ("dialed", "attempts_completed", "connected"):
        rules.append(
            _rule(
                f"caller_id:callcenter_caller_id_{name}:increase{window}",
                net_increase(f"callcenter_caller_id_{name}_total", window, "caller_id"),
            )
        )
    for name in ("attempts_completed", "connected"):
        rules.append(
            _rule(
                f"center:callcenter_caller_id_{name}:increase{window}",
                f"sum(caller_id:callcenter_caller_id_{name}:increase{window})",
            )
        )
    for name in ("attempts_completed", "connected"):
        # center total minus this caller ID, kept with the caller ID's label
        rules.append(
            _rule(
                f"caller_id:callcenter_caller_id_others_{name}:increase{window}",
                f"caller_id:callcenter_caller_id_{name}:increase{window} * -1"
                f" + on () group_left () center:callcenter_caller_id_{name}:increase{window}",
            )
        )
    for which in ("", "others_"):
        rules.append(
            _rule(
                f"caller_id:callcenter_caller_id_{which}connect_rate:ratio_rate{window}",
                f"caller_id:callcenter_caller_id_{which}connected:increase{window}"
                f" / (caller_id:callcenter_caller_id_{which}attempts_completed:increase{window} > 0)",
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



def recording_groups() -> list[RuleGroup[RecordingRule]]:
    """The recording-rule groups of rules.yml, in evaluation order."""
    groups: list[RuleGroup[RecordingRule]] = [
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
