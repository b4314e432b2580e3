"""The KPI catalog: every stored counter and every reported KPI, defined once.

The store keeps only *counters* (counts and sums per scope and bucket). Every reported KPI is a
function of counters summed over a window, so a ratio is always Σ numerator ÷ Σ denominator over
the same buckets. The API, the exporter and the docs (`docs/kpis.md`, generated from this module)
all read these definitions; adding a KPI is one entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

Counters = Mapping[str, float]
Unit = Literal["count", "sum", "seconds", "ratio", "per_hour"]
Section = Literal["counts", "durations", "agent_time", "rates"]


@dataclass(frozen=True, slots=True)
class Counter:
    """A stored field: summed per (scope, bucket). `ms` counters hold milliseconds."""

    name: str
    help: str
    ms: bool = False
    integer: bool = True
    metric: str = ""

    @property
    def metric_name(self) -> str:
        """Prometheus counter name: base units (ms counters become `_seconds`), `_total`."""
        base = self.metric or (self.name.removesuffix("_ms") + "_seconds" if self.ms else self.name)
        return f"callcenter_{base}_total"


@dataclass(frozen=True, slots=True)
class Kpi:
    """A reported KPI: `numerator` ÷ `denominator` (both sums of counters) × `scale`.

    With no denominator the KPI is the scaled numerator. A zero denominator gives None.
    """

    name: str
    section: Section
    unit: Unit
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    help: str = ""

    def compute(self, counters: Counters) -> float | None:
        num = sum(counters.get(c, 0) for c in self.numerator)
        if not self.denominator:
            value = num * self.scale
            return int(value) if self.unit == "count" else value
        den = sum(counters.get(c, 0) for c in self.denominator)
        if den == 0:
            return None
        return num * self.scale / den

    @property
    def formula(self) -> str:
        """The formula in words, for HELP texts and the docs."""
        def term(names: tuple[str, ...] | list[str]) -> str:
            joined = " + ".join(names)
            return f"({joined})" if len(names) > 1 else joined

        num = term(self.numerator)
        if self.scale == 0.001:
            num = f"{num} / 1000"
        elif self.scale == 3_600_000:
            num = f"{num} × 3600000"
        if not self.denominator:
            return " + ".join(self.numerator) if self.scale == 1 else num
        return f"{num} ÷ {term(self.denominator)}"


_C = Counter
COUNTERS: tuple[Counter, ...] = (
    _C("dialed", "call.dialed events of outbound calls"),
    _C("offered", "call.offered events: inbound calls that entered a queue (1.1)"),
    _C("inbound_answered", "inbound calls connected to an agent (at their first call.connected)"),
    _C("inbound_abandoned", "call.abandoned of inbound calls"),
    _C("inbound_agent_connected", "call.connected events of inbound calls (kept out of compliance)"),
    _C("inbound_answered_in_sl", "inbound calls connected with wait_ms <= the service-level threshold"),
    _C("inbound_answer_wait_ms", "sum of the first call.connected wait_ms of inbound calls", ms=True,
       metric="inbound_answer_wait_seconds"),
    _C("answered", "call.answered events of outbound calls (any answered_by)"),
    _C("unanswered", "call.unanswered events of outbound calls"),
    _C("connected", "outbound call.answered with answered_by = human (a live person)"),
    _C("machine_answered", "outbound call.answered with answered_by machine or fax"),
    _C("agent_connected", "call.connected events"),
    _C("abandoned", "call.abandoned events of outbound calls"),
    _C("handled", "call.ended events that carry an agent_id"),
    _C("conversations", "handled call.ended with talk_ms >= the conversation threshold"),
    _C("conversions", "call.wrapup with a disposition in the success set"),
    _C("goals_completed", "call.wrapup with a disposition in the goal set"),
    _C("qualified_leads", "call.wrapup qualified_lead/sale/appointment or lead_score >= threshold"),
    _C("intent_high", "call.wrapup with intent high"),
    _C("intent_medium", "call.wrapup with intent medium"),
    _C("intent_low", "call.wrapup with intent low"),
    _C("refusals", "call.wrapup with disposition refused or dnc"),
    _C("dnc_requests", "call.wrapup with disposition dnc"),
    _C("callbacks", "call.callback + call.wrapup with disposition callback_requested"),
    _C("orders", "call.wrapup with disposition sale"),
    _C("revenue", "sum of order_value of sales", integer=False),
    _C("surveys", "call.survey events"),
    _C("csat_sum", "sum of csat"),
    _C("csat_satisfied", "call.survey with csat >= 4"),
    _C("complaints", "call.complaint events"),
    _C("qa_reviews", "call.qa events"),
    _C("qa_compliant", "call.qa with compliant = true"),
    _C("qa_score_sum", "sum of QA scores", integer=False),
    _C("quality_reports", "call.quality events"),
    _C("mos_sum", "sum of mos where reported", integer=False),
    _C("network_drops", "call.quality with dropped = true"),
    _C("resolved", "call.wrapup with resolved = true"),
    _C("wrapups", "call.wrapup events"),
    _C("talk_ms", "sum of talk_ms of handled calls", ms=True),
    _C("hold_ms", "sum of hold_ms of handled calls", ms=True),
    _C("wrapup_ms", "sum of wrapup_ms of call.wrapup", ms=True),
    _C("answer_wait_ms", "sum of call.connected wait_ms", ms=True,
       metric="answer_to_agent_wait_seconds"),
    _C("ring_ms", "sum of ring_ms where reported", ms=True, metric="ring_seconds"),
    _C("ring_reports", "call.answered/unanswered events that carry ring_ms"),
    _C("call_gap_ms", "sum of gaps from an agent's call end to its next connect within one "
       "login session", ms=True),
    _C("call_gaps", "number of such gaps"),
    _C("lead_score_sum", "sum of lead_score where reported", integer=False),
    _C("lead_scored", "call.wrapup events that carry lead_score"),
    _C("compliance_abandons", "outbound call.abandoned + call.connected with wait_ms > the connect threshold"),
    _C("am_dispositions", "call.wrapup with disposition answering_machine"),
    _C("staffed_ms", "agent time in any state but logged_out", ms=True),
    _C("available_ms", "agent time available", ms=True),
    _C("on_call_ms", "agent time on_call", ms=True),
    _C("wrap_up_ms", "agent time in wrap_up", ms=True),
    _C("paused_ms", "agent time paused (any reason)", ms=True),
)
COUNTER_NAMES: frozenset[str] = frozenset(c.name for c in COUNTERS)
FLOAT_COUNTERS: frozenset[str] = frozenset(c.name for c in COUNTERS if not c.integer)
PAUSED_REASON_PREFIX = "paused_ms:"
"""Paused time is also kept per pause reason as counters named `paused_ms:<reason>`."""
WRAPUP_CODE_PREFIX = "wrapups:"
"""Wrap-ups are also kept per `disposition_code` (1.1) as counters named `wrapups:<code>`."""

_SEC = 0.001
_PER_HOUR = 3_600_000.0

_PLAIN_COUNTS = (
    "dialed", "answered", "connected", "machine_answered", "agent_connected", "abandoned",
    "handled", "conversations", "conversions", "goals_completed", "qualified_leads",
    "intent_high", "intent_medium", "intent_low", "refusals", "dnc_requests", "callbacks",
    "orders", "revenue", "surveys", "csat_sum", "csat_satisfied", "complaints", "qa_reviews",
    "qa_compliant", "qa_score_sum", "quality_reports", "mos_sum", "network_drops", "resolved",
    "wrapups", "compliance_abandons", "offered", "inbound_answered", "inbound_abandoned",
)
_SUMS = {"revenue", "csat_sum", "qa_score_sum", "mos_sum"}


def _counts() -> list[Kpi]:
    kpis = [Kpi("attempts_completed", "counts", "count", ("answered", "unanswered"),
                help="call.answered + call.unanswered")]
    for name in _PLAIN_COUNTS:
        unit: Unit = "sum" if name in _SUMS else "count"
        kpis.append(Kpi(name, "counts", unit, (name,), help=_COUNTER_HELP[name]))
    return kpis


_COUNTER_HELP = {c.name: c.help for c in COUNTERS}


def _ratio(name: str, num: tuple[str, ...], den: tuple[str, ...], help: str = "") -> Kpi:
    return Kpi(name, "rates", "ratio", num, den, help=help)


_TALK_HOLD_WRAP = ("talk_ms", "hold_ms", "wrapup_ms")
_PRODUCTIVE = ("available_ms", "on_call_ms", "wrap_up_ms")
_ATTEMPTS = ("answered", "unanswered")
_LIVE_CONTACTS = ("connected", "offered")
"""Every live person reached, outbound or inbound (1.1): the funnel rates' denominator, so that
numerator and denominator cover the same calls; without inbound calls it is `connected`."""
_PLACED = ("dialed", "offered")
"""Every call placed or received: `completion_rate`'s denominator (1.1)."""

