"""Twilio webhooks to v1 events (pure): Programmable Voice status callbacks (with answering-machine
detection, also asynchronous) and TaskRouter event callbacks. The HTTP side (signature check,
Kafka ack before the answer) is `stream/adapters/io/ingest.py`.

Twilio knows no campaign: the StatusCallback URL carries it (`?campaign=solar`, optionally
`&agent=...` for agent-dialled calls and `&amd=async` when AsyncAmd is on). Rules: docs/adapters.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from stream.adapters.config import AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted, dest_region, seconds_ms

ANSWERED_BY = {"human": "human", "machine_start": "machine", "machine_end_beep": "machine",
               "machine_end_silence": "machine", "machine_end_other": "machine",
               "fax": "fax", "unknown": "unknown"}
UNANSWERED = {"busy": "busy", "no-answer": "no_answer", "failed": "error", "canceled": "canceled"}
TTL_MS = 3600_000


def twilio_ts(params: Mapping[str, str], now_ms: int) -> int:
    """The callback's `Timestamp` (RFC 2822), else the time it was received."""
    raw = params.get("Timestamp")
    if not raw:
        return now_ms
    try:
        return int(parsedate_to_datetime(raw).timestamp() * 1000)
    except (TypeError, ValueError):
        try:
            return int(float(raw) * 1000)  # TaskRouter sends epoch seconds
        except ValueError:
            raise BadRecord("bad_timestamp", f"Timestamp {raw[:40]!r}") from None


class TwilioVoice:
    """Status callbacks of one call arrive in any order and may repeat; event ids are
    `tw:CallSid:kind`, so a repeat is a duplicate for the worker."""

    def __init__(self, config: AdapterConfig, builder: Builder) -> None:
        self.config, self.b = config, builder
        self.ringing: dict[str, int] = {}
        self.answered: dict[str, tuple[int, str, str | None]] = {}  # sid → (ts, campaign, agent)

    def _expire(self, now_ms: int) -> None:
        for d in (self.ringing, self.answered):
            for sid in [s for s, v in d.items() if (v if isinstance(v, int) else v[0]) < now_ms - TTL_MS]:
                del d[sid]

    def status(self, params: Mapping[str, str], query: Mapping[str, str], now_ms: int) -> list[Emitted]:
        sid = params.get("CallSid", "").strip()
        status = params.get("CallStatus", "").strip().lower()
        if not status and params.get("AnsweredBy"):  # the AsyncAmdStatusCallback
            return self.amd(params, query, now_ms)
        if not sid or not status:
            raise BadRecord("missing_field", "a voice callback needs CallSid and CallStatus")
        self._expire(now_ms)
        campaign = self.config.campaign(query.get("campaign"))
        agent = self.config.agent(query["agent"]) if query.get("agent") else None
        ts = twilio_ts(params, now_ms)
        if status in ("queued", "initiated"):
            return [self.b.call("dialed", sid, ts, sid, campaign, agent_id=agent,
                                mode="manual" if agent else None,
                                caller_id=params.get("From") or None,
                                dest_region=dest_region(params.get("To"),
                                                        self.config.dest_region_digits))]
        if status == "ringing":
            self.ringing.setdefault(sid, ts)
            return []
        if status == "in-progress":
            return self._answered(sid, ts, campaign, agent, params, query)
        if status == "completed":
            talk = seconds_ms(params.get("CallDuration"), "CallDuration")
            out = []
            if sid not in self.answered:  # no answered callback came: the call was answered
                out += self._answered(sid, ts - talk, campaign, agent, params, query, final=True)
            self.answered.pop(sid, None)
            out.append(self.b.call("ended", sid, ts, sid, campaign, agent_id=agent, talk_ms=talk))
            return out
        if status in UNANSWERED:
            ring = self.ringing.pop(sid, None)
            return [self.b.call("unanswered", sid, ts, sid, campaign, reason=UNANSWERED[status],
                                ring_ms=ts - ring if ring is not None and ts >= ring else None)]
        raise BadRecord("unknown_status", f"CallStatus {status[:30]!r}")

    def _answered(self, sid: str, ts: int, campaign: str, agent: str | None,
                  params: Mapping[str, str], query: Mapping[str, str],
                  final: bool = False) -> list[Emitted]:
        if sid in self.answered and not final:
            return []
        self.answered[sid] = (ts, campaign, agent)
        verdict = params.get("AnsweredBy")
        if verdict is None and query.get("amd") == "async" and not final:
            return []  # the verdict comes in its own callback (amd), or the timeout gives unknown
        return self._answer_events(sid, ts, campaign, agent, verdict)

    def _answer_events(self, sid: str, ts: int, campaign: str, agent: str | None,
                       verdict: str | None) -> list[Emitted]:
        by = ANSWERED_BY.get((verdict or "").lower(), self.config.answered_by_default
                             if verdict is None else "unknown")
        ring = self.ringing.pop(sid, None)
        out = [self.b.call("answered", sid, ts, sid, campaign, answered_by=by,
                           ring_ms=ts - ring if ring is not None and ts >= ring else None)]
        if agent:
            out.append(self.b.call("connected", sid, ts, sid, campaign, agent_id=agent,
                                   team_id=self.config.team(agent), wait_ms=0))
        return out

    def amd(self, params: Mapping[str, str], query: Mapping[str, str], now_ms: int) -> list[Emitted]:
        """The asynchronous AMD callback: the answer, at the time the call was answered."""
        sid = params.get("CallSid", "").strip()
        if not sid or not params.get("AnsweredBy"):
            raise BadRecord("missing_field", "an AMD callback needs CallSid and AnsweredBy")
        known = self.answered.get(sid)
        if known is not None:
            ts, campaign, agent = known
        else:  # the answered callback was not seen: answered when detection started
            campaign = self.config.campaign(query.get("campaign"))
            agent = self.config.agent(query["agent"]) if query.get("agent") else None
            ts = twilio_ts(params, now_ms) - seconds_ms(
                int(params.get("MachineDetectionDuration") or 0) / 1000, "MachineDetectionDuration")
            self.answered[sid] = (ts, campaign, agent)
        return self._answer_events(sid, ts, campaign, agent, params["AnsweredBy"])

    def amd_timeout(self, sid: str) -> list[Emitted]:
        """No AMD verdict came in time: the answer counts with `unknown` (a later verdict is a
        duplicate of it for the worker)."""
        known = self.answered.get(sid)
        if known is None:
            return []
        ts, campaign, agent = known
        return self._answer_events(sid, ts, campaign, agent, "unknown")


