"""The validator's fast path (`stream/contract/fast.py`) answers exactly as the reference
validator (`validate_reference`): on generated valid events of every type (contract 1.1
included) and on every kind of broken one (fields dropped, retyped, padded, blank, oversize or
out of bounds; bad, offset and leap-second timestamps; unknown types and versions; odd number
literals; duplicate keys, BOMs, trailing bytes, invalid UTF-8, non-bytes values), it accepts the
same messages with the same `Event` (every attribute and field, with its type and its order) and
rejects the others with the same reason and message (docs/event-contract.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream.contract import (
    MAX_CODE_CHARS,
    MAX_DURATION_MS,
    MAX_FUTURE_MS,
    MAX_STRING_CHARS,
    Event,
    Rejection,
    format_ts,
    parse_ts,
    validate,
    validate_reference,
)
from stream.contract.validate import SHAPES, SPECS, Shape

NOW = parse_ts("2026-11-20T09:20:00.000Z")
MAX_AGE = 400 * 86_400_000
_DROP = object()

# --- values -------------------------------------------------------------------------------------

WHITESPACE = " \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000"
chars = st.characters(codec=None, exclude_categories=())  # anything, lone surrogates included


def padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pad = st.text(alphabet=WHITESPACE, max_size=2)
    return st.tuples(pad, core, pad).map(lambda t: t[0] + t[1] + t[2])


ascii_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,20}", fullmatch=True)
boundary_strings = st.sampled_from(
    [MAX_CODE_CHARS - 1, MAX_CODE_CHARS, MAX_CODE_CHARS + 1, MAX_STRING_CHARS - 1, MAX_STRING_CHARS,
     MAX_STRING_CHARS + 1, 1]).flatmap(lambda n: st.sampled_from(["x" * n, "é" * n, "😀" * n]))
strings = st.one_of(
    ascii_ids, ascii_ids, padded(ascii_ids), boundary_strings, st.text(alphabet=WHITESPACE, max_size=3),
    st.text(chars, max_size=12), st.sampled_from(["", " ", "\ud800", "a\udfff", "Ünïcødé", "a\x00b"]))


def number_literal() -> st.SearchStrategy[str]:
    """JSON number text the way a dialer might write it (json and orjson must read it alike)."""
    return st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


class Raw(str):
    """A value written into the JSON text as is (a number literal, NaN, Infinity)."""


numbers = st.one_of(
    st.integers(-3, 10), st.integers(-(2**70), 2**70), st.integers(604_799_990, 604_800_010),
    st.integers(10**9 - 2, 10**9 + 2), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 4.0, 4.5, 5.0, 5.000001, 99.9, 100.0, 100.5, 1500.0, 1e9, 2**53 + 0.0]),
    number_literal().map(Raw), st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400")]))
others = st.one_of(st.booleans(), st.none(), st.just([]), st.just({}), st.just([1]), st.just({"a": 1}))
anything = st.one_of(strings, numbers, others)


special_timestamps = st.sampled_from([
    "2026-11-20T09:14:60.000Z", "2026-11-20T09:14:60.999Z", "2026-11-20T09:14:61.000Z", "2026-11-20T09:14:65.000Z",
    "2026-11-20T24:00:00.000Z", "2026-02-29T09:14:00.000Z", "2026-11-20T09:1４:00.000Z", "2026-11-20T09:14:0٣.000Z",
    "2026-11-20T09:14:00.00０Z", "2026-11-20T09:14:+1.000Z", "2026-11-20T09:14:1_.000Z", "2026-11-20T09:14:00,000Z",
    " 026-11-20T09:14:00.000Z", "2026-11-20 09:14:00.000Z", "2026-11-20t09:14:00.000Z", "2026-11-20T09:14:00.000z",
    "2026-11-20T09:14:00.000+00:00", "2026-11-20T09:14:00.000-00:00", "2026-11-20T09:14:00.0000Z"])


def timestamps() -> st.SearchStrategy[Any]:
    near = st.integers(NOW - MAX_AGE - 3_000, NOW + MAX_FUTURE_MS + 3_000)
    edges = st.sampled_from([NOW - MAX_AGE, NOW - MAX_AGE - 1, NOW + MAX_FUTURE_MS, NOW + MAX_FUTURE_MS + 1, NOW])
    instants = st.one_of(near, edges, st.integers(NOW - 86_400_000, NOW))
    return st.one_of(
        instants.map(format_ts), instants.map(format_ts), instants, instants.map(float),
        instants.map(lambda ms: format_ts(ms).replace("T", "t").replace("Z", "z")),
        instants.map(lambda ms: format_ts(ms)[:19] + "+02:00"), instants.map(lambda ms: format_ts(ms)[:19] + "Z"),
        instants.map(lambda ms: format_ts(ms)[:-1] + "999999Z"), padded(instants.map(format_ts)),
        st.from_regex(r"20[0-9]{2}-[0-1][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,7})?"
                      r"([Zz]|[+-][0-2][0-9]:?[0-5][0-9])?", fullmatch=True),
        special_timestamps, special_timestamps,
        anything)


# --- events -------------------------------------------------------------------------------------


def good_value(name: str, check: Any) -> st.SearchStrategy[Any]:
    """A value the field's rule accepts (the common case the fast path must get right)."""
    shape = SHAPES[check]
    if shape.kind == "text":
        return ascii_ids if shape.limit >= 20 else st.sampled_from(["NI", "SALE", "script-B"])
    if shape.kind == "enum":
        return st.sampled_from(sorted(shape.allowed))
    if shape.kind == "ms":
        return st.integers(0, MAX_DURATION_MS)
    if shape.kind == "number":
        return st.one_of(st.integers(int(shape.lo), int(shape.hi)), st.floats(shape.lo, shape.hi))
    if shape.kind == "csat":
        return st.integers(1, 5)
    return st.booleans()


