"""Dialer event contract v1: the validator accepts every valid event and rejects every invalid
one with the documented reason, and never raises (docs/event-contract.md)."""

from __future__ import annotations

import ast
import json
import math
import pathlib
import random
import sys
from typing import Any, cast

import pytest

import stream.contract as C
from stream.contract import (
    MAX_FUTURE_MS,
    MAX_MESSAGE_BYTES,
    REJECTION_REASONS,
    Event,
    Rejection,
    format_ts,
    parse_ts,
    validate,
    validate_dict,
)

NOW = parse_ts("2026-11-20T09:20:00Z")
MAX_AGE = 36 * 24 * 3600 * 1000
TS = "2026-11-20T09:15:02.120Z"
TS_MS = NOW - 4 * 60 * 1000 - 57_880

CALL = {"event_id": "e-1", "ts": TS, "campaign_id": "camp-1", "call_id": "call-1"}

MINIMAL: dict[str, dict[str, Any]] = {
    "call.dialed": {},
    "call.offered": {},
    "call.answered": {"answered_by": "human"},
    "call.unanswered": {"reason": "busy"},
    "call.connected": {"agent_id": "a-1", "wait_ms": 800},
    "call.abandoned": {"wait_ms": 4000, "reason": "no_agent"},
    "call.ended": {"talk_ms": 61000},
    "call.wrapup": {"agent_id": "a-1", "wrapup_ms": 15000, "disposition": "sale"},
    "call.survey": {"csat": 5},
    "call.complaint": {},
    "call.qa": {"agent_id": "a-1", "score": 87.5, "compliant": True},
    "call.quality": {"dropped": False},
    "call.callback": {},
    "agent.state": {"agent_id": "a-1", "state": "available"},
}
FULL: dict[str, dict[str, Any]] = {
    "call.dialed": {
        "list_id": "L-7",
        "lead_id": "lead-9",
        "caller_id": "+15550100",
        "dest_region": "212",
        "mode": "predictive",
        "agent_id": "a-1",
        "variant": "script-B",
    },
    "call.offered": {"queue_id": "sales-in"},
    "call.answered": {"answered_by": "machine", "ring_ms": 9000},
    "call.unanswered": {"reason": "no_answer", "ring_ms": 30000},
    "call.connected": {"agent_id": "a-1", "team_id": "t-1", "wait_ms": 0},
    "call.abandoned": {"wait_ms": 0, "reason": "customer_hangup"},
    "call.ended": {"agent_id": "a-1", "talk_ms": 0, "hold_ms": 2500, "hangup_by": "agent"},
    "call.wrapup": {
        "agent_id": "a-1",
        "wrapup_ms": 0,
        "disposition": "qualified_lead",
        "disposition_code": "CALLBK",
        "order_value": 129.9,
        "lead_score": 70,
        "intent": "high",
        "resolved": True,
    },
    "call.survey": {"agent_id": "a-1", "csat": 1},
    "call.complaint": {"agent_id": "a-1", "category": "rude agent"},
    "call.qa": {"agent_id": "a-1", "score": 0, "compliant": False},
    "call.quality": {"mos": 4.2, "dropped": True},
    "call.callback": {"lead_id": "lead-9"},
    "agent.state": {
        "agent_id": "a-1",
        "state": "paused",
        "reason": "lunch",
        "team_id": "t-1",
        "campaign_id": "camp-1",
    },
}
COMMON = ("event_id", "type", "ts", "campaign_id", "call_id", "agent_id", "v")


def make(etype: str, extra: dict[str, Any] | None = None, /, **over: Any) -> dict[str, Any]:
    """A valid event of `etype` (minimal unless `extra`), with `over` applied (None deletes)."""
    if etype.startswith("call."):
        d: dict[str, Any] = dict(CALL, type=etype)
    else:
        d = {"event_id": "e-1", "type": etype, "ts": TS}
    d.update(MINIMAL[etype] if extra is None else extra)
    for k, v in over.items():
        if v is _DEL:
            d.pop(k, None)
        else:
            d[k] = v
    return d


_DEL = object()


def check(obj: Any, **kw: Any) -> Event | Rejection:
    kw.setdefault("now_ms", NOW)
    kw.setdefault("max_age_ms", MAX_AGE)
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    result = validate(raw, **kw)
    assert isinstance(result, (Event, Rejection))
    if isinstance(obj, dict):
        # the decoded-object entry point must agree with the bytes entry point
        assert validate_dict(json.loads(raw), **kw) == result
    return result


def ok(obj: Any, **kw: Any) -> Event:
    r = check(obj, **kw)
    assert isinstance(r, Event), r
    return r


def rejected(obj: Any, reason: str, *fragments: str, **kw: Any) -> Rejection:
    r = check(obj, **kw)
    assert isinstance(r, Rejection), r
    assert r.reason == reason, r
    for f in fragments:
        assert f in r.message, r
    return r


# --- the public surface ------------------------------------------------------------------------


