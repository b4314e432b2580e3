"""Golden tests of the push sources' mappings (pure), written from the documented payloads:
Twilio voice status callbacks and AMD, TaskRouter events, Amazon Connect contact events and agent
event stream records."""

from __future__ import annotations

from typing import Any

import pytest

from stream.adapters.config import parse_adapter_config
from stream.adapters.connect import ConnectMapper
from stream.adapters.core import BadRecord, Builder
from stream.adapters.twilio import TaskRouter, TwilioVoice
from tests.adapters.golden import event_line

CONFIG = parse_adapter_config("""instance = "cloud"
dest_region_digits = 4
[agents]
map = { "client:alice" = "alice" }
teams = { alice = "north" }
[dispositions]
map = { "Sold" = "sale" }
""")
T = "Mon, 23 Nov 2026 09:00:{:02d} +0000"


def brief(e: dict) -> str:
    return event_line(e)


def voice(*callbacks: dict, query: dict | None = None) -> list[str]:
    v = TwilioVoice(CONFIG, Builder("tw", "cloud"))
    out = []
    for cb in callbacks:
        out += [brief(e.event) for e in v.status(cb, query or {"campaign": "solar"}, 0)]
    return out


def cb(status: str, sec: int, **more: str) -> dict:
    return {"CallSid": "CA1", "CallStatus": status, "Timestamp": T.format(sec),
            "From": "+15550001111", "To": "+12125551234", **more}


def test_voice_answered_by_a_machine_with_sync_amd() -> None:
    assert voice(cb("initiated", 0), cb("ringing", 2), cb("in-progress", 9, AnsweredBy="machine_start"),
                 cb("completed", 40, CallDuration="31")) == [
        "call.dialed 09:00:00 call_id=CA1 campaign_id=solar caller_id=+15550001111 dest_region=1212",
        "call.answered 09:00:09 call_id=CA1 campaign_id=solar answered_by=machine ring_ms=7000",
        "call.ended 09:00:40 call_id=CA1 campaign_id=solar talk_ms=31000"]


def test_voice_unanswered_and_out_of_order() -> None:
    assert voice(cb("busy", 5), cb("initiated", 0)) == [
        "call.unanswered 09:00:05 call_id=CA1 campaign_id=solar reason=busy",
        "call.dialed 09:00:00 call_id=CA1 campaign_id=solar caller_id=+15550001111 dest_region=1212"]


def test_voice_async_amd_gives_one_answer_at_the_answer_time() -> None:
    q = {"campaign": "solar", "amd": "async", "agent": "client:alice"}
    v = TwilioVoice(CONFIG, Builder("tw", "cloud"))
    assert v.status(cb("in-progress", 9), q, 0) == []
    events = v.status({"CallSid": "CA1", "AnsweredBy": "human", "MachineDetectionDuration": "2500",
                       "Timestamp": T.format(12)}, q, 0)
    assert [brief(e.event) for e in events] == [
        "call.answered 09:00:09 call_id=CA1 campaign_id=solar answered_by=human",
        "call.connected 09:00:09 call_id=CA1 campaign_id=solar agent_id=alice team_id=north wait_ms=0"]
    timeout = v.amd_timeout("CA1")  # a timer after the verdict: same event id, a duplicate
    assert timeout[0].event["event_id"] == events[0].event["event_id"]


def test_taskrouter_flex_inbound_call() -> None:
    tr = TaskRouter(CONFIG, Builder("twtr", "cloud"))
    attrs = '{"call_sid": "CA9", "direction": "inbound", "disposition": "Sold"}'
    base = {"TaskSid": "WT1", "TaskAttributes": attrs, "TaskQueueName": "support"}
    out = []
    for kind, sec, more in [("task.created", 0, {}),
                            ("reservation.accepted", 12, {"WorkerName": "client:alice", "TaskAge": "12"}),
                            ("task.wrapup", 72, {"WorkerName": "client:alice"}),
                            ("task.completed", 90, {"WorkerName": "client:alice"}),
                            ("worker.activity.update", 95, {"WorkerName": "client:alice",
                                                            "WorkerActivityName": "Break", "Sid": "EV5"})]:
        out += [brief(e.event) for e in tr.event({**base, "EventType": kind,
                                                  "Timestamp": str(1795424400 + sec), **more}, 0)]
    assert out == [
        "call.offered 09:00:00 call_id=CA9 campaign_id=support queue_id=support",
        "call.connected 09:00:12 call_id=CA9 campaign_id=support agent_id=alice team_id=north wait_ms=12000",
        "agent.state 09:00:12 agent_id=alice state=on_call campaign_id=support",
        "call.ended 09:01:12 call_id=CA9 campaign_id=support agent_id=alice talk_ms=60000",
        "agent.state 09:01:12 agent_id=alice state=wrap_up",
        ("call.wrapup 09:01:30 call_id=CA9 campaign_id=support agent_id=alice wrapup_ms=18000 disposition=sale "
         "disposition_code=Sold"),
        "agent.state 09:01:35 agent_id=alice state=paused reason=Break team_id=north"]


