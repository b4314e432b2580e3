"""Amazon Connect to v1 events (pure): contact events (EventBridge, through an API destination)
and agent event stream records. Rules and what cannot be known: docs/adapters.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.adapters.config import AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted
from stream.contract import parse_ts

AMD = {"HUMAN_ANSWERED": "human", "ANSWERED": "human", "VOICEMAIL_BEEP": "machine",
       "VOICEMAIL_NO_BEEP": "machine", "FAX_MACHINE_DETECTED": "fax"}
AMD_UNANSWERED = {"SIT_TONE_BUSY": "busy", "SIT_TONE_INVALID_NUMBER": "invalid_number",
                  "SIT_TONE_DETECTED": "invalid_number", "AMD_UNANSWERED": "no_answer"}
OUTBOUND = frozenset({"OUTBOUND", "API", "CAMPAIGN"})


def _ms(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise BadRecord("bad_timestamp", f"{what}: {str(value)[:40]!r}") from None


def _when(ts: int | None, kind: str) -> int:
    """The time of a step that must have one: its own timestamp, else the envelope's `time`."""
    if ts is None:
        raise BadRecord("missing_field", f"{kind}: no timestamp of its own and no envelope time")
    return ts


def _last(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn else None


class ConnectMapper:
    def __init__(self, config: AdapterConfig, builder: Builder) -> None:
        self.config, self.b = config, builder

    def record(self, body: Mapping[str, Any]) -> list[Emitted]:
        """One JSON object: an EventBridge contact event or an agent event stream record."""
        if "detail" in body and isinstance(body["detail"], Mapping):
            return self.contact_event(body["detail"], body.get("time"))
        if "EventType" in body and ("AgentARN" in body or "CurrentAgentSnapshot" in body):
            return self.agent_event(body)
        raise BadRecord("unknown_record", "neither an EventBridge contact event nor an agent "
                        "event stream record")

    def contact_event(self, d: Mapping[str, Any], envelope_time: Any) -> list[Emitted]:
        kind = str(d.get("eventType", "")).upper()
        contact = d.get("contactId")
        if not kind or not contact:
            raise BadRecord("missing_field", "a contact event needs eventType and contactId")
        method = str(d.get("initiationMethod", "")).upper()
        queue = d.get("queueInfo") or {}
        agent_info = d.get("agentInfo") or {}
        campaign_src = ((d.get("campaign") or {}).get("campaignId") or
                        _last(queue.get("queueArn")) or None)
        campaign = self.config.campaign(campaign_src)
        now = _ms(envelope_time, "time")
        initiated = _ms(d.get("initiationTimestamp"), "initiationTimestamp")
        enqueued = _ms(queue.get("enqueueTimestamp"), "enqueueTimestamp")
        system = _ms(d.get("connectedToSystemTimestamp"), "connectedToSystemTimestamp")
        to_agent = _ms(agent_info.get("connectedToAgentTimestamp"), "connectedToAgentTimestamp")
        ended = _ms(d.get("disconnectTimestamp"), "disconnectTimestamp")
        agent = self.config.agent(_last(agent_info.get("agentArn")) or "") or None
        outbound = method in OUTBOUND

        def c(k: str, ts: int, **f: Any) -> Emitted:
            return self.b.call(k, contact, ts, contact, campaign, **f)

        if kind == "INITIATED":
            ts = initiated or now
            return [c("dialed", ts)] if outbound and ts else []
        if kind == "QUEUED" and not outbound:
            ts = enqueued or now
            return [c("offered", ts, queue_id=_last(queue.get("queueArn")))] if ts else []
        if kind == "CONNECTED_TO_SYSTEM" and outbound:
            status = str(d.get("answeringMachineDetectionStatus", "")).upper()
            ts = _when(system or now, kind)
            if status in AMD_UNANSWERED:
                return [c("unanswered", ts, reason=AMD_UNANSWERED[status])]
            return [c("answered", ts, answered_by=AMD.get(status, "unknown" if status
                                                          else self.config.answered_by_default))]
        if kind == "CONNECTED_TO_AGENT" and agent:
            ts = _when(to_agent or now, kind)
            since = enqueued if not outbound else system
            return [c("connected", ts, agent_id=agent, team_id=self.config.team(agent),
                      wait_ms=max(ts - since, 0) if since else 0)]
        if kind == "DISCONNECTED":
            ts = ended or now
            if ts is None:
                return []
            if to_agent:
                return [c("ended", ts, agent_id=agent, talk_ms=max(ts - to_agent, 0))]
            if enqueued and not outbound:
                return [c("abandoned", ts, wait_ms=max(ts - enqueued, 0),
                          reason="customer_hangup")]
            if outbound and not system:
                return [c("unanswered", ts, reason="no_answer")]
            if outbound and enqueued:  # answered, queued for an agent, none came: a drop
                return [c("abandoned", ts, wait_ms=max(ts - enqueued, 0), reason="no_agent")]
            return []
        return []

    def agent_event(self, r: Mapping[str, Any]) -> list[Emitted]:
        kind = str(r.get("EventType", "")).upper()
        if kind == "HEART_BEAT":
            return []
        eid, ts = r.get("EventId"), _ms(r.get("EventTimestamp"), "EventTimestamp")
        snap = r.get("CurrentAgentSnapshot") or {}
        conf = snap.get("Configuration") or {}
        name = conf.get("Username") or _last(r.get("AgentARN"))
        if not eid or ts is None or not name:
            raise BadRecord("missing_field", "an agent event needs EventId, EventTimestamp and "
                            "the agent")
        agent = self.config.agent(name)
        team = ((conf.get("AgentHierarchyGroups") or {}).get("Level1") or {}).get("Name")
        team = self.config.team(agent) or team
        contacts = snap.get("Contacts") or []
        states = {str(x.get("State", "")).upper() for x in contacts}
        status = str((snap.get("AgentStatus") or {}).get("Name", ""))
        reason = None
        if kind == "LOGOUT" or status.lower() == "offline":
            state = "logged_out"
        elif states & {"CONNECTED", "CONNECTED_ONHOLD"}:
            state = "on_call"
        elif "ENDED" in states:
            state = "wrap_up"
        elif status.lower() == "available":
            state = "available"
        else:
            state, reason = "paused", self.config.pause_reason(status) or None
        return [self.b.agent(str(eid), ts, agent, state, reason=reason, team_id=team)]