def test_constants_match_the_contract() -> None:
    assert C.CALL_TYPES == {t for t in MINIMAL if t.startswith("call.")}
    assert C.AGENT_TYPES == {"agent.state"}
    assert C.EVENT_TYPES == set(MINIMAL)
    assert C.DISPOSITIONS == {
        "sale", "appointment", "qualified_lead", "callback_requested", "not_interested",
        "refused", "dnc", "wrong_party", "answering_machine", "no_decision", "other",
    }  # fmt: skip
    assert C.ANSWERED_BY == {"human", "machine", "fax", "unknown"}
    assert C.UNANSWERED_REASONS == {
        "no_answer", "busy", "invalid_number", "rejected", "congestion", "canceled", "error",
    }  # fmt: skip
    assert C.ABANDON_REASONS == {"no_agent", "customer_hangup"}
    assert C.HANGUP_BY == {"customer", "agent", "system"}
    assert C.AGENT_STATES == {"logged_out", "available", "on_call", "wrap_up", "paused"}
    assert C.DIAL_MODES == {"predictive", "progressive", "preview", "manual"}
    assert C.INTENTS == {"high", "medium", "low", "none"}
    assert REJECTION_REASONS == (
        "oversize", "malformed_json", "not_an_object", "missing_field", "invalid_field",
        "unknown_type", "unknown_disposition", "out_of_range", "future_timestamp", "too_old",
        "unsupported_version",
    )  # fmt: skip
    assert MAX_MESSAGE_BYTES == 65536 and MAX_FUTURE_MS == 600_000
    for name in (
        "EVENT_TYPES", "CALL_TYPES", "AGENT_TYPES", "DISPOSITIONS", "ANSWERED_BY",
        "UNANSWERED_REASONS", "ABANDON_REASONS", "HANGUP_BY", "AGENT_STATES", "DIAL_MODES",
        "INTENTS",
    ):  # fmt: skip
        assert isinstance(getattr(C, name), frozenset), name
    assert issubclass(C.ValidationError, Exception)


def test_contract_package_imports_only_stdlib() -> None:
    """The standard library, and orjson for the fast path's JSON decoding (stream/contract/fast.py)."""
    pkg = pathlib.Path(C.__file__).parent
    for path in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top == "stream":
                    assert n.startswith("stream.contract"), (path.name, n)
                else:
                    assert top in sys.stdlib_module_names or top == "__future__" or (
                        top == "orjson" and path.name == "fast.py"), (path.name, n)


def test_validation_error_carries_reason_and_message() -> None:
    e = C.ValidationError("out_of_range", "field 'x' ...")
    assert (e.reason, e.message) == ("out_of_range", "field 'x' ...")


# --- valid events ------------------------------------------------------------------------------


@pytest.mark.parametrize("etype", sorted(MINIMAL))
def test_minimal_event_of_every_type_is_valid(etype: str) -> None:
    ev = ok(make(etype))
    assert ev.type == etype and ev.event_id == "e-1" and ev.ts_ms == TS_MS
    assert ev.call_id == ("call-1" if etype.startswith("call.") else None)
    assert ev.campaign_id == ("camp-1" if etype.startswith("call.") else None)
    expected = {k: v for k, v in MINIMAL[etype].items() if k not in COMMON}
    if etype == "call.ended":
        expected["hold_ms"] = 0  # default applied
    assert dict(ev.fields) == expected
    assert ev.agent_id == MINIMAL[etype].get("agent_id")


@pytest.mark.parametrize("etype", sorted(FULL))
def test_full_event_of_every_type_is_valid(etype: str) -> None:
    ev = ok(make(etype, FULL[etype]))
    expected = {k: v for k, v in FULL[etype].items() if k not in COMMON}
    if etype == "call.quality":
        expected["mos"] = 4.2
    assert dict(ev.fields) == expected
    assert ev.agent_id == FULL[etype].get("agent_id")
    assert ev.campaign_id == "camp-1"


def test_every_enum_value_is_accepted() -> None:
    cases = [
        ("call.answered", "answered_by", C.ANSWERED_BY),
        ("call.unanswered", "reason", C.UNANSWERED_REASONS),
        ("call.abandoned", "reason", C.ABANDON_REASONS),
        ("call.ended", "hangup_by", C.HANGUP_BY),
        ("call.wrapup", "disposition", C.DISPOSITIONS),
        ("call.wrapup", "intent", C.INTENTS),
        ("agent.state", "state", C.AGENT_STATES),
        ("call.dialed", "mode", C.DIAL_MODES),
    ]
    for etype, field, values in cases:
        for value in values:
            assert ok(make(etype, **{field: value})).fields[field] == value


def test_strings_are_trimmed_everywhere() -> None:
    d = make(
        "call.wrapup",
        FULL["call.wrapup"],
        event_id="  e-1\t",
        type=" call.wrapup ",
        ts=f"  {TS}\n",
        campaign_id=" camp-1 ",
        call_id="\u00a0call-1 ",
        agent_id=" a-1",
        disposition=" sale ",
        intent="low ",
    )
    ev = ok(d)
    assert (ev.event_id, ev.type, ev.campaign_id, ev.call_id, ev.agent_id) == (
        "e-1", "call.wrapup", "camp-1", "call-1", "a-1",
    )  # fmt: skip
    assert ev.fields["disposition"] == "sale" and ev.fields["intent"] == "low"
    assert ok(make("agent.state", FULL["agent.state"], reason="  Lunch Break ")).fields["reason"] == "Lunch Break"


def test_string_length_is_counted_after_trimming_in_characters() -> None:
    assert ok(make("call.dialed", event_id="x" * 128)).event_id == "x" * 128
    assert ok(make("call.dialed", event_id="  " + "x" * 128 + "  ")).event_id == "x" * 128
    assert ok(make("call.dialed", event_id="é" * 128)).event_id == "é" * 128  # 256 bytes, 128 chars
    assert ok(make("call.dialed", event_id="😀")).event_id == "😀"
    rejected(make("call.dialed", event_id="x" * 129), "invalid_field", "'event_id'", "128")
    rejected(make("call.dialed", lead_id="y" * 129), "invalid_field", "'lead_id'")