COMMON_EDGES: list[Any] = [None, True, False, "", " ", "\t\u3000", [], {}, [1], {"a": 1}, Raw("NaN"),
                           Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), 2**64, 2**64 - 1, -(2**63), -(2**63) - 1]


def edge_list(shape: Shape) -> list[Any]:
    """Values at and just past the edges of a field's rule, valid or not: every one is tried."""
    if shape.kind == "text":
        n = shape.limit
        return [*COMMON_EDGES, "x" * n, "x" * (n + 1), "é" * n, "é" * (n + 1), "😀" * n, "😀" * (n + 1),
                " " + "x" * n + " ", "\u3000x", "x\x85", "\x1cx\x1f", "\ud800", "a\udfff", "é", "a\x00", 5, 1.5]
    if shape.kind == "enum":
        allowed = sorted(shape.allowed)
        return [*COMMON_EDGES, *allowed, *(f" {v}\t" for v in allowed), *(v.upper() for v in allowed),
                *(v + "x" for v in allowed), *(v[:-1] for v in allowed), "won", "x" * 129]
    if shape.kind == "ms":
        m = MAX_DURATION_MS
        return [*COMMON_EDGES, 0, -1, 1, m, m + 1, m + 0.0, m + 1.0, m - 0.5, 1500.0, 1500.5, -0.0, -0.5, "1500",
                Raw("1.5e3"), Raw("15e-1"), Raw("-0"), Raw("0.0"), Raw("6.048e8"), 2**53, 10**30, -(10**30)]
    if shape.kind == "number":
        lo, hi = shape.lo, shape.hi
        return [*COMMON_EDGES, lo, hi, int(lo), int(hi), lo - 1, hi + 1, hi + 0.5, hi + 1e-9, lo - 1e-9, -0.0,
                float(int(hi)), "50", Raw("1e2"), Raw("-0"), Raw("4.999999999999999999999"), Raw("1E9"), 10**30]
    if shape.kind == "csat":
        return [*COMMON_EDGES, 1, 0, 2, 5, 6, -1, 1.0, 4.0, 4.5, 5.0, 5.000001, 0.999, -0.0, "5", Raw("5e0"), Raw("4.0")]
    return [*COMMON_EDGES, True, 0, 1, "true", "false", 1.0, 0.0]


