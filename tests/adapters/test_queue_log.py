"""Golden tests of the queue_log mapping, written from the documented format (docs/adapters.md):
each line type gives exactly these v1 events."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.adapters.config import parse_adapter_config
from stream.adapters.core import BadRecord, Builder, LineKeys
from stream.adapters.queue_log import QueueLogLines, QueueLogMapper
from tests.adapters.golden import event_line

DATA = Path(__file__).parent / "data"
CONFIG = parse_adapter_config((DATA / "adapter.toml").read_text(), source="adapter.toml")


def lines_handler(dialect: str = "asterisk", shift: int = 0) -> QueueLogLines:
    b = Builder("ql", CONFIG.instance, shift, CONFIG.tz)
    return QueueLogLines(QueueLogMapper(CONFIG, b, dialect), LineKeys())


def map_all(text: str, dialect: str = "asterisk") -> tuple[list[dict], list[str]]:
    h = lines_handler(dialect)
    events, bad = [], []
    for raw in text.encode().splitlines():
        try:
            events += [e.event for e in h.handle(raw).events]
        except BadRecord as e:
            bad.append(e.reason)
    return events, bad


def brief(e: dict) -> str:
    return event_line(e, without=("campaign_id",))


def test_the_fixture_maps_to_exactly_these_events() -> None:
    events, bad = map_all((DATA / "queue_log.asterisk").read_text())
    assert bad == ["short_line", "bad_timestamp"]
    assert [brief(e) for e in events] == [
        "agent.state 09:00:00 agent_id=alice state=available team_id=north",
        "agent.state 09:00:00 agent_id=bob state=available team_id=south",
        "call.offered 09:01:00 call_id=1795424460.1 queue_id=support",
        "call.connected 09:01:08 call_id=1795424460.1 agent_id=alice team_id=north wait_ms=8000",
        "agent.state 09:01:08 agent_id=alice state=on_call team_id=north",
        "call.ended 09:03:08 call_id=1795424460.1 agent_id=alice talk_ms=120000 hangup_by=customer",
        "agent.state 09:03:08 agent_id=alice state=available team_id=north",
        "call.offered 09:01:40 call_id=1795424500.3 queue_id=support",
        "call.abandoned 09:02:10 call_id=1795424500.3 wait_ms=30000 reason=customer_hangup",
        "agent.state 09:03:20 agent_id=bob state=paused reason=lunch team_id=south",
        "call.offered 09:05:00 call_id=1795424700.4 queue_id=support",
        "call.connected 09:05:15 call_id=1795424700.4 agent_id=alice team_id=north wait_ms=15000",
        "agent.state 09:05:15 agent_id=alice state=on_call team_id=north",
        # the pause taken during the call starts when the transfer ends the agent's leg
        "call.ended 09:06:15 call_id=1795424700.4 agent_id=alice talk_ms=60000 hangup_by=agent",
        "agent.state 09:06:15 agent_id=alice state=paused reason=break team_id=north",
        "call.offered 09:06:40 call_id=1795424800.6 queue_id=support",
        "call.abandoned 09:07:40 call_id=1795424800.6 wait_ms=60000 reason=no_agent",
        "agent.state 09:08:20 agent_id=bob state=available team_id=south",
        "agent.state 09:10:00 agent_id=alice state=logged_out team_id=north",
        "agent.state 09:10:00 agent_id=bob state=logged_out team_id=south",
    ]
    assert all(e["campaign_id"] == "support" for e in events if e["type"].startswith("call."))
    for number in ("5551234567", "5559876543", "5550001111", "5550002222"):  # callers' ids
        assert number not in repr(events)


def test_event_ids_are_deterministic_and_unique() -> None:
    text = (DATA / "queue_log.asterisk").read_text()
    first, _ = map_all(text)
    again, _ = map_all(text)
    assert first == again
    ids = [e["event_id"] for e in first]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("ql:pbx1:") and len(i) <= 128 for i in ids)


def test_time_shift_moves_ts_but_not_event_ids() -> None:
    raw = b"1795424460|1795424460.1|support|NONE|ENTERQUEUE||5551234567|1"
    plain = lines_handler().handle(raw).events[0].event
    shifted = lines_handler(shift=7).handle(raw).events[0].event
    assert plain["event_id"] == shifted["event_id"]
    assert plain["ts"] == "2026-11-23T09:01:00.000Z"
    assert shifted["ts"] == "2026-11-30T09:01:00.000Z"


def test_identical_lines_in_one_second_get_distinct_ids() -> None:
    raw = b"1795424600|NONE|NONE|PJSIP/1002|PAUSEALL|Lunch"
    keys = LineKeys()
    assert keys.key(raw, "1795424600") != keys.key(raw, "1795424600")
    restored = LineKeys(keys.state())
    assert restored.key(raw, "1795424600").endswith("#2")


def test_outbound_queue_entry_is_an_answer_with_the_configured_verdict() -> None:
    events, _ = map_all("1795424460|77.1|sales|NONE|ENTERQUEUE||5551234567|1\n")
    assert [brief(e) for e in events] == [
        "call.answered 09:01:00 call_id=77.1 answered_by=unknown"]
    assert events[0]["campaign_id"] == "solar"


@pytest.mark.parametrize("status,reason", [("NOANSWER", "no_answer"), ("BUSY", "busy"),
                                           ("CANCEL", "canceled"), ("CONGESTION", "congestion"),
                                           ("CHANUNAVAIL", "error")])
def test_outcall_unanswered(status: str, reason: str) -> None:
    events, _ = map_all(f"1795424460|9.1|sales|PJSIP/1001|OUTCALL|{status}|0|25\n")
    assert [brief(e) for e in events] == [
        "call.dialed 09:00:35 call_id=9.1 mode=manual agent_id=alice",
        f"call.unanswered 09:01:00 call_id=9.1 reason={reason} ring_ms=25000"]


def test_outcall_answered() -> None:
    events, _ = map_all("1795424460|9.1|sales|PJSIP/1001|OUTCALL|ANSWER|40|50\n")
    assert [brief(e) for e in events] == [
        "call.dialed 09:00:10 call_id=9.1 mode=manual agent_id=alice",
        "call.answered 09:00:20 call_id=9.1 answered_by=unknown ring_ms=10000",
        "call.connected 09:00:20 call_id=9.1 agent_id=alice team_id=north wait_ms=0",
        "call.ended 09:01:00 call_id=9.1 agent_id=alice talk_ms=40000"]


def test_vicidial_qm_outbound_call_with_disposition() -> None:
    events, _ = map_all(
        "1795424460|V1|solar|NONE|CALLOUTBOUND||5551234567\n"
        "1795424462|V1|solar|Agent/1001|CONNECT|2\n"
        "1795424522|V1|solar|Agent/1001|COMPLETEAGENT|2|60|1\n"
        "1795424540|V1|solar|Agent/1001|CALLSTATUS|SALE\n", dialect="vicidial-qm")
    assert [brief(e) for e in events] == [
        "call.answered 09:01:00 call_id=V1 answered_by=unknown",
        "call.connected 09:01:02 call_id=V1 agent_id=alice team_id=north wait_ms=2000",
        "agent.state 09:01:02 agent_id=alice state=on_call team_id=north",
        "call.ended 09:02:02 call_id=V1 agent_id=alice talk_ms=60000 hangup_by=agent",
        "agent.state 09:02:02 agent_id=alice state=wrap_up team_id=north",
        "call.wrapup 09:02:20 call_id=V1 agent_id=alice wrapup_ms=18000 disposition=sale disposition_code=SALE",
        "agent.state 09:02:20 agent_id=alice state=available team_id=north"]


def test_members_as_logins_when_configured() -> None:
    cfg = parse_adapter_config('[queue_log]\nmembers_are_logins = true\n')
    h = QueueLogLines(QueueLogMapper(cfg, Builder("ql", "x")), LineKeys())
    out = []
    for raw in [b"100000000000|MANAGER|q1|PJSIP/7|ADDMEMBER|", b"1000000001|MANAGER|q2|PJSIP/7|ADDMEMBER|",
                b"1000000002|MANAGER|q1|PJSIP/7|REMOVEMEMBER|", b"1000000003|MANAGER|q2|PJSIP/7|REMOVEMEMBER|"]:
        try:
            out += [e.event["state"] for e in h.handle(raw).events]
        except BadRecord as e:
            out.append(e.reason)
    assert out == ["bad_timestamp", "available", "logged_out"]


def test_pbxware_csv_export() -> None:
    from stream.adapters.queue_log import PbxwareLines
    b = Builder("ql", CONFIG.instance, 0, CONFIG.tz)
    h = PbxwareLines(QueueLogMapper(CONFIG, b, "pbxware"))
    events = []
    for raw in (DATA / "pbxware_queue_log.csv").read_bytes().splitlines():
        events += [e.event for e in h.handle(raw).events]
    assert [brief(e) for e in events] == [
        "agent.state 09:00:00 agent_id=alice state=available team_id=north",
        "call.offered 09:01:00 call_id=1795424460.7 queue_id=support",
        "call.connected 09:01:10 call_id=1795424460.7 agent_id=alice team_id=north wait_ms=10000",
        "agent.state 09:01:10 agent_id=alice state=on_call team_id=north",
        "call.ended 09:03:10 call_id=1795424460.7 agent_id=alice talk_ms=120000 hangup_by=agent",
        "agent.state 09:03:10 agent_id=alice state=available team_id=north",
        # two OUTDIAL retries on one callid: two attempts
        "call.dialed 09:03:20 call_id=1795424600.8#1 agent_id=alice mode=manual",
        "call.unanswered 09:03:32 call_id=1795424600.8#1 reason=canceled ring_ms=12000",
        "call.dialed 09:03:40 call_id=1795424600.8#2 agent_id=alice mode=manual",
        "call.answered 09:03:48 call_id=1795424600.8#2 answered_by=unknown ring_ms=8000",
        "call.connected 09:03:48 call_id=1795424600.8#2 agent_id=alice team_id=north wait_ms=0",
        "call.ended 09:05:00 call_id=1795424600.8#2 agent_id=alice talk_ms=72000 hangup_by=customer",
        "call.offered 09:05:20 call_id=1795424720.9 queue_id=support",
        "call.abandoned 09:06:05 call_id=1795424720.9 wait_ms=45000 reason=customer_hangup",
    ]
    assert "5559990000" not in repr(events) and "5551234567" not in repr(events)
    assert events[6]["campaign_id"] == "solar"