def test_unknown_fields_are_ignored_and_dropped() -> None:
    ev = ok(make("call.answered", shiny_new_field={"a": [1, 2]}, x=None, phone="+1555"))
    assert set(ev.fields) == {"answered_by"}
    # fields a type does not define are unknown to it, even if another type defines them
    ev = ok(make("call.answered", agent_id=12345, team_id="", reason=7, wait_ms="x"))
    assert ev.agent_id is None and set(ev.fields) == {"answered_by"}
    ev = ok(make("call.ended", team_id=["t"], disposition="nonsense"))
    assert set(ev.fields) == {"talk_ms", "hold_ms"}


def test_null_optional_fields_are_absent() -> None:
    ev = ok(make("call.ended", FULL["call.ended"], agent_id=None, hold_ms=None, hangup_by=None))
    assert ev.agent_id is None and dict(ev.fields) == {"talk_ms": 0, "hold_ms": 0}
    ev = ok(make("call.wrapup", order_value=None, lead_score=None, intent=None, resolved=None))
    assert set(ev.fields) == {"wrapup_ms", "disposition"}
    ev = ok(make("agent.state", campaign_id=None, v=None))
    assert ev.campaign_id is None


OPTIONAL_STRINGS = [
    ("call.offered", "queue_id"), ("call.wrapup", "disposition_code"), ("call.dialed", "variant"),
    ("call.dialed", "list_id"), ("call.dialed", "lead_id"), ("call.dialed", "caller_id"),
    ("call.dialed", "dest_region"), ("call.dialed", "mode"), ("call.dialed", "agent_id"),
    ("call.connected", "team_id"), ("call.ended", "agent_id"), ("call.ended", "hangup_by"),
    ("call.wrapup", "intent"), ("call.survey", "agent_id"), ("call.complaint", "agent_id"),
    ("call.complaint", "category"), ("call.callback", "lead_id"), ("agent.state", "reason"),
    ("agent.state", "team_id"), ("agent.state", "campaign_id"),
]


@pytest.mark.parametrize(("etype", "field"), OPTIONAL_STRINGS)
def test_empty_optional_strings_are_absent(etype: str, field: str) -> None:
    """Dialers send `"reason": ""`: an empty optional string is the field left out (1.1), not an
    invalid event (which lost hours of agent time)."""
    for blank in ("", "   ", "\t\n"):
        ev = ok(make(etype, FULL[etype], **{field: blank}))
        assert field not in ev.to_dict(), (field, blank)
        assert ev == ok(make(etype, FULL[etype], **{field: _DEL}))


@pytest.mark.parametrize(("etype", "field"), [
    ("call.dialed", "event_id"), ("call.dialed", "call_id"), ("call.dialed", "campaign_id"),
    ("call.answered", "answered_by"), ("call.unanswered", "reason"), ("call.abandoned", "reason"),
    ("call.connected", "agent_id"), ("call.wrapup", "agent_id"), ("call.wrapup", "disposition"),
    ("call.qa", "agent_id"), ("agent.state", "agent_id"), ("agent.state", "state"),
    ("call.dialed", "type"),
])
def test_empty_required_strings_stay_invalid(etype: str, field: str) -> None:
    for blank in ("", "   "):
        rejected(make(etype, **{field: blank}), "invalid_field", repr(field))


def test_empty_optional_numbers_are_not_strings() -> None:
    """Only string fields read blank as absent: `"hold_ms": ""` is still the wrong type."""
    rejected(make("call.ended", hold_ms=""), "invalid_field", "'hold_ms'")
    rejected(make("call.wrapup", order_value=""), "invalid_field", "'order_value'")
    rejected(make("call.wrapup", resolved=""), "invalid_field", "'resolved'")


def test_contract_1_1_fields() -> None:
    """call.offered (inbound), call.wrapup.disposition_code and call.dialed.variant (1..64)."""
    ev = ok(make("call.offered", queue_id=" q-7 ", agent_id="ignored"))
    assert ev.type == "call.offered" and ev.fields == {"queue_id": "q-7"} and ev.agent_id is None
    rejected(make("call.offered", campaign_id=_DEL), "missing_field", "'campaign_id'")
    rejected(make("call.offered", call_id=_DEL), "missing_field", "'call_id'")
    for etype, field in (("call.wrapup", "disposition_code"), ("call.dialed", "variant")):
        assert ok(make(etype, **{field: " NI "})).fields[field] == "NI"
        assert ok(make(etype, **{field: "x" * 64})).fields[field] == "x" * 64
        rejected(make(etype, **{field: "x" * 65}), "invalid_field", repr(field), "64")
        rejected(make(etype, **{field: 7}), "invalid_field", repr(field))
        assert field not in ok(make(etype, **{field: ""})).fields
    # every v1 event stays valid, and a v1 producer's event means what it meant
    assert ok(make("call.wrapup", v=1)).fields == {"wrapup_ms": 15000, "disposition": "sale"}


def test_campaign_is_required_on_call_events_only() -> None:
    for etype in C.CALL_TYPES:
        rejected(make(etype, campaign_id=_DEL), "missing_field", "'campaign_id'", etype)
        rejected(make(etype, campaign_id=None), "missing_field", "'campaign_id'")
        rejected(make(etype, call_id=_DEL), "missing_field", "'call_id'", etype)
    assert ok(make("agent.state")).campaign_id is None
    assert ok(make("agent.state", campaign_id=" c ")).campaign_id == "c"
    assert ok(make("agent.state", campaign_id="")).campaign_id is None  # empty optional: absent
    rejected(make("call.dialed", campaign_id=""), "invalid_field", "'campaign_id'")
    assert ok(make("agent.state", call_id="ignored")).call_id is None