KPIS: tuple[Kpi, ...] = (
    *_counts(),
    # Durations: sums kept in ms, reported as averages in seconds.
    Kpi("avg_talk_seconds", "durations", "seconds", ("talk_ms",), ("handled",), _SEC,
        "average talk time of handled calls"),
    Kpi("aht_seconds", "durations", "seconds", _TALK_HOLD_WRAP, ("handled",), _SEC,
        "average handle time: talk + hold + wrap-up per handled call"),
    Kpi("avg_wrapup_seconds", "durations", "seconds", ("wrapup_ms",), ("wrapups",), _SEC,
        "average after-call work per wrap-up"),
    Kpi("avg_call_gap_seconds", "durations", "seconds", ("call_gap_ms",), ("call_gaps",), _SEC,
        "average time from the end of an agent's call to that agent's next connect within one "
        "login session (no logged_out between them); for an agent with no agent.state events "
        "at all, gaps over max_call_gap_seconds (config, default 3600) are not counted; "
        "counted at the connect, independent of batching and arrival order"),
    Kpi("avg_answer_to_agent_seconds", "durations", "seconds", ("answer_wait_ms",),
        ("agent_connected",), _SEC, "average wait from answer to agent bridge"),
    Kpi("avg_ring_seconds", "durations", "seconds", ("ring_ms",), ("ring_reports",), _SEC,
        "average ring time where reported"),
    Kpi("avg_speed_of_answer_seconds", "durations", "seconds", ("inbound_answer_wait_ms",),
        ("inbound_answered",), _SEC, "average queue wait of answered inbound calls (ASA)"),
    # Agent time.
    Kpi("staffed_seconds", "agent_time", "seconds", ("staffed_ms",), scale=_SEC,
        help="time logged in (any state but logged_out)"),
    Kpi("available_seconds", "agent_time", "seconds", ("available_ms",), scale=_SEC,
        help="time available"),
    Kpi("on_call_seconds", "agent_time", "seconds", ("on_call_ms",), scale=_SEC,
        help="time on call"),
    Kpi("wrap_up_seconds", "agent_time", "seconds", ("wrap_up_ms",), scale=_SEC,
        help="time in wrap-up"),
    Kpi("paused_seconds", "agent_time", "seconds", ("paused_ms",), scale=_SEC,
        help="time paused (any reason)"),
    Kpi("productive_seconds", "agent_time", "seconds", _PRODUCTIVE, scale=_SEC,
        help="available + on call + wrap-up"),
    Kpi("occupancy", "agent_time", "ratio", ("on_call_ms", "wrap_up_ms"), _PRODUCTIVE,
        help="share of productive time spent on calls and wrap-up"),
    Kpi("calls_per_agent_hour", "agent_time", "per_hour", ("handled",), ("staffed_ms",),
        _PER_HOUR, "handled calls per staffed hour"),
    Kpi("calls_per_productive_hour", "agent_time", "per_hour", ("handled",), _PRODUCTIVE,
        _PER_HOUR, "handled calls per productive hour"),
    # Rates.
    _ratio("connect_rate", ("connected",), _ATTEMPTS, "live-person answers per completed attempt"),
    _ratio("answer_rate", ("answered",), _ATTEMPTS, "answers per completed attempt"),
    _ratio("machine_rate", ("machine_answered",), ("answered",), "machine/fax share of answers"),
    _ratio("abandon_rate", ("abandoned",), ("connected",), "drops per live-person answer"),
    _ratio("conversation_rate", ("conversations",), _LIVE_CONTACTS, "per live contact"),
    _ratio("conversion_rate", ("conversions",), _LIVE_CONTACTS, "per live contact"),
    _ratio("completion_rate", ("goals_completed",), _PLACED, "per call placed or received"),
    _ratio("lead_rate", ("qualified_leads",), _LIVE_CONTACTS, "per live contact"),
    _ratio("sales_conversion_rate", ("orders",), ("qualified_leads",)),
    _ratio("refusal_rate", ("refusals",), _LIVE_CONTACTS, "per live contact"),
    _ratio("callback_rate", ("callbacks",), _LIVE_CONTACTS, "per live contact"),
    _ratio("complaint_rate", ("complaints",), _LIVE_CONTACTS, "per live contact"),
    _ratio("inbound_abandon_rate", ("inbound_abandoned",), ("offered",),
           "inbound calls abandoned in the queue per inbound call offered"),
    _ratio("service_level", ("inbound_answered_in_sl",), ("offered",),
           "inbound calls answered within the service-level threshold per inbound call offered"),
    Kpi("csat_avg", "rates", "sum", ("csat_sum",), ("surveys",), help="average csat (1..5)"),
    _ratio("csat_satisfied_rate", ("csat_satisfied",), ("surveys",)),
    _ratio("resolution_rate", ("resolved",), ("wrapups",)),
    _ratio("qa_compliance_rate", ("qa_compliant",), ("qa_reviews",)),
    Kpi("avg_mos", "rates", "sum", ("mos_sum",), ("quality_reports",),
        help="mean opinion score per quality report (catalog: mos_sum ÷ quality_reports)"),
    _ratio("network_drop_rate", ("network_drops",), ("quality_reports",)),
    Kpi("avg_order_value", "rates", "sum", ("revenue",), ("orders",), help="revenue per order"),
    Kpi("avg_lead_score", "rates", "sum", ("lead_score_sum",), ("lead_scored",),
        help="average lead score where reported"),
)
KPI_BY_NAME: dict[str, Kpi] = {k.name: k for k in KPIS}
PAUSED_BY_REASON = "paused_seconds_by_reason"
WRAPUPS_BY_CODE = "wrapups_by_code"