def edge_values(shape: Shape) -> st.SearchStrategy[Any]:
    """Values at the edges of a field's rule, and generated ones around them."""
    if shape.kind == "text":
        return st.one_of(st.sampled_from(edge_list(shape)), boundary_strings, padded(ascii_ids),
                         st.text(alphabet=WHITESPACE, max_size=3))
    if shape.kind == "enum":
        return st.one_of(st.sampled_from(edge_list(shape)), padded(st.sampled_from(sorted(shape.allowed))))
    return st.sampled_from(edge_list(shape))


ID_SHAPE = Shape("text")
TS_EDGES: list[Any] = [
    "2026-11-20T09:14:60.000Z", "2026-11-20T09:14:60.999Z", "2026-11-20T09:14:61.000Z", "2026-11-20T09:14:65.000Z",
    "2026-11-20T09:14:59.999Z", "2026-11-20T09:14:00.000Z", "2026-11-20T24:00:00.000Z", "2026-02-29T09:14:00.000Z",
    "2026-11-20T09:1\uff14:00.000Z", "2026-11-20T09:14:0\u0663.000Z", "2026-11-20T09:14:00.00\uff10Z",
    "2026-11-20T09:14:+1.000Z", "2026-11-20T09:14:1_.000Z", "2026-11-20T09:14: 1.000Z", "2026-11-20T09:14:00,000Z",
    "2026-11-20T09:14:00.0_0Z", " 026-11-20T09:14:00.000Z", "2026-11-20 09:14:00.000Z", "2026-11-20t09:14:00.000Z",
    "2026-11-20T09:14:00.000z", "2026-11-20T09:14:00.000+00:00", "2026-11-20T09:14:00.000-00:00",
    "2026-11-20T09:14:00.0000Z", "2026-11-20T09:14:00.00Z", "2026-11-20T09:14:00Z", "2026-11-20T09:14:00.000",
    "2026-11-20T09:14:00.000Z ", " 2026-11-20T09:14:00.000Z", "+026-11-20T09:14:00.000Z", "2026-11-20T09:14:00.000X",
    format_ts(NOW + MAX_FUTURE_MS), format_ts(NOW + MAX_FUTURE_MS + 1), format_ts(NOW - MAX_AGE),
    format_ts(NOW - MAX_AGE - 1), NOW + MAX_FUTURE_MS, NOW + MAX_FUTURE_MS + 1, NOW - MAX_AGE, NOW - MAX_AGE - 1,
    float(NOW), NOW + 0.5, "1795166400000", *COMMON_EDGES]