@pytest.mark.parametrize("etype", ["call.connected", "call.wrapup", "call.qa", "agent.state"])
def test_agent_id_required(etype: str) -> None:
    rejected(make(etype, agent_id=_DEL), "missing_field", "'agent_id'", etype)
    rejected(make(etype, agent_id="   "), "invalid_field", "'agent_id'")


@pytest.mark.parametrize("etype", ["call.dialed", "call.ended", "call.survey", "call.complaint"])
def test_agent_id_optional(etype: str) -> None:
    assert ok(make(etype)).agent_id is None
    assert ok(make(etype, agent_id=" a-9 ")).agent_id == "a-9"
    assert ok(make(etype, agent_id="")).agent_id is None  # empty optional: absent
    assert ok(make(etype, agent_id=" \t")).agent_id is None
    rejected(make(etype, agent_id=7), "invalid_field", "'agent_id'")


def test_version() -> None:
    assert "v" not in ok(make("call.dialed", v=1)).to_dict()
    ok(make("call.dialed", v=1.0))
    rejected(make("call.dialed", v=2), "unsupported_version", "2")
    rejected(make("call.dialed", v=0), "unsupported_version")
    rejected(make("call.dialed", v=2.0), "unsupported_version")
    for bad in ("1", True, False, 1.5, [1], {"major": 1}):
        rejected(make("call.dialed", v=bad), "invalid_field", "'v'")
    rejected(b'{"event_id":"e","type":"call.dialed","ts":1,"v":NaN}', "invalid_field", "'v'")


# --- numbers -------------------------------------------------------------------------------


MS_FIELDS = [
    ("call.answered", "ring_ms"),
    ("call.unanswered", "ring_ms"),
    ("call.connected", "wait_ms"),
    ("call.abandoned", "wait_ms"),
    ("call.ended", "talk_ms"),
    ("call.ended", "hold_ms"),
    ("call.wrapup", "wrapup_ms"),
]


@pytest.mark.parametrize(("etype", "field"), MS_FIELDS)
def test_ms_fields(etype: str, field: str) -> None:
    ev = ok(make(etype, **{field: 1500.0}))
    assert ev.fields[field] == 1500 and type(ev.fields[field]) is int
    assert ok(make(etype, **{field: 0})).fields[field] == 0
    seven_days = 7 * 24 * 3_600_000
    assert ok(make(etype, **{field: seven_days})).fields[field] == seven_days
    rejected(make(etype, **{field: seven_days + 1}), "out_of_range", repr(field), "604800000")
    rejected(make(etype, **{field: -1}), "out_of_range", repr(field), "-1")
    rejected(make(etype, **{field: -3.0}), "out_of_range")
    rejected(make(etype, **{field: 2**53 - 1}), "out_of_range")
    rejected(make(etype, **{field: 2**53}), "out_of_range")
    rejected(make(etype, **{field: 1e300}), "out_of_range")
    bad: object
    for bad in (1500.5, -0.5, "1500", True, False, [1], {}, ""):
        rejected(make(etype, **{field: bad}), "invalid_field", repr(field))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_invalid(literal: str) -> None:
    for etype, field in [*MS_FIELDS, ("call.qa", "score"), ("call.survey", "csat"),
                         ("call.quality", "mos"), ("call.wrapup", "order_value"),
                         ("call.wrapup", "lead_score")]:  # fmt: skip
        body = json.dumps(make(etype, **{field: 12345})).replace("12345", literal)
        rejected(body.encode(), "invalid_field", repr(field))
    rejected(json.dumps(make("call.dialed", ts=12345)).replace("12345", literal).encode(),
             "invalid_field", "'ts'")  # fmt: skip


def test_booleans_are_never_numbers() -> None:
    for etype, field in [("call.qa", "score"), ("call.survey", "csat"), ("call.quality", "mos"),
                         ("call.wrapup", "order_value"), ("call.wrapup", "lead_score")]:  # fmt: skip
        for b in (True, False):
            rejected(make(etype, **{field: b}), "invalid_field", repr(field), "true" if b else "false")
    rejected(make("call.dialed", ts=True), "invalid_field", "'ts'")


def test_bounded_numbers() -> None:
    assert ok(make("call.qa", score=100)).fields["score"] == 100
    assert ok(make("call.qa", score=0.0)).fields["score"] == 0.0
    rejected(make("call.qa", score=100.01), "out_of_range", "'score'", "0", "100")
    rejected(make("call.qa", score=-1), "out_of_range", "'score'")
    rejected(make("call.qa", score="90"), "invalid_field", "'score'")
    rejected(make("call.wrapup", lead_score=101), "out_of_range", "'lead_score'")
    rejected(make("call.wrapup", lead_score=-0.1), "out_of_range", "'lead_score'")
    assert ok(make("call.wrapup", order_value=0)).fields["order_value"] == 0
    rejected(make("call.wrapup", order_value=-0.01), "out_of_range", "'order_value'")
    rejected(make("call.wrapup", order_value=1e300), "out_of_range", "'order_value'")
    assert ok(make("call.wrapup", order_value=10**9)).fields["order_value"] == 10**9
    assert ok(make("call.wrapup", order_value=1e9)).fields["order_value"] == 1e9
    rejected(make("call.wrapup", order_value=1e9 + 0.01), "out_of_range", "'order_value'", "1e+09")
    rejected(make("call.wrapup", order_value=2**53 - 1), "out_of_range", "'order_value'")
    rejected(make("call.wrapup", order_value="12.50"), "invalid_field", "'order_value'")
    for mos in (1, 1.0, 5, 3.7):
        m = ok(make("call.quality", mos=mos)).fields["mos"]
        assert m == mos and type(m) is float
    for mos in (0.99, 5.01, 0, -4):
        rejected(make("call.quality", mos=mos), "out_of_range", "'mos'")