def _term(names: tuple[str, ...]) -> str:
    """`Kpi.compute`'s sum of counters, as source: `sum` itself for several counters, `0 +` the
    value for one (what `sum` of one value gives)."""
    if len(names) == 1:
        return f"(0 + get({names[0]!r}, 0))"
    return f"sum([{', '.join(f'get({n!r}, 0)' for n in names)}])"


def _compile_kpis(kpis: tuple[Kpi, ...] = KPIS) -> Callable[[Counters], dict[str, float | dict[str, float] | None]]:
    """Every `Kpi.compute` of `kpis` as one straight-line function, the same arithmetic in
    the same order (`tests/unit/test_catalog.py` holds them equal): it runs for every row of
    every grid (74 KPIs, 500 agents), where a loop over the catalog cost more than the sums."""
    lines = ["def kpis(counters):", "    get = counters.get", "    out = {}"]
    for k in kpis:
        scale = repr(k.scale)
        if not k.denominator:
            value = f"{_term(k.numerator)} * {scale}"
            lines.append(f"    out[{k.name!r}] = int({value})" if k.unit == "count"
                         else f"    out[{k.name!r}] = {value}")
        else:
            lines.append(f"    d = {_term(k.denominator)}")
            lines.append(f"    out[{k.name!r}] = None if d == 0 else {_term(k.numerator)} * {scale} / d")
    lines.append("    return out")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<stream.kpi.catalog KPIS>", "exec"), namespace)  # noqa: S102
    return cast(Callable[[Counters], dict[str, float | dict[str, float] | None]], namespace["kpis"])


