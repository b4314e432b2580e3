"""What one call event adds to the counters, independent of where (which scopes) it counts.

Pure and deterministic: the worker calls it once per event and again, with other scopes, when a
call's attribution changes; the difference of two calls is then exact.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import tzinfo
from typing import Any

from stream.contract import Event
from stream.kpi.catalog import WRAPUP_CODE_PREFIX

SUCCESS_DEFAULT = frozenset({"sale", "appointment"})
QUALIFYING_DISPOSITIONS = frozenset({"qualified_lead", "sale", "appointment"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The configuration that decides counters at write time (changing it does not rewrite history)."""

    conversation_threshold_ms: int = 30_000
    qualification_score: float = 70
    connect_threshold_ms: int = 2_000
    service_level_threshold_ms: int = 20_000
    max_call_gap_ms: int = 3_600_000
    """A call gap of an agent with no `agent.state` events longer than this is not counted."""
    success_dispositions: Collection[str] = SUCCESS_DEFAULT
    goal_dispositions: Collection[str] = field(
        default_factory=lambda: SUCCESS_DEFAULT | {"qualified_lead"})
    timezone: str | tzinfo = "UTC"
    """The center's zone (its name, or the zone itself): the local weeks and months customer
    retention is kept for; the same zone the store's day buckets are cut in."""

    def __reduce__(self) -> tuple[type[Thresholds], tuple[Any, ...]]:
        """Pickled by its fields: the worker hands it to its pipeline process, and a frozen
        dataclass compiled by the native build (mypyc) cannot be unpickled field by field."""
        return (Thresholds, tuple(getattr(self, f.name) for f in fields(self)))


def _answered(f: Mapping[str, Any], out: dict[str, float]) -> None:
    out["answered"] = 1
    by = f["answered_by"]
    if by == "human":
        out["connected"] = 1
    elif by in ("machine", "fax"):
        out["machine_answered"] = 1


def _ring(f: Mapping[str, Any], out: dict[str, float]) -> None:
    if "ring_ms" in f:
        out["ring_ms"] = f["ring_ms"]
        out["ring_reports"] = 1


def _wrapup(e: Event, f: Mapping[str, Any], t: Thresholds, out: dict[str, float]) -> None:
    disposition = f["disposition"]
    out["wrapups"] = 1
    out["wrapup_ms"] = f["wrapup_ms"]
    code = f.get("disposition_code")
    if code is not None:
        out[WRAPUP_CODE_PREFIX + code] = 1
    if disposition in t.success_dispositions:
        out["conversions"] = 1
    if disposition in t.goal_dispositions:
        out["goals_completed"] = 1
    score = f.get("lead_score")
    if disposition in QUALIFYING_DISPOSITIONS or (score is not None and score >= t.qualification_score):
        out["qualified_leads"] = 1
    if score is not None:
        out["lead_score_sum"] = score
        out["lead_scored"] = 1
    intent = f.get("intent")
    if intent in ("high", "medium", "low"):
        out[f"intent_{intent}"] = 1
    if disposition in ("refused", "dnc"):
        out["refusals"] = 1
    if disposition == "dnc":
        out["dnc_requests"] = 1
    if disposition == "callback_requested":
        out["callbacks"] = 1
    if disposition == "sale":
        out["orders"] = 1
        out["revenue"] = f.get("order_value", 0)
    if disposition == "answering_machine":
        out["am_dispositions"] = 1
    if f.get("resolved") is True:
        out["resolved"] = 1


def call_counters(e: Event, t: Thresholds, inbound: bool = False,
                  first_connect: bool = False) -> dict[str, float]:
    """Counter increments of one call event (agent.state is agent time, not counted here).

    `inbound`: the call has a `call.offered` (1.1); then it is no outbound dial, attempt, human
    answer, abandon or compliance abandon. `first_connect`: this is the call's first
    `call.connected` (earliest ts, then event_id), the one inbound answers are counted at.
    Both are attributes of the call, not of the event, and may change as the call's events
    arrive: the caller re-derives them and corrects what earlier events counted."""
    f = e.fields
    out: dict[str, float] = {}
    kind = e.type
    if kind == "call.dialed":
        if not inbound:
            out["dialed"] = 1
    elif kind == "call.offered":
        out["offered"] = 1
    elif kind == "call.answered":
        if not inbound:
            _answered(f, out)
        _ring(f, out)
    elif kind == "call.unanswered":
        if not inbound:
            out["unanswered"] = 1
        _ring(f, out)
    elif kind == "call.connected":
        out["agent_connected"] = 1
        out["answer_wait_ms"] = f["wait_ms"]
        if inbound:
            out["inbound_agent_connected"] = 1
            if first_connect:
                out["inbound_answered"] = 1
                out["inbound_answer_wait_ms"] = f["wait_ms"]
                if f["wait_ms"] <= t.service_level_threshold_ms:
                    out["inbound_answered_in_sl"] = 1
        elif f["wait_ms"] > t.connect_threshold_ms:
            out["compliance_abandons"] = 1
    elif kind == "call.abandoned":
        if inbound:
            out["inbound_abandoned"] = 1
        else:
            out["abandoned"] = 1
            out["compliance_abandons"] = 1
    elif kind == "call.ended":
        if e.agent_id is not None:
            out["handled"] = 1
            out["talk_ms"] = f["talk_ms"]
            out["hold_ms"] = f.get("hold_ms", 0)
            if f["talk_ms"] >= t.conversation_threshold_ms:
                out["conversations"] = 1
    elif kind == "call.wrapup":
        _wrapup(e, f, t, out)
    elif kind == "call.survey":
        out["surveys"] = 1
        out["csat_sum"] = f["csat"]
        if f["csat"] >= 4:
            out["csat_satisfied"] = 1
    elif kind == "call.complaint":
        out["complaints"] = 1
    elif kind == "call.qa":
        out["qa_reviews"] = 1
        out["qa_score_sum"] = f["score"]
        if f["compliant"] is True:
            out["qa_compliant"] = 1
    elif kind == "call.quality":
        out["quality_reports"] = 1
        if "mos" in f:
            out["mos_sum"] = f["mos"]
        if f["dropped"] is True:
            out["network_drops"] = 1
    elif kind == "call.callback":
        out["callbacks"] = 1
    if 0 not in out.values():
        return out
    return {k: v for k, v in out.items() if v != 0 or k in ("talk_ms",)}