def test_no_valid_event_can_overflow_a_stored_counter() -> None:
    """The bounds make every stored sum exact and far from overflow (docs/event-contract.md,
    "Upper bounds"). Integer counters are Redis int64 (`HINCRBY`), a batch's deltas are summed
    as doubles first (exact up to 2**53), and lifetime totals never expire."""
    assert C.MAX_DURATION_MS == 604_800_000 and C.MAX_ORDER_VALUE == 10**9
    int64_max = 2**63 - 1
    largest_batch = 10**6  # the default batch is 5,000 records (CALLKPI_BATCH_MAX)
    assert largest_batch * C.MAX_DURATION_MS < 2**53  # a batch's double sums stay exact
    # an hour bucket at a million events per second, every one at the 7-day maximum
    assert 10**6 * 3600 * C.MAX_DURATION_MS < int64_max
    # a lifetime total: 2 million calls a day (about 5,000 agents) for 20 years, every
    # event at the maximum in the same counter (each call adds at most one value of a field)
    assert 2 * 10**6 * 365 * 20 * C.MAX_DURATION_MS < int64_max
    # revenue is a float counter (HINCRBYFLOAT): a trillion sales at the maximum stays finite
    assert math.isfinite(float(10**12 * C.MAX_ORDER_VALUE))
    # every value a check accepts is within the bounds (the checks are the contract's only gate)
    for etype, field in MS_FIELDS:
        r = check(make(etype, **{field: int64_max}))
        assert isinstance(r, Rejection) and r.reason == "out_of_range"
    r = check(make("call.wrapup", order_value=float(int64_max)))
    assert isinstance(r, Rejection) and r.reason == "out_of_range"


def test_csat() -> None:
    for v in (1, 2, 3, 4, 5, 4.0):
        got = ok(make("call.survey", csat=v)).fields["csat"]
        assert got == v and type(got) is int
    for v in (0, 6, 4.5, -1, 1e9):
        rejected(make("call.survey", csat=v), "out_of_range", "'csat'", "1 to 5")
    for wrong in ("5", True, None):
        reason = "missing_field" if wrong is None else "invalid_field"
        rejected(make("call.survey", csat=wrong), reason, "'csat'")


def test_booleans() -> None:
    for field, etype in [("compliant", "call.qa"), ("dropped", "call.quality"), ("resolved", "call.wrapup")]:
        assert ok(make(etype, **{field: False})).fields[field] is False
        for bad in (0, 1, "true", "false", 1.0):
            rejected(make(etype, **{field: bad}), "invalid_field", repr(field), "boolean")


# --- one test per rejection reason -----------------------------------------------------------


def test_reason_oversize() -> None:
    r = rejected(b" " * (MAX_MESSAGE_BYTES + 1), "oversize", "65537", "65536")
    assert r.event_id is None


