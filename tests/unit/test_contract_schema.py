"""The shipped JSON Schema describes the same contract as the validator.

Differential test: on a corpus of valid events and many mutations of them, the schema accepts an
event exactly when the validator does, except for what a schema cannot express (the clock rules,
calendar validity, NaN/Infinity, lone surrogates, the size limit), which the corpus avoids or
which are compared as "valid apart from the clock".
"""

from __future__ import annotations

import json
import pathlib
import random
from typing import Any

import jsonschema  # noqa: E402  (the test extra installs it; a missing package must fail, not skip)
import pytest

import stream.contract as C
from stream.contract import Event, parse_ts, validate_dict

NOW = parse_ts("2026-11-20T09:20:00Z")
MAX_AGE = 36 * 24 * 3600 * 1000
TS = "2026-11-20T17:15:02.120+08:00"
CLOCK_REASONS = ("future_timestamp", "too_old")

MINIMAL: dict[str, dict[str, Any]] = {
    "call.dialed": {},
    "call.offered": {},
    "call.answered": {"answered_by": "unknown"},
    "call.unanswered": {"reason": "congestion"},
    "call.connected": {"agent_id": "a", "wait_ms": 1},
    "call.abandoned": {"wait_ms": 1, "reason": "no_agent"},
    "call.ended": {"talk_ms": 1},
    "call.wrapup": {"agent_id": "a", "wrapup_ms": 1, "disposition": "dnc"},
    "call.survey": {"csat": 3},
    "call.complaint": {},
    "call.qa": {"agent_id": "a", "score": 50, "compliant": True},
    "call.quality": {"dropped": True},
    "call.callback": {},
    "agent.state": {"agent_id": "a", "state": "on_call"},
}
FULL: dict[str, dict[str, Any]] = {
    "call.dialed": {"list_id": "l", "lead_id": "d", "caller_id": "c", "dest_region": "r", "mode": "manual", "agent_id": "a",
                    "variant": "v"},
    "call.offered": {"queue_id": "q"},
    "call.answered": {"answered_by": "fax", "ring_ms": 3},
    "call.unanswered": {"reason": "canceled", "ring_ms": 3},
    "call.connected": {"agent_id": "a", "team_id": "t", "wait_ms": 1},
    "call.abandoned": {"wait_ms": 1, "reason": "customer_hangup"},
    "call.ended": {"agent_id": "a", "talk_ms": 1, "hold_ms": 2, "hangup_by": "system"},
    "call.wrapup": {
        "agent_id": "a", "wrapup_ms": 1, "disposition": "other", "disposition_code": "NI", "order_value": 0.5,
        "lead_score": 99.5, "intent": "none", "resolved": False,
    },  # fmt: skip
    "call.survey": {"agent_id": "a", "csat": 5},
    "call.complaint": {"agent_id": "a", "category": "billing"},
    "call.qa": {"agent_id": "a", "score": 100, "compliant": False},
    "call.quality": {"mos": 1, "dropped": False},
    "call.callback": {"lead_id": "d"},
    "agent.state": {"agent_id": "a", "state": "paused", "reason": "training", "team_id": "t", "campaign_id": "c"},
}


def make(etype: str, extra: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"event_id": "e", "type": etype, "ts": TS}
    if etype.startswith("call."):
        d.update(campaign_id="camp", call_id="call")
    d.update(MINIMAL[etype] if extra is None else extra)
    d.update(over)
    return d


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    path = pathlib.Path(C.__file__).parent / C.SCHEMA_FILE
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def service_accepts(obj: Any) -> bool:
    """The validator's verdict on everything a schema can express (the clock is ignored)."""
    r = validate_dict(obj, now_ms=NOW, max_age_ms=MAX_AGE)
    return isinstance(r, Event) or r.reason in CLOCK_REASONS