def connect_event(kind: str, **detail: object) -> dict:
    return {"version": "0", "id": f"ev-{kind}", "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect", "time": "2026-11-23T09:05:00Z",
            "detail": {"eventType": kind, "contactId": "c-1", "channel": "VOICE", **detail}}


def test_connect_outbound_contact() -> None:
    m = ConnectMapper(CONFIG, Builder("ac", "cloud"))
    common: dict[str, Any] = {"initiationMethod": "OUTBOUND", "campaign": {"campaignId": "solar"},
                              "initiationTimestamp": "2026-11-23T09:00:00Z"}
    out = []
    steps: list[tuple[str, dict[str, Any]]] = [
        ("INITIATED", {}),
        ("CONNECTED_TO_SYSTEM", {"connectedToSystemTimestamp": "2026-11-23T09:00:08Z",
                                 "answeringMachineDetectionStatus": "HUMAN_ANSWERED"}),
        ("CONNECTED_TO_AGENT", {"connectedToSystemTimestamp": "2026-11-23T09:00:08Z",
                                "agentInfo": {"agentArn": "arn:aws:connect:x/agent/client:alice",
                                              "connectedToAgentTimestamp": "2026-11-23T09:00:10Z"}}),
        ("DISCONNECTED", {"connectedToSystemTimestamp": "2026-11-23T09:00:08Z",
                          "disconnectTimestamp": "2026-11-23T09:02:10Z",
                          "agentInfo": {"agentArn": "arn:aws:connect:x/agent/client:alice",
                                        "connectedToAgentTimestamp": "2026-11-23T09:00:10Z"}})]
    for kind, more in steps:
        out += [brief(e.event) for e in m.record(connect_event(kind, **common, **more))]
    assert out == [
        "call.dialed 09:00:00 call_id=c-1 campaign_id=solar",
        "call.answered 09:00:08 call_id=c-1 campaign_id=solar answered_by=human",
        "call.connected 09:00:10 call_id=c-1 campaign_id=solar agent_id=alice team_id=north wait_ms=2000",
        "call.ended 09:02:10 call_id=c-1 campaign_id=solar agent_id=alice talk_ms=120000"]


def test_connect_inbound_abandon_and_agent_events() -> None:
    m = ConnectMapper(CONFIG, Builder("ac", "cloud"))
    q = {"initiationMethod": "INBOUND",
         "queueInfo": {"queueArn": "arn:aws:connect:x/queue/support",
                       "enqueueTimestamp": "2026-11-23T09:00:00Z"}}
    out = [brief(e.event) for e in m.record(connect_event("QUEUED", **q))]
    out += [brief(e.event) for e in m.record(connect_event(
        "DISCONNECTED", **q, disconnectTimestamp="2026-11-23T09:00:45Z"))]
    agent: dict[str, Any] = {"EventId": "e-1", "EventType": "STATE_CHANGE", "EventTimestamp": "2026-11-23T09:01:00Z",
             "AgentARN": "arn:aws:connect:x/agent/aa",
             "CurrentAgentSnapshot": {"AgentStatus": {"Name": "Lunch"},
                                      "Configuration": {"Username": "client:alice"},
                                      "Contacts": []}}
    out += [brief(e.event) for e in m.record(agent)]
    agent["CurrentAgentSnapshot"]["Contacts"] = [{"State": "CONNECTED"}]
    agent["EventId"] = "e-2"
    out += [brief(e.event) for e in m.record(agent)]
    assert out == [
        "call.offered 09:00:00 call_id=c-1 campaign_id=support queue_id=support",
        "call.abandoned 09:00:45 call_id=c-1 campaign_id=support wait_ms=45000 reason=customer_hangup",
        "agent.state 09:01:00 agent_id=alice state=paused reason=Lunch team_id=north",
        "agent.state 09:01:00 agent_id=alice state=on_call team_id=north"]


def test_connect_contact_event_without_any_time_is_a_bad_record() -> None:
    """A step with neither its own timestamp nor the envelope's `time` is dead-lettered as
    missing_field (not a TypeError that fails the whole request)."""
    m = ConnectMapper(CONFIG, Builder("ac", "cloud"))
    agent = {"agentArn": "arn:aws:connect:x/agent/client:alice"}
    steps: list[tuple[str, dict[str, Any]]] = [("CONNECTED_TO_SYSTEM", {"answeringMachineDetectionStatus": "HUMAN_ANSWERED"}),
                                               ("CONNECTED_TO_AGENT", {"agentInfo": agent})]
    for kind, detail in steps:
        record = connect_event(kind, initiationMethod="OUTBOUND", campaign={"campaignId": "solar"},
                               **detail)
        del record["time"]
        with pytest.raises(BadRecord) as caught:
            m.record(record)
        assert caught.value.reason == "missing_field", kind