def test_oversize_boundary_is_exactly_64_kib() -> None:
    base = json.dumps(make("call.dialed", pad="")).encode()
    pad = MAX_MESSAGE_BYTES - len(base)
    exact = json.dumps(make("call.dialed", pad="p" * pad)).encode()
    assert len(exact) == MAX_MESSAGE_BYTES
    assert ok(exact).event_id == "e-1"
    over = json.dumps(make("call.dialed", pad="p" * (pad + 1))).encode()
    assert len(over) == MAX_MESSAGE_BYTES + 1
    rejected(over, "oversize")
    # the limit is in bytes, not characters
    multibyte = json.dumps(make("call.dialed", pad="é" * (pad // 2 + 1)), ensure_ascii=False).encode()
    assert len(multibyte) > MAX_MESSAGE_BYTES
    rejected(multibyte, "oversize")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b'{"event_id": "e"',
        b"{'event_id': 'e'}",
        b'{"a":1} {"b":2}',
        b'{"a":1,}',
        b"\xff\xfe{}",
        b'{"event_id":"\xc3\x28"}',
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        '{"a":1}'.encode("utf-16"),
        b"[" * 100_000,
        b"[" * 50_000 + b"]" * 50_000,  # too big anyway
        b'{"x":' + b"9" * 5000 + b"}",  # beyond Python's int digit limit
        b"nul\x00l",
        b"undefined",
    ],
)
def test_reason_malformed_json(raw: bytes) -> None:
    r = check(raw)
    assert isinstance(r, Rejection) and r.reason in ("malformed_json", "oversize"), r
    if len(raw) <= MAX_MESSAGE_BYTES:
        assert r.reason == "malformed_json"


def test_malformed_json_deep_nesting_within_size() -> None:
    rejected(b"[" * 60_000 + b"]" * 5_000, "malformed_json")
    r = check(b'{"a":' * 10_000 + b"1" + b"}" * 10_000)
    assert isinstance(r, Rejection) and r.reason in ("malformed_json", "invalid_field")


def test_non_bytes_values_never_raise() -> None:
    assert validate(None, now_ms=NOW, max_age_ms=MAX_AGE).reason == "malformed_json"  # type: ignore[union-attr]
    assert validate(12, now_ms=NOW, max_age_ms=MAX_AGE).reason == "malformed_json"  # type: ignore[union-attr]
    assert isinstance(validate(bytearray(json.dumps(make("call.dialed")).encode()), now_ms=NOW, max_age_ms=MAX_AGE), Event)
    assert isinstance(validate(memoryview(json.dumps(make("call.dialed")).encode()), now_ms=NOW, max_age_ms=MAX_AGE), Event)
    assert isinstance(validate(json.dumps(make("call.dialed")), now_ms=NOW, max_age_ms=MAX_AGE), Event)
    assert validate_dict([1], now_ms=NOW, max_age_ms=MAX_AGE).reason == "not_an_object"  # type: ignore[arg-type,union-attr]


@pytest.mark.parametrize("raw", [b"[]", b'[{"event_id":"e"}]', b'"call.dialed"', b"42", b"null", b"true", b"1.5"])
def test_reason_not_an_object(raw: bytes) -> None:
    rejected(raw, "not_an_object", "object")


@pytest.mark.parametrize(
    ("etype", "field"),
    [(t, f) for t, extra in MINIMAL.items() for f in extra if f not in COMMON]
    + [(t, f) for t in MINIMAL for f in ("event_id", "ts")]
    + [("call.dialed", "type")],
)
def test_reason_missing_field(etype: str, field: str) -> None:
    r = rejected(make(etype, **{field: _DEL}), "missing_field", repr(field))
    if field != "type":
        assert r.event_type == etype
    rejected(make(etype, **{field: None}), "missing_field", repr(field))


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"event_id": 12}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": " \t\n "}, "event_id"),
        ({"event_id": ["e"]}, "event_id"),
        ({"type": 3}, "type"),
        ({"type": ""}, "type"),
        ({"call_id": {"id": 1}}, "call_id"),
        ({"call_id": "\ud800"}, "call_id"),
        ({"campaign_id": 5}, "campaign_id"),
        ({"ts": "2026-11-20T09:15:02"}, "ts"),
        ({"ts": "2026-11-20 09:15:02Z"}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "1795166102120"}, "ts"),
        ({"ts": 1795166102120.5}, "ts"),
        ({"ts": "2026-02-30T00:00:00Z"}, "ts"),
        ({"ts": [TS]}, "ts"),
        ({"answered_by": "robot"}, "answered_by"),
        ({"answered_by": "Human"}, "answered_by"),
        ({"answered_by": 1}, "answered_by"),
    ],
)
def test_reason_invalid_field(over: dict[str, Any], field: str) -> None:
    d = make("call.answered")
    d.update(over)
    rejected(d, "invalid_field", repr(field))


def test_invalid_enum_messages_list_the_allowed_values() -> None:
    r = rejected(make("call.answered", answered_by="robot"), "invalid_field")
    assert r.message == "field 'answered_by' must be one of human, machine, fax, unknown; got 'robot'"
    assert (r.event_id, r.event_type) == ("e-1", "call.answered")
    cases = [
        ("call.unanswered", "reason", "hung_up"),
        ("call.abandoned", "reason", "busy"),
        ("call.ended", "hangup_by", "network"),
        ("agent.state", "state", "lunch"),
        ("call.dialed", "mode", "auto"),
        ("call.wrapup", "intent", "maybe"),
    ]
    for etype, field, bad in cases:
        r = rejected(make(etype, **{field: bad}), "invalid_field", repr(field), repr(bad), "must be one of")


def test_reason_unknown_type() -> None:
    r = rejected(make("call.dialed", type="call.transferred"), "unknown_type", "call.transferred", "call.dialed")
    assert r.event_type == "call.transferred" and r.event_id == "e-1"
    rejected(make("call.dialed", type="CALL.DIALED"), "unknown_type")
    rejected(make("call.dialed", type="agent.login"), "unknown_type")


def test_reason_unknown_disposition() -> None:
    r = rejected(make("call.wrapup", disposition="won"), "unknown_disposition", "'disposition'", "sale", "'won'")
    assert r.event_type == "call.wrapup"
    rejected(make("call.wrapup", disposition="SALE"), "unknown_disposition")
    rejected(make("call.wrapup", disposition=3), "invalid_field", "'disposition'")
    rejected(make("call.wrapup", disposition=" "), "invalid_field", "'disposition'")


def test_reason_out_of_range() -> None:
    rejected(make("call.ended", talk_ms=-5), "out_of_range", "'talk_ms'")


def test_reason_future_timestamp_and_boundary() -> None:
    assert ok(make("call.dialed", ts=NOW + MAX_FUTURE_MS)).ts_ms == NOW + MAX_FUTURE_MS
    r = rejected(make("call.dialed", ts=NOW + MAX_FUTURE_MS + 1), "future_timestamp", "600.001 s")
    assert r.event_id == "e-1"
    rejected(make("call.dialed", ts="2026-11-20T09:30:00.001Z"), "future_timestamp")
    rejected(make("call.dialed", ts=10**30), "future_timestamp")


def test_reason_too_old_and_boundary() -> None:
    assert ok(make("call.dialed", ts=NOW - MAX_AGE)).ts_ms == NOW - MAX_AGE
    rejected(make("call.dialed", ts=NOW - MAX_AGE - 1), "too_old")
    rejected(make("call.dialed", ts=0), "too_old")
    rejected(make("call.dialed", ts=-(10**30)), "too_old")
    ok(make("call.dialed", ts=NOW - 1000), max_age_ms=1000)
    rejected(make("call.dialed", ts=NOW - 1001), "too_old", max_age_ms=1000)