def test_schema_is_draft_2020_12_and_documents_its_limits(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    desc = schema["description"]
    for words in ("clock", "future_timestamp", "too_old", "64 KiB", "NaN"):
        assert words in desc


def test_schema_enums_match_the_contract_constants(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    assert set(defs["answeredBy"]["examples"]) == C.ANSWERED_BY
    assert set(defs["unansweredReason"]["examples"]) == C.UNANSWERED_REASONS
    assert set(defs["abandonReason"]["examples"]) == C.ABANDON_REASONS
    assert set(defs["hangupBy"]["examples"]) == C.HANGUP_BY
    assert set(defs["disposition"]["examples"]) == C.DISPOSITIONS
    assert set(defs["intent"]["examples"]) == C.INTENTS
    assert set(defs["agentState"]["examples"]) == C.AGENT_STATES
    assert set(defs["dialMode"]["examples"]) == C.DIAL_MODES
    types = {branch["if"]["properties"]["type"]["pattern"] for branch in schema["allOf"]}
    assert len(types) == len(C.EVENT_TYPES) == len(schema["allOf"])


@pytest.mark.parametrize("etype", sorted(MINIMAL))
def test_every_valid_sample_validates(validator: Any, etype: str) -> None:
    for d in (make(etype), make(etype, FULL[etype]), make(etype, FULL[etype], v=1, extra_field=[1])):
        assert isinstance(validate_dict(d, now_ms=NOW, max_age_ms=MAX_AGE), Event)
        assert validator.is_valid(d), list(validator.iter_errors(d))
    # whitespace around strings is trimmed by the service, so the schema allows it too
    padded = {k: (f" {v}\t" if isinstance(v, str) else v) for k, v in make(etype, FULL[etype]).items()}
    assert service_accepts(padded) and validator.is_valid(padded), list(validator.iter_errors(padded))


def test_empty_optional_strings_are_absent_in_the_schema_too(validator: Any) -> None:
    for etype, field in (("agent.state", "reason"), ("agent.state", "team_id"),
                         ("agent.state", "campaign_id"), ("call.dialed", "mode"),
                         ("call.dialed", "agent_id"), ("call.ended", "hangup_by")):
        d = make(etype, FULL[etype], **{field: " "})
        assert service_accepts(d) and validator.is_valid(d), list(validator.iter_errors(d))


def test_clock_rules_are_not_in_the_schema(validator: Any) -> None:
    for ts in (NOW + 3_600_000, 0, "1999-01-01T00:00:00Z"):
        d = make("call.dialed", ts=ts)
        assert not isinstance(validate_dict(d, now_ms=NOW, max_age_ms=MAX_AGE), Event)
        assert validator.is_valid(d)


REJECTED_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("not_an_object", []),  # type: ignore[list-item]
    ("missing_field", {k: v for k, v in make("call.dialed").items() if k != "event_id"}),
    ("missing_field", {k: v for k, v in make("call.dialed").items() if k != "ts"}),
    ("missing_field", {k: v for k, v in make("call.dialed").items() if k != "type"}),
    ("missing_field", {k: v for k, v in make("call.answered").items() if k != "call_id"}),
    ("missing_field", {k: v for k, v in make("call.answered").items() if k != "campaign_id"}),
    ("missing_field", {k: v for k, v in make("call.answered").items() if k != "answered_by"}),
    ("missing_field", {k: v for k, v in make("agent.state").items() if k != "agent_id"}),
    ("missing_field", make("call.qa", compliant=None)),
    ("invalid_field", make("call.dialed", event_id="")),
    ("invalid_field", make("call.dialed", event_id="   ")),
    ("invalid_field", make("call.dialed", event_id="x" * 129)),
    ("invalid_field", make("call.dialed", event_id=5)),
    ("invalid_field", make("call.dialed", ts="2026-11-20T09:15:02")),
    ("invalid_field", make("call.dialed", ts="2026-11-20T09:15:02.5")),
    ("invalid_field", make("call.dialed", ts=1.5)),
    ("invalid_field", make("call.dialed", ts=True)),
    ("invalid_field", make("call.dialed", mode="auto")),
    ("invalid_field", make("call.answered", answered_by="robot")),
    ("invalid_field", make("call.unanswered", reason="no_agent")),
    ("invalid_field", make("call.abandoned", reason="busy")),
    ("invalid_field", make("call.ended", hangup_by="nobody")),
    ("invalid_field", make("call.wrapup", intent="HIGH")),
    ("invalid_field", make("agent.state", state="away")),
    ("invalid_field", make("agent.state", state="")),
    ("invalid_field", make("call.wrapup", disposition_code="x" * 65)),
    ("invalid_field", make("call.dialed", variant=" " + "v" * 65)),
    ("invalid_field", make("call.connected", agent_id=" ")),
    ("invalid_field", make("call.ended", talk_ms=1.5)),
    ("invalid_field", make("call.ended", talk_ms="1")),
    ("invalid_field", make("call.qa", compliant=1)),
    ("invalid_field", make("call.qa", score=True)),
    ("invalid_field", make("call.dialed", v="1")),
    ("invalid_field", make("call.dialed", v=True)),
    ("unknown_type", make("call.dialed", type="call.transferred")),
    ("unknown_disposition", make("call.wrapup", disposition="won")),
    ("out_of_range", make("call.ended", talk_ms=-1)),
    ("out_of_range", make("call.ended", hold_ms=2**53)),
    ("out_of_range", make("call.ended", talk_ms=604_800_001)),
    ("out_of_range", make("call.wrapup", order_value=1e9 + 1)),
    ("out_of_range", make("call.survey", csat=6)),
    ("out_of_range", make("call.survey", csat=2.5)),
    ("out_of_range", make("call.qa", score=100.5)),
    ("out_of_range", make("call.wrapup", lead_score=-1)),
    ("out_of_range", make("call.wrapup", order_value=-0.01)),
    ("out_of_range", make("call.quality", mos=0.5)),
    ("unsupported_version", make("call.dialed", v=2)),
]


@pytest.mark.parametrize(("reason", "obj"), REJECTED_SAMPLES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTED_SAMPLES)])
def test_schema_expressible_rejections_fail(validator: Any, reason: str, obj: Any) -> None:
    r = validate_dict(obj, now_ms=NOW, max_age_ms=MAX_AGE)
    assert not isinstance(r, Event) and r.reason == reason, r
    assert not validator.is_valid(obj)