class TaskRouter:
    """TaskRouter (Flex) event callbacks: reservations connect agents, task wrap-up and
    completion end the call and its after-call work, worker activities are agent states."""

    def __init__(self, config: AdapterConfig, builder: Builder) -> None:
        self.config, self.b = config, builder
        self.accepted: dict[str, int] = {}
        self.wrapup: dict[str, int] = {}

    def event(self, params: Mapping[str, str], now_ms: int) -> list[Emitted]:
        kind = params.get("EventType", "").strip()
        if not kind:
            raise BadRecord("missing_field", "a TaskRouter callback needs EventType")
        ts = twilio_ts(params, now_ms)
        for d in (self.accepted, self.wrapup):
            for k in [k for k, v in d.items() if v < now_ms - 24 * TTL_MS]:
                del d[k]
        if kind == "worker.activity.update":
            return self._activity(params, ts)
        attrs = self._attributes(params)
        task = params.get("TaskSid", "")
        if not task:
            return []
        call_id = str(attrs.get("call_sid") or task)
        campaign = self.config.campaign(params.get("TaskQueueName") or attrs.get("campaign"))
        worker = params.get("WorkerName") or params.get("WorkerSid")
        agent = self.config.agent(worker) if worker else None
        age_ms = seconds_ms(params.get("TaskAge") or 0, "TaskAge")
        if kind == "task.created" and str(attrs.get("direction", "inbound")).lower() == "inbound":
            return [self.b.call("offered", call_id, ts, call_id, campaign,
                                queue_id=params.get("TaskQueueName") or None)]
        if kind == "reservation.accepted" and agent:
            self.accepted[call_id] = ts
            return [self.b.call("connected", call_id, ts, call_id, campaign, agent_id=agent,
                                team_id=self.config.team(agent), wait_ms=age_ms),
                    self.b.agent(f"{call_id}:{agent}", ts, agent, "on_call", kind="on_call",
                                 campaign_id=campaign)]
        if kind == "task.canceled":
            return [self.b.call("abandoned", call_id, ts, call_id, campaign, wait_ms=age_ms,
                                reason="customer_hangup")]
        if kind == "task.wrapup":
            start = self.accepted.get(call_id)
            self.wrapup[call_id] = ts
            out = [self.b.call("ended", call_id, ts, call_id, campaign, agent_id=agent,
                               talk_ms=ts - start if start is not None and ts >= start else 0)]
            if agent:
                out.append(self.b.agent(f"{call_id}:{agent}", ts, agent, "wrap_up", kind="wrap_up"))
            return out
        if kind == "task.completed" and agent:
            start = self.wrapup.pop(call_id, None)
            self.accepted.pop(call_id, None)
            code = str(attrs.get("disposition") or attrs.get("disposition_code") or "")
            return [self.b.call("wrapup", call_id, ts, call_id, campaign, agent_id=agent,
                                wrapup_ms=ts - start if start is not None and ts >= start else 0,
                                disposition=self.config.disposition(code) if code
                                else self.config.disposition_default,
                                disposition_code=code[:64] or None)]
        return []

    def _attributes(self, params: Mapping[str, str]) -> dict[str, Any]:
        raw = params.get("TaskAttributes")
        if not raw:
            return {}
        try:
            attrs = json.loads(raw)
        except ValueError:
            raise BadRecord("bad_json", "TaskAttributes is not JSON") from None
        return attrs if isinstance(attrs, dict) else {}

    def _activity(self, params: Mapping[str, str], ts: int) -> list[Emitted]:
        worker = params.get("WorkerName") or params.get("WorkerSid")
        name = params.get("WorkerActivityName", "")
        if not worker or not name:
            raise BadRecord("missing_field", "worker.activity.update needs a worker and activity")
        agent = self.config.agent(worker)
        key = params.get("Sid") or params.get("EventSid") or f"{worker}:{ts}"
        if name.lower() == "available":
            state, reason = "available", None
        elif name.lower() == "offline":
            state, reason = "logged_out", None
        else:
            state, reason = "paused", self.config.pause_reason(name)
        return [self.b.agent(key, ts, agent, state, reason=reason, team_id=self.config.team(agent))]