def test_reason_unsupported_version() -> None:
    rejected(make("call.dialed", v=2), "unsupported_version", "supported: 1")


def test_every_reason_is_covered_by_a_case() -> None:
    samples: list[Any] = [
        b"x" * (MAX_MESSAGE_BYTES + 1),
        b"{",
        b"[]",
        make("call.dialed", call_id=_DEL),
        make("call.dialed", mode="auto"),
        make("call.dialed", type="call.nope"),
        make("call.wrapup", disposition="won"),
        make("call.survey", csat=9),
        make("call.dialed", ts=NOW + 3_600_000),
        make("call.dialed", ts=NOW - MAX_AGE - 3_600_000),
        make("call.dialed", v=3),
    ]
    got = [check(s).reason for s in samples]  # type: ignore[union-attr]
    assert tuple(got) == REJECTION_REASONS


# --- order of checks ---------------------------------------------------------------------------


def test_order_of_checks() -> None:
    # version first: a v2 event may follow other rules entirely
    rejected({"v": 2, "type": "call.teleported"}, "unsupported_version")
    # then identity and type, then ts, then ids, then type fields in contract order
    rejected({"type": "call.nope", "ts": "bad"}, "missing_field", "'event_id'")
    rejected({"event_id": "e", "type": "call.nope", "ts": "bad"}, "unknown_type")
    rejected({"event_id": "e", "type": "call.answered", "ts": "bad"}, "invalid_field", "'ts'")
    rejected(make("call.answered", call_id=_DEL, answered_by="robot"), "missing_field", "'call_id'")
    rejected(make("call.abandoned", wait_ms=-1, reason="x"), "out_of_range", "'wait_ms'")
    # the clock comes last: a broken event gets the same reason whenever it is processed
    rejected(make("call.answered", ts=0, answered_by="robot"), "invalid_field", "'answered_by'")
    rejected(make("call.answered", ts=NOW + 10**9, answered_by=_DEL), "missing_field")


def test_rejection_identity_only_when_readable() -> None:
    r = rejected({"event_id": " e-7 ", "type": " call.answered ", "ts": TS}, "missing_field")
    assert (r.event_id, r.event_type) == ("e-7", "call.answered")
    r = rejected({"event_id": 7, "type": ["x"]}, "invalid_field")
    assert (r.event_id, r.event_type) == (None, None)
    r = rejected({"event_id": "x" * 500, "type": "t" * 500}, "invalid_field")
    assert (r.event_id, r.event_type) == (None, None)
    assert len(r.message) < 300  # messages stay short whatever the input


# --- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-20T09:15:02.120Z", 1795166102120),
        ("2026-11-20T17:15:02.120+08:00", 1795166102120),
        ("2026-11-20T04:45:02.12-04:30", 1795166102120),
        ("2026-11-20T09:15:02.1209999Z", 1795166102120),  # truncated, not rounded
        ("2026-11-20T09:15:02.120999999999+00:00", 1795166102120),
        ("2026-11-20T09:15:02.12Z", 1795166102120),
        ("2026-11-20T09:15:02Z", 1795166102000),
        ("2026-11-20T09:15:02-00:00", 1795166102000),
        ("2026-11-20t09:15:02z", 1795166102000),
        ("  2026-11-20T09:15:02Z ", 1795166102000),
        ("2026-11-21T00:15:02+15:00", 1795166102000),
        ("2016-12-31T23:59:60Z", 1483228800000),  # leap second = POSIX next second
        ("1970-01-01T00:00:00.000Z", 0),
        ("1969-12-31T23:59:59.9995Z", -1),
        ("2024-02-29T00:00:00Z", 1709164800000),
    ],
)
def test_parse_ts_rfc3339(text: str, ms: int) -> None:
    assert parse_ts(text) == ms


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T09:15:02",  # naive
        "2026-11-20T09:15:02.120",
        "2026-11-20",
        "2026-11-20T09:15Z",
        "2026-11-20 09:15:02Z",
        "2026-11-20T09:15:02+0800",
        "2026-11-20T09:15:02+08",
        "2026-11-20T09:15:02,120Z",
        "2026-11-20T09:15:02.Z",
        "2026-W47-5T09:15:02Z",
        "20261120T091502Z",
        "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T09:60:00Z",
        "2026-11-20T09:15:61Z",
        "2026-11-20T09:15:02+24:00",
        "２０２６-11-20T09:15:02Z",  # non-ASCII digits
        "+2026-11-20T09:15:02Z",
        "",
        "1795166102120",
        1795166102120.5,
        float("nan"),
        float("inf"),
        True,
        False,
        None,
        [1],
        {"ms": 1},
    ],
)
def test_parse_ts_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_ts(value)


def test_parse_ts_integers() -> None:
    assert parse_ts(1795166102120) == 1795166102120
    assert parse_ts(1795166102120.0) == 1795166102120
    assert parse_ts(0) == 0 and parse_ts(-5) == -5
    assert type(parse_ts(1e12)) is int


def test_format_ts() -> None:
    assert format_ts(1795166102120) == "2026-11-20T09:15:02.120Z"
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(-1) == "1969-12-31T23:59:59.999Z"
    rng = random.Random(7)
    for _ in range(500):
        ms = rng.randrange(-(10**12), 4 * 10**12)
        assert parse_ts(format_ts(ms)) == ms


