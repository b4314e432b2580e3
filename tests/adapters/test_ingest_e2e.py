"""`callkpi ingest` over real HTTP into the real broker, worker, Redis and API: per-line answers,
bearer token, Twilio signatures (valid and invalid), Amazon Connect records, exact KPIs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import httpx
import pytest

from stream.cli.embedded import free_port, wait_for_port
from stream.contract import format_ts
from tests.adapters.test_queue_log_e2e import kpis
from tests.harness import Service, wait_until

pytestmark = pytest.mark.integration
TOKEN, TWILIO = "s3cret", "twilio-auth-token"
NOW = int(time.time()) - 1800


@pytest.fixture(scope="module")
def ingest(pipeline: Service, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("ingest")
    (d / "a.toml").write_text('instance = "cloud1"\n[campaigns]\ndefault = "e2e-ingest"\n')
    port = free_port()
    proc = pipeline.spawn("ingest", ["ingest", "--port", str(port), "--config", str(d / "a.toml"),
                                     "--public-url", "https://kpi.example.com", "--amd-timeout", "2"],
                          {"CALLKPI_API_TOKEN": TOKEN, "TWILIO_AUTH_TOKEN": TWILIO})
    wait_for_port(port, timeout=60, proc=proc.proc)
    yield f"http://127.0.0.1:{port}"
    proc.stop()


def signed_post(url: str, path: str, params: dict[str, str], token: str = TWILIO) -> httpx.Response:
    from twilio.request_validator import RequestValidator
    sig = RequestValidator(token).compute_signature("https://kpi.example.com" + path, params)
    return httpx.post(url + path, content=urlencode(params), timeout=30,
                      headers={"X-Twilio-Signature": sig,
                               "Content-Type": "application/x-www-form-urlencoded"})


def rfc2822(s: int) -> str:
    return format_datetime(datetime.fromtimestamp(s, UTC))


def test_v1_events_answer_per_line(pipeline: Service, ingest: str) -> None:
    ev = lambda i, **f: json.dumps({"event_id": f"in-{i}", "ts": (NOW + i) * 1000,  # noqa: E731
                                    "campaign_id": "e2e-v1", "call_id": f"V{i}", **f})
    body = "\n".join([ev(1, type="call.dialed"), ev(2, type="call.dialed"), "{broken",
                      ev(3, type="call.answered", answered_by="robot")])
    r = httpx.post(ingest + "/ingest/v1/events", content=body, timeout=30)
    assert r.status_code == 401
    r = httpx.post(ingest + "/ingest/v1/events", content=body, timeout=30,
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    res = r.json()
    assert (res["accepted"], res["rejected"]) == (2, 2)
    assert [x.get("reason") for x in res["results"]] == [None, None, "malformed_json",
                                                         "invalid_field"]
    # a JSON array, sent twice: the same events, counted once
    arr = "[" + ",".join([ev(4, type="call.dialed"), ev(4, type="call.dialed")]) + "]"
    for _ in range(2):
        assert httpx.post(ingest + "/ingest/v1/events", content=arr, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()["accepted"] == 2
    wait_until(lambda: kpis(pipeline, "e2e-v1", NOW, NOW + 60)["dialed"] >= 3, 120, pipeline.logs)
    time.sleep(1)
    assert kpis(pipeline, "e2e-v1", NOW, NOW + 60)["dialed"] == 3


def test_twilio_voice_signed_callbacks(pipeline: Service, ingest: str) -> None:
    path = "/ingest/twilio/voice?campaign=e2e-twilio"
    calls = []
    for i in range(6):
        sid, t = f"CA{i:032d}", NOW + 60 * i
        calls.append(sid)
        base = {"CallSid": sid, "AccountSid": "AC1", "From": "+15550001111", "To": "+12125550000"}
        seq = [{**base, "CallStatus": "initiated", "Timestamp": rfc2822(t)},
               {**base, "CallStatus": "ringing", "Timestamp": rfc2822(t + 1)}]
        if i % 3 == 0:
            seq += [{**base, "CallStatus": "in-progress", "Timestamp": rfc2822(t + 6),
                     "AnsweredBy": "human"},
                    {**base, "CallStatus": "completed", "Timestamp": rfc2822(t + 46),
                     "CallDuration": "40"}]
        elif i % 3 == 1:
            seq += [{**base, "CallStatus": "in-progress", "Timestamp": rfc2822(t + 6),
                     "AnsweredBy": "machine_end_beep"},
                    {**base, "CallStatus": "completed", "Timestamp": rfc2822(t + 26),
                     "CallDuration": "20"}]
        else:
            seq += [{**base, "CallStatus": "no-answer", "Timestamp": rfc2822(t + 31)}]
        for params in seq:
            r = signed_post(ingest, path, params)
            assert r.status_code == 204, r.text
    # a forged callback is refused and changes nothing
    forged = {"CallSid": "CAforged", "CallStatus": "initiated", "Timestamp": rfc2822(NOW)}
    assert signed_post(ingest, path, forged, token="wrong").status_code == 403
    # Twilio retries a callback: the same event ids
    assert signed_post(ingest, path, {"CallSid": calls[0], "CallStatus": "initiated",
                                      "Timestamp": rfc2822(NOW)}).status_code == 204
    wait_until(lambda: kpis(pipeline, "e2e-twilio", NOW, NOW + 400)["attempts_completed"] >= 6,
               120, pipeline.logs)
    time.sleep(1)
    k = kpis(pipeline, "e2e-twilio", NOW, NOW + 400)
    assert (k["dialed"], k["answered"], k["connected"], k["machine_answered"],
            k["attempts_completed"]) == (6, 4, 2, 2, 6)
    assert k["avg_ring_seconds"] == pytest.approx((5 * 4 + 30 * 2) / 6)
    assert pipeline.pipeline_counter("duplicates") >= 1


def test_amazon_connect_inbound_and_bad_records(pipeline: Service, ingest: str) -> None:
    def at(s: int) -> str:
        return format_ts(s * 1000)
    records = []
    for i in range(4):
        t = NOW + 100 * i
        q = {"queueArn": "arn:aws:connect:r:1:instance/x/queue/e2e-connect",
             "enqueueTimestamp": at(t)}
        base = {"contactId": f"ct-{i}", "channel": "VOICE", "initiationMethod": "OUTBOUND",
                "campaign": {"campaignId": "e2e-connect"}, "initiationTimestamp": at(t)}
        records.append({"detail": {**base, "eventType": "INITIATED"}, "time": at(t)})
        if i < 3:
            records.append({"detail": {**base, "eventType": "CONNECTED_TO_SYSTEM",
                                       "connectedToSystemTimestamp": at(t + 5),
                                       "answeringMachineDetectionStatus": "HUMAN_ANSWERED"},
                            "time": at(t + 5)})
        if i < 2:
            agent = {"agentArn": "arn:aws:connect:r:1:instance/x/agent/ag-1",
                     "connectedToAgentTimestamp": at(t + 7)}
            records.append({"detail": {**base, "eventType": "CONNECTED_TO_AGENT", "queueInfo": q,
                                       "connectedToSystemTimestamp": at(t + 5), "agentInfo": agent},
                            "time": at(t + 7)})
            records.append({"detail": {**base, "eventType": "DISCONNECTED", "agentInfo": agent,
                                       "connectedToSystemTimestamp": at(t + 5),
                                       "disconnectTimestamp": at(t + 67)}, "time": at(t + 67)})
        elif i == 3:
            records.append({"detail": {**base, "eventType": "DISCONNECTED",
                                       "disconnectTimestamp": at(t + 30)}, "time": at(t + 30)})
    records.append({"what": "not a Connect record"})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(ingest + "/ingest/amazon-connect", json=records, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["results"][-1]["reason"] == "unknown_record"
    assert httpx.post(ingest + "/ingest/amazon-connect", content=b"{", headers=headers,
                      timeout=30).status_code == 400
    wait_until(lambda: kpis(pipeline, "e2e-connect", NOW, NOW + 500)["attempts_completed"] >= 4,
               120, pipeline.logs)
    time.sleep(1)
    k = kpis(pipeline, "e2e-connect", NOW, NOW + 500)
    assert (k["dialed"], k["answered"], k["connected"], k["agent_connected"], k["handled"],
            k["attempts_completed"]) == (4, 3, 3, 2, 2, 4)
    assert k["avg_talk_seconds"] == pytest.approx(60)
    assert k["avg_answer_to_agent_seconds"] == pytest.approx(2)
    metrics = httpx.get(ingest + "/metrics", timeout=30).text
    assert 'callkpi_adapter_bad_input_total{reason="unknown_record",source="ingest"} 1.0' in metrics
    assert 'callkpi_adapter_bad_input_total{reason="bad_signature",source="ingest"} 1.0' in metrics


def test_twilio_async_amd_and_taskrouter(pipeline: Service, ingest: str) -> None:
    """Async AMD: the verdict's own callback gives the answer; without one the answer counts as
    unknown after --amd-timeout. TaskRouter: an inbound Flex task connected, wrapped up and
    completed, and a canceled one."""
    path = "/ingest/twilio/voice?campaign=e2e-amd&amd=async"
    base = {"AccountSid": "AC1", "From": "+15550001111", "To": "+12125550000"}
    t = NOW + 1000
    for sid, verdict in (("CAamd1", "machine_end_silence"), ("CAamd2", None)):
        for params in ({"CallStatus": "initiated", "Timestamp": rfc2822(t)},
                       {"CallStatus": "in-progress", "Timestamp": rfc2822(t + 5)}):
            assert signed_post(ingest, path, {**base, "CallSid": sid, **params}).status_code == 204
        if verdict:
            r = signed_post(ingest, path, {"CallSid": sid, "AccountSid": "AC1",
                                           "AnsweredBy": verdict, "MachineDetectionDuration": "3000"})
            assert r.status_code == 204
    wait_until(lambda: kpis(pipeline, "e2e-amd", t, t + 60)["answered"] >= 2, 120, pipeline.logs)
    time.sleep(1)
    k = kpis(pipeline, "e2e-amd", t, t + 60)
    assert (k["dialed"], k["answered"], k["machine_answered"], k["connected"]) == (2, 2, 1, 0)

    tr = "/ingest/twilio/taskrouter"
    t = NOW + 2000
    common = {"TaskSid": "WTe2e1", "TaskQueueName": "e2e-flex",
              "TaskAttributes": json.dumps({"call_sid": "CAflex1", "direction": "inbound",
                                            "disposition": "SALE"})}
    steps = [("task.created", 0, {}), ("reservation.accepted", 10, {"WorkerName": "flex-ann", "TaskAge": "10"}),
             ("task.wrapup", 70, {"WorkerName": "flex-ann"}), ("task.completed", 85, {"WorkerName": "flex-ann"})]
    for kind, dt_, more in steps:
        r = signed_post(ingest, tr, {**common, "EventType": kind, "Timestamp": str(t + dt_), **more})
        assert r.status_code == 204, r.text
    gone = {"TaskSid": "WTe2e2", "TaskQueueName": "e2e-flex",
            "TaskAttributes": json.dumps({"call_sid": "CAflex2", "direction": "inbound"})}
    for kind, dt_, more in (("task.created", 5, {}), ("task.canceled", 35, {"TaskAge": "30"})):
        assert signed_post(ingest, tr, {**gone, "EventType": kind, "Timestamp": str(t + dt_),
                                        **more}).status_code == 204
    wait_until(lambda: kpis(pipeline, "e2e-flex", t, t + 120)["wrapups"] >= 1, 120, pipeline.logs)
    time.sleep(1)
    k = kpis(pipeline, "e2e-flex", t, t + 120)
    assert (k["offered"], k["inbound_answered"], k["inbound_abandoned"], k["handled"],
            k["conversions"]) == (2, 1, 1, 1, 1)
    assert k["avg_talk_seconds"] == pytest.approx(60)
    assert k["avg_wrapup_seconds"] == pytest.approx(15)
    assert k["avg_speed_of_answer_seconds"] == pytest.approx(10)


def test_no_2xx_without_the_kafka_ack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With its broker gone, `callkpi ingest` answers 503 (the sender retries), never 2xx."""
    import os
    import subprocess
    import sys

    from stream.cli.embedded import create_topics, start_infra
    infra = start_infra(workdir=tmp_path)
    port = free_port()
    try:
        create_topics(infra.bootstrap, {"dialer.events": 1})
        env = {**os.environ, "CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_API_TOKEN": ""}
        proc = subprocess.Popen([sys.executable, "-m", "stream.cli.main", "ingest", "--port",
                                 str(port)], env=env, stdout=open(tmp_path / "ingest.log", "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, timeout=60, proc=proc)
            line = json.dumps({"event_id": "ack-1", "type": "call.dialed", "ts": NOW * 1000,
                               "call_id": "A1", "campaign_id": "c"})
            url = f"http://127.0.0.1:{port}/ingest/v1/events"
            assert httpx.post(url, content=line, timeout=60).status_code == 200
            infra.broker.stop()
            r = httpx.post(url, content=line.replace("ack-1", "ack-2"), timeout=120)
            assert r.status_code == 503 and "retry" in r.json()["error"]
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        infra.stop()