TOP_EDGE_LISTS: dict[str, list[Any]] = {
    "v": [1, 1.0, 2, 2.0, 0, -1, True, False, "1", 1.5, None, Raw("1e0"), Raw("1.0"), Raw("10e-1"), 2**64, [1]],
    "type": [*sorted(SPECS), " call.dialed", "call.dialed\t", "call.transferred", "CALL.DIALED", "agent.login", "",
             "call.", 1, None, ["call.dialed"], {"call.dialed": 1}],
    "ts": TS_EDGES,
}
TOP_EDGES: dict[str, st.SearchStrategy[Any]] = {
    "v": st.sampled_from(TOP_EDGE_LISTS["v"]),
    "type": st.sampled_from(TOP_EDGE_LISTS["type"]),
    "ts": st.one_of(st.sampled_from(TS_EDGES), timestamps()),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of any type (optional fields present or not), then up to 3 mutations, each
    at a field's edges more often than not."""
    etype = draw(st.sampled_from(sorted(SPECS)))
    agent_rule, campaign_required, extra = SPECS[etype]
    event: dict[str, Any] = {"event_id": draw(ascii_ids), "type": etype, "ts": format_ts(draw(
        st.integers(NOW - MAX_AGE, NOW + MAX_FUTURE_MS)))}
    if etype.startswith("call."):
        event["call_id"] = draw(ascii_ids)
    if campaign_required or draw(st.booleans()):
        event["campaign_id"] = draw(ascii_ids)
    if agent_rule == "required" or draw(st.booleans()):
        event["agent_id"] = draw(ascii_ids)
    for name, required, check, _ in extra:
        if required or draw(st.booleans()):
            event[name] = draw(good_value(name, check))
    if draw(st.booleans()):
        event["v"] = 1
    shapes = {name: SHAPES[check] for name, _, check, _ in extra}
    names = ["v", "type", "ts", "event_id", "call_id", "campaign_id", "agent_id", "unknown_field", *shapes, *shapes]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        edges = TOP_EDGES[name] if name in TOP_EDGES else edge_values(shapes.get(name, ID_SHAPE))
        value = draw(st.one_of(edges, edges, edges, st.just(_DROP), anything))
        if value is _DROP:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def encode(event: dict[str, Any], ensure_ascii: bool, spaced: bool) -> bytes:
    """The event as JSON text, with `Raw` values written as they are."""
    raws: dict[str, str] = {}

    def mark(v: Any) -> Any:
        if isinstance(v, Raw):
            token = f"\x01RAW{len(raws)}\x01"
            raws[json.dumps(token)] = str(v)
            return token
        return v

    text = json.dumps({k: mark(v) for k, v in event.items()}, ensure_ascii=ensure_ascii,
                      separators=(", ", ": ") if spaced else (",", ":"))
    for token, literal in raws.items():
        text = text.replace(token, literal)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def messages(draw: st.DrawFn) -> Any:
    raw = encode(draw(events()), draw(st.booleans()), draw(st.booleans()))
    how = draw(st.sampled_from(["as is"] * 6 + ["duplicate key", "bom", "trailing", "cut", "byte", "oversize",
                                                  "str", "bytearray", "memoryview", "array", "spaces"]))
    if how == "duplicate key":
        raw = raw[:-1] + b"," + json.dumps(draw(st.sampled_from(
            ["type", "ts", "event_id", "agent_id", "reason", "wait_ms", "v"]))).encode() + b":" + encode(
            {"x": draw(anything)}, True, False)[5:-1] + b"}"
    elif how == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif how == "trailing":
        raw += draw(st.sampled_from([b" ", b"\n", b"x", b"\x00", b"{}", b"\t\r\n"]))
    elif how == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif how == "byte":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    elif how == "oversize":
        raw = raw[:-1] + b',"pad":"' + b"x" * draw(st.sampled_from([65_400, 65_536])) + b'"}'
    elif how == "array":
        raw = b"[" + raw + b"]"
    elif how == "spaces":
        raw = b" \n" + raw + b"\r\n"
    elif how == "str":
        return raw.decode("utf-8", "surrogatepass")
    elif how == "bytearray":
        return bytearray(raw)
    elif how == "memoryview":
        return memoryview(raw)
    return raw


# --- the comparison -----------------------------------------------------------------------------


def exactly(result: Event | Rejection) -> tuple[Any, ...]:
    """Everything a result says, with the type of every value (1 and 1.0, 0.0 and -0.0 differ)."""
    if isinstance(result, Rejection):
        return ("rejected", result.reason, result.message, result.event_id, result.event_type)
    attrs = (result.event_id, result.type, result.ts_ms, result.campaign_id, result.call_id, result.agent_id)
    return ("accepted", *((type(a), a) for a in attrs),
            [(k, type(v), repr(v)) for k, v in result.fields.items()])


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example(b'{"event_id":"e","type":"call.dialed","ts":"2026-11-20T09:14:60.000Z","campaign_id":"c","call_id":"k"}')
@example(b'{"event_id":"e","type":"agent.state","ts":1763630040000,"agent_id":"a","state":"paused","reason":""}')
@example(b'{"event_id":"e","type":"call.ended","ts":"2026-11-20T09:14:00.000Z","campaign_id":"c","call_id":"k",'
         b'"talk_ms":1500.0,"hold_ms":null,"agent_id":" "}')
@example(b'{"event_id":"e","type":"call.qa","ts":"2026-11-20T09:14:00.000Z","campaign_id":"c","call_id":"k",'
         b'"agent_id":"a","score":123456789012345678901234567890,"compliant":true}')
def test_the_fast_path_answers_as_the_reference(message: Any) -> None:
    fast = validate(message, now_ms=NOW, max_age_ms=MAX_AGE)
    reference = validate_reference(message, now_ms=NOW, max_age_ms=MAX_AGE)
    assert exactly(fast) == exactly(reference)


@settings(max_examples=1000, deadline=None)
@given(events())
def test_mutated_events_are_judged_alike(event: dict[str, Any]) -> None:
    raw = encode(event, True, False)
    assert exactly(validate(raw, now_ms=NOW, max_age_ms=MAX_AGE)) == exactly(
        validate_reference(raw, now_ms=NOW, max_age_ms=MAX_AGE))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(SPECS)), min_size=1, max_size=5), st.data())