def test_epoch_ms_and_string_ts_are_the_same_event_time() -> None:
    assert ok(make("call.dialed", ts=TS_MS)) == ok(make("call.dialed", ts="2026-11-20T17:15:02.120+08:00"))


# --- normalized form -----------------------------------------------------------------------


@pytest.mark.parametrize("etype", sorted(FULL))
def test_to_dict_from_dict_round_trip(etype: str) -> None:
    for d in (make(etype), make(etype, FULL[etype], unknown="dropped", v=1)):
        ev = ok(d)
        out = ev.to_dict()
        assert json.loads(json.dumps(out)) == out
        assert out["ts"] == ev.ts_ms and "v" not in out and "unknown" not in out
        assert None not in out.values()
        assert Event.from_dict(out) == ev
        assert Event.from_dict(json.loads(json.dumps(out))) == ev
        # the normalized form is itself a valid event that normalizes to the same thing
        assert ok(out) == ev


def test_to_dict_shape() -> None:
    ev = ok(make("call.connected", FULL["call.connected"]))
    assert ev.to_dict() == {
        "event_id": "e-1", "type": "call.connected", "ts": TS_MS, "campaign_id": "camp-1",
        "call_id": "call-1", "agent_id": "a-1", "team_id": "t-1", "wait_ms": 0,
    }  # fmt: skip
    ev = ok(make("agent.state"))
    assert ev.to_dict() == {"event_id": "e-1", "type": "agent.state", "ts": TS_MS, "agent_id": "a-1", "state": "available"}
    assert Event.from_dict({**ev.to_dict(), "ts": TS}) == ev


def test_event_is_frozen() -> None:
    ev = ok(make("call.dialed"))
    with pytest.raises(AttributeError):
        ev.type = "x"  # type: ignore[misc]


# --- fuzz ------------------------------------------------------------------------------------

_POOL: list[Any] = [
    None, True, False, 0, -1, 1, 5, 100, 101, 1500.0, 1500.5, -0.0, 2**53, 2**64, 10**30, 1e308,
    float("nan"), float("inf"), "", " ", "x", "x" * 129, "\ud800", "é", "human", "sale", "won",
    "call.dialed", "agent.state", "paused", TS, "2026-11-20T09:15:02", NOW, NOW + 10**9, [], [1],
    {}, {"a": None},
]  # fmt: skip


def _mutate(rng: random.Random, d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    for _ in range(rng.randint(1, 3)):
        keys = list(d) + ["v", "agent_id", "team_id", "reason", "mos", "csat", "zzz"]
        k = rng.choice(keys)
        op = rng.random()
        if op < 0.2:
            d.pop(k, None)
        elif op < 0.8:
            d[k] = rng.choice(_POOL)
        elif isinstance(d.get(k), str):
            d[k] = " " + d[k] + rng.choice(["", " ", "\t", "!", "\u00a0"])
        else:
            d[k] = rng.choice(_POOL)
    return d


def _assert_sane(r: object) -> None:
    assert isinstance(r, (Event, Rejection)), r
    if isinstance(r, Rejection):
        assert r.reason in REJECTION_REASONS, r
        assert "internal validation error" not in r.message, r
        assert r.message and len(r.message) < 400, r
    else:
        assert r.type in C.EVENT_TYPES
        json.dumps(r.to_dict()).encode("utf-8")  # every accepted event is encodable downstream


def test_fuzz_random_bytes_never_raise() -> None:
    rng = random.Random(20261120)
    alphabet = b'{}[]":,0123456789.eE+-tfnul \\"abcxyz\x00\xff\xc3'
    for i in range(3000):
        n = rng.randrange(0, 200)
        if i % 2:
            raw = bytes(rng.randrange(256) for _ in range(n))
        else:
            raw = bytes(rng.choice(alphabet) for _ in range(n))
        _assert_sane(validate(raw, now_ms=NOW, max_age_ms=MAX_AGE))


def test_fuzz_mutated_valid_events_never_raise() -> None:
    rng = random.Random(42)
    bases = [make(t) for t in MINIMAL] + [make(t, FULL[t]) for t in FULL]
    for _ in range(4000):
        d = _mutate(rng, rng.choice(bases))
        raw = json.dumps(d, allow_nan=True).encode("utf-8", "surrogatepass")
        r = validate(raw, now_ms=NOW, max_age_ms=MAX_AGE)
        _assert_sane(r)
        _assert_sane(validate_dict(d, now_ms=NOW, max_age_ms=MAX_AGE))
        # byte-level damage too: truncate or flip one byte
        cut = raw[: rng.randrange(len(raw) + 1)]
        _assert_sane(validate(cut, now_ms=NOW, max_age_ms=MAX_AGE))
        pos = rng.randrange(len(raw))
        flipped = raw[:pos] + bytes([rng.randrange(256)]) + raw[pos + 1 :]
        _assert_sane(validate(flipped, now_ms=NOW, max_age_ms=MAX_AGE))


def test_validate_dict_tolerates_non_json_python_values() -> None:
    class Weird:
        pass

    for value in (Weird(), b"bytes", (1, 2), {1, 2}, 3 + 4j, math.pi):
        for etype, field in [("call.ended", "talk_ms"), ("call.qa", "score"), ("call.dialed", "event_id")]:
            _assert_sane(validate_dict(make(etype, **{field: value}), now_ms=NOW, max_age_ms=MAX_AGE))
    not_str_keys = cast(dict[str, Any], {1: 2, None: 3})  # what a caller might pass regardless
    _assert_sane(validate_dict(not_str_keys, now_ms=NOW, max_age_ms=MAX_AGE))