def test_every_schema_expressible_reason_has_a_sample() -> None:
    covered = {r for r, _ in REJECTED_SAMPLES}
    assert covered == set(C.REJECTION_REASONS) - {"oversize", "malformed_json", *CLOCK_REASONS}


# values a schema can judge exactly like the service (no NaN, no lone surrogates, no Feb 30)
_POOL: list[Any] = [
    None, True, False, 0, -1, 1, 3, 5, 6, 99.5, 100, 100.5, 1500.0, 1500.5, -0.0, 2**53 - 1, 2**53,
    604_800_000, 604_800_001, 10**9, 1e9 + 0.5,
    10**30, 1e300, "", " ", "\t\n", "x", " x ", "x" * 64, "x" * 65, "x" * 128, "x" * 129, " " + "y" * 128 + " ",
    "\u00a0z\u2003", "\u200b", "\x1c", "\x85q\x85", "é", "human", " machine ", "Human", "sale", "won",
    "busy", "no_agent", "paused", "high", "manual", "agent", "call.dialed", " call.qa ", "agent.state",
    TS, "2026-11-20t09:15:02z", "2026-11-20T09:15:02", "2026-11-20T09:15:02+0800", "1795166102120",
    NOW, 1795166102120.0, [], ["x"], {}, {"a": 1},
]  # fmt: skip
_KEYS = [
    "event_id", "type", "ts", "campaign_id", "call_id", "agent_id", "v", "team_id", "reason",
    "list_id", "lead_id", "caller_id", "dest_region", "mode", "answered_by", "ring_ms", "wait_ms",
    "talk_ms", "hold_ms", "hangup_by", "wrapup_ms", "disposition", "order_value", "lead_score",
    "intent", "resolved", "csat", "category", "score", "compliant", "mos", "dropped", "state", "queue_id", "variant", "disposition_code", "zzz",
]  # fmt: skip


def test_schema_agrees_with_validator_on_mutations(validator: Any) -> None:
    rng = random.Random(1120)
    bases = [make(t) for t in MINIMAL] + [make(t, FULL[t]) for t in FULL]
    accepted = rejected = 0
    for _ in range(6000):
        d = dict(rng.choice(bases))
        for _ in range(rng.randint(1, 2)):
            k = rng.choice(_KEYS if rng.random() < 0.3 else list(d))
            if rng.random() < 0.15:
                d.pop(k, None)
            else:
                d[k] = rng.choice(_POOL)
        service = service_accepts(d)
        schema_ok = validator.is_valid(d)
        assert service == schema_ok, (d, validate_dict(d, now_ms=NOW, max_age_ms=MAX_AGE), list(validator.iter_errors(d))[:3])
        accepted += service
        rejected += not service
    assert accepted > 500 and rejected > 500  # the corpus exercises both sides