_catalog_kpis = _compile_kpis()


@functools.lru_cache(maxsize=64)
def compute_some(names: tuple[str, ...]) -> Callable[[Counters], dict[str, float | dict[str, float] | None]]:
    """The function computing just these KPIs (each as `Kpi.compute` does, in this order), for a
    grid that shows a few of them: 5,000 rows of the whole catalog cost far more than the reads."""
    return _compile_kpis(tuple(KPI_BY_NAME[n] for n in names))


def compute_all(counters: Counters) -> dict[str, float | dict[str, float] | None]:
    """Every catalog KPI for one scope and window, from that window's counter sums."""
    out = _catalog_kpis(counters)
    prefixed = sorted((name, counters[name]) for name in counters.keys() - COUNTER_NAMES)
    out[PAUSED_BY_REASON] = {name[len(PAUSED_REASON_PREFIX):]: value * _SEC for name, value in prefixed
                             if name.startswith(PAUSED_REASON_PREFIX)}
    out[WRAPUPS_BY_CODE] = {name[len(WRAPUP_CODE_PREFIX):]: int(value) for name, value in prefixed
                            if name.startswith(WRAPUP_CODE_PREFIX) and value}
    return out


def _check_catalog() -> None:
    """Fail at import if a KPI names a counter that is not stored (a typo must not ship)."""
    for kpi in KPIS:
        unknown = set(kpi.numerator + kpi.denominator) - COUNTER_NAMES
        if unknown:
            raise AssertionError(f"KPI {kpi.name} uses unknown counters {sorted(unknown)}")


_check_catalog()