def test_valid_events_are_accepted_by_the_fast_path_itself(types: list[str], data: st.DataObject) -> None:
    """Not only the same answer: the usual well-formed event is accepted without the reference."""
    from stream.contract import fast

    for etype in types:
        agent_rule, campaign_required, extra = SPECS[etype]
        event: dict[str, Any] = {"event_id": "e-1", "type": etype, "ts": format_ts(NOW - 1000),
                                 "campaign_id": "camp", "agent_id": "a-1"}
        if etype.startswith("call."):
            event["call_id"] = "call-1"
        for name, _, check, _ in extra:
            event[name] = data.draw(good_value(name, check))
        obj = json.loads(encode(event, True, False))
        assert fast.accept(obj, NOW, MAX_AGE) is not None, event


FIELD_CASES = [(etype, name) for etype, (_, _, extra) in sorted(SPECS.items())
               for name in ("event_id", "call_id", "campaign_id", "agent_id", *(f[0] for f in extra))]
FIELD_CASES += [(etype, name) for etype in ("call.dialed", "call.wrapup", "agent.state") for name in TOP_EDGES]


@pytest.mark.parametrize(("etype", "name"), FIELD_CASES)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_one_field_at_its_edge_is_judged_alike(etype: str, name: str, data: st.DataObject) -> None:
    """A full valid event with exactly one field (or `v`, `type`, `ts`) at or past its edges."""
    _, _, extra = SPECS[etype]
    event: dict[str, Any] = {"event_id": "e-1", "type": etype, "ts": format_ts(NOW - 1000), "campaign_id": "camp",
                             "agent_id": "a-1", "call_id": "call-1"}
    for field, _, check, _ in extra:
        event[field] = data.draw(good_value(field, check))
    shapes = {field: SHAPES[check] for field, _, check, _ in extra}
    event[name] = data.draw(TOP_EDGES[name] if name in TOP_EDGES else edge_values(shapes.get(name, ID_SHAPE)))
    raw = encode(event, True, False)
    assert exactly(validate(raw, now_ms=NOW, max_age_ms=MAX_AGE)) == exactly(
        validate_reference(raw, now_ms=NOW, max_age_ms=MAX_AGE))


@pytest.mark.parametrize(("etype", "name"), FIELD_CASES)
def test_every_edge_value_of_every_field_is_judged_alike(etype: str, name: str) -> None:
    """Each listed edge value, in turn, as the only unusual field of a full valid event."""
    _, _, extra = SPECS[etype]
    event: dict[str, Any] = {"event_id": "e-1", "type": etype, "ts": format_ts(NOW - 1000), "campaign_id": "camp",
                             "agent_id": "a-1", "call_id": "call-1"}
    shapes = {field: SHAPES[check] for field, _, check, _ in extra}
    for field, shape in shapes.items():
        event[field] = edge_list(shape)[len(COMMON_EDGES)]  # the first edge value past the common ones: valid
    assert isinstance(validate_reference(encode(event, True, False), now_ms=NOW, max_age_ms=MAX_AGE), Event)
    values = TOP_EDGE_LISTS[name] if name in TOP_EDGE_LISTS else edge_list(shapes.get(name, ID_SHAPE))
    for value in values:
        raw = encode({**event, name: value}, True, False)
        fast, reference = (check(raw, now_ms=NOW, max_age_ms=MAX_AGE) for check in (validate, validate_reference))
        assert exactly(fast) == exactly(reference), (name, value)
