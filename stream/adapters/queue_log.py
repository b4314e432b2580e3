"""Asterisk `queue_log` records to v1 events (pure). Dialects: `asterisk` (stock app_queue) and
`vicidial-qm` (VICIdial's QueueMetrics-format log). The readers (file tail, realtime table) are in
`stream/adapters/io/`; they hand each record here as a `QueueLogRecord`.

A line is `epoch|callid|queuename|agent|event|data1|data2|...`; the realtime table has the same
columns (`time` is a local DATETIME there). Every mapping rule is in docs/adapters.md.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from stream.adapters.config import AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted, Mapped, line_key, seconds_ms
from stream.adapters.csv_lines import by_header, csv_fields

DIALECTS = ("asterisk", "vicidial-qm", "pbxware")
MEMBER_CHANGE_CALLIDS = frozenset({"NONE", "REALTIME", "MANAGER", "CLI"})


class QueueLogRecord(NamedTuple):
    ts_ms: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]
    key: str
    """The record's natural key (line hash or table id): the stem of its events' ids."""


def parse_line(raw: bytes) -> tuple[int, str, str, str, str, tuple[str, ...]]:
    """One queue_log file line to (epoch ms, callid, queue, agent, event, data). Raises BadRecord."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # old systems log queue names in the locale's 8-bit charset
    parts = text.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise BadRecord("short_line", f"{len(parts)} fields, a queue_log line has at least 5")
    epoch = parts[0].strip()
    try:
        ts_ms = int(round(float(epoch) * 1000))
    except ValueError:
        raise BadRecord("bad_timestamp", f"not an epoch time: {epoch[:20]!r}") from None
    if not 946_684_800_000 <= ts_ms <= 4_102_444_800_000:  # 2000..2100: a corrupt line otherwise
        raise BadRecord("bad_timestamp", f"epoch time out of range: {epoch[:20]!r}")
    event = parts[4].strip()
    if not event:
        raise BadRecord("missing_event", "the event field is empty")
    return ts_ms, parts[1].strip(), parts[2].strip(), parts[3].strip(), event, tuple(parts[5:])


def _data(rec: QueueLogRecord, i: int) -> str:
    return rec.data[i].strip() if len(rec.data) > i else ""


_UNANSWERED = {"NOANSWER": "no_answer", "BUSY": "busy", "CANCEL": "canceled",
               "CONGESTION": "congestion", "ABORT": "error"}
_ABANDONS = {  # event: (index of the wait-time field, reason or None for the configured one)
    "ABANDON": (2, "customer_hangup"),
    "EXITWITHTIMEOUT": (2, "no_agent"),
    "EXITEMPTY": (2, "no_agent"),
    "EXITWITHKEY": (3, None),
    "WITHDRAW": (2, "customer_hangup"),
}
_ENDS = {  # event: (index of the call-time field, hangup_by)
    "COMPLETECALLER": (1, "customer"),
    "COMPLETEAGENT": (1, "agent"),
    "TRANSFER": (3, "agent"),
    "BLINDTRANSFER": (3, "agent"),
    "ATTENDEDTRANSFER": (3, "agent"),
}
_IGNORED = frozenset({"RINGNOANSWER", "RINGCANCELED", "QUEUESTART", "CONFIGRELOAD", "PENALTY",
                      "RINGINUSE", "INFO", "AGENTDUMP", "SYSCOMPAT", "DID", "CALLERONHOLD",
                      "CALLEROFFHOLD"})


class QueueLogMapper:
    """Maps records one at a time. Its state (what each agent is doing, so that a pause taken
    during a call starts when the call ends; when each call completed, for wrap-up time) is small
    and goes into the checkpoint (`state()` / `QueueLogMapper(..., state=...)`)."""

    def __init__(self, config: AdapterConfig, builder: Builder, dialect: str = "asterisk",
                 state: dict[str, Any] | None = None) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown queue_log dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
        self.config, self.b, self.dialect = config, builder, dialect
        state = state or {}
        self.agents: dict[str, dict[str, Any]] = {k: dict(v) for k, v in state.get("agents", {}).items()}
        self.completed: dict[str, list[Any]] = {k: list(v) for k, v in state.get("completed", {}).items()}
        self.outdials: dict[str, list[Any]] = {k: list(v) for k, v in state.get("outdials", {}).items()}
        """pbxware: callid → [dial ts, how many OUTDIALs it had, the open attempt's agent]"""

    def state(self) -> dict[str, Any]:
        self._expire()
        return {"agents": self.agents, "completed": self.completed, "outdials": self.outdials}

    def _expire(self) -> None:
        """Completed calls wait for their CALLSTATUS a day at most."""
        if not self.completed:
            return
        newest = max(v[0] for v in self.completed.values())
        self.completed = {k: v for k, v in self.completed.items() if v[0] > newest - 86_400_000}
        if self.outdials:
            newest = max(v[0] for v in self.outdials.values())
            self.outdials = {k: v for k, v in self.outdials.items() if v[0] > newest - 86_400_000}

    # ---------------------------------------------------------------- records

    def map(self, rec: QueueLogRecord) -> Mapped:
        ev = rec.event.upper()
        if rec.queue and rec.queue in self.config.exclude_queues:
            return Mapped([], "excluded")
        if ev in _IGNORED:
            return Mapped([], "ignored")
        if ev in ("AGENTLOGIN", "AGENTCALLBACKLOGIN", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF",
                  "PAUSE", "PAUSEALL", "UNPAUSE", "UNPAUSEALL", "PAUSEREASON",
                  "ADDMEMBER", "REMOVEMEMBER"):
            return self._agent_record(rec, ev)
        if rec.callid in MEMBER_CHANGE_CALLIDS or not rec.callid:
            return Mapped([], "ignored")
        campaign = self.config.campaign(rec.queue)
        if ev == "ENTERQUEUE" or (ev == "CALLOUTBOUND" and self.dialect == "vicidial-qm"):
            return Mapped([self._entered(rec, campaign, outbound=ev == "CALLOUTBOUND")], "mapped")
        if ev == "CONNECT":
            return self._connect(rec, campaign)
        if ev in _ENDS:
            return self._end(rec, campaign, *_ENDS[ev])
        if ev in _ABANDONS:
            i, reason = _ABANDONS[ev]
            wait = seconds_ms(_data(rec, i), f"{ev} waittime")
            return Mapped([self.b.call("abandoned", rec.key, rec.ts_ms, rec.callid, campaign,
                                       wait_ms=wait,
                                       reason=reason or self.config.queue_log.exit_with_key)],
                          "mapped")
        if ev == "OUTCALL":
            return self._outcall(rec, campaign)
        if ev.startswith("OUT") and self.dialect == "pbxware":
            return self._pbxware_out(rec, ev, campaign)
        if ev == "CALLSTATUS" and self.dialect == "vicidial-qm":
            return self._callstatus(rec, campaign)
        return Mapped([], "ignored")

    def _entered(self, rec: QueueLogRecord, campaign: str, outbound: bool) -> Emitted:
        if outbound or rec.queue in self.config.queue_log.outbound_queues:
            # a predictive dialer's answered call put into a queue: an outbound answer
            return self.b.call("answered", rec.key, rec.ts_ms, rec.callid, campaign,
                               answered_by=self.config.answered_by_default)
        return self.b.call("offered", rec.key, rec.ts_ms, rec.callid, campaign,
                           queue_id=rec.queue or None)

    def _agent_id(self, rec: QueueLogRecord) -> str | None:
        name = rec.agent
        if not name or name.upper() == "NONE":
            return None
        return self.config.agent(name)

    def _connect(self, rec: QueueLogRecord, campaign: str) -> Mapped:
        agent = self._agent_id(rec)
        if agent is None:
            raise BadRecord("missing_agent", "CONNECT without an agent")
        if agent in self.config.exclude_agents:
            return Mapped([], "excluded")
        wait = seconds_ms(_data(rec, 0), "CONNECT holdtime")
        team = self.config.team(agent)
        out = [self.b.call("connected", rec.key, rec.ts_ms, rec.callid, campaign,
                           agent_id=agent, team_id=team, wait_ms=wait)]
        a = self.agents.setdefault(agent, {})
        a["call"] = rec.callid
        out.append(self.b.agent(rec.key, rec.ts_ms, agent, "on_call", kind="on_call",
                                team_id=team, campaign_id=campaign))
        return Mapped(out, "mapped")

    def _end(self, rec: QueueLogRecord, campaign: str, talk_index: int, hangup_by: str) -> Mapped:
        agent = self._agent_id(rec)
        if agent is not None and agent in self.config.exclude_agents:
            return Mapped([], "excluded")
        talk = seconds_ms(_data(rec, talk_index), f"{rec.event} calltime")
        out = [self.b.call("ended", rec.key, rec.ts_ms, rec.callid, campaign, agent_id=agent,
                           talk_ms=talk, hangup_by=hangup_by)]
        if agent is not None:
            if self.dialect == "vicidial-qm":  # its CALLSTATUS line measures wrap-up from here
                self.completed[rec.callid] = [rec.ts_ms, agent]
            self.agents.setdefault(agent, {}).pop("call", None)
            # the agent dispositions the call (vicidial-qm's CALLSTATUS) before the next
            out.append(self._after(rec, agent, "after_call",
                                   "wrap_up" if self.dialect == "vicidial-qm" else None))
        return Mapped(out, "mapped")

    def _after(self, rec: QueueLogRecord, agent: str, kind: str, state: str | None = None) -> Emitted:
        """The agent's state after a call or its wrap-up (`state`, else): a pause taken meanwhile
        (with its reason), or available."""
        a = self.agents.setdefault(agent, {})
        state = state or ("paused" if a.get("paused") else "available")
        reason = a.get("reason") if state == "paused" else None
        a["state"], a["shown_reason"] = state, reason
        return self.b.agent(rec.key, rec.ts_ms, agent, state, kind=kind, reason=reason,
                            team_id=self.config.team(agent))

    def _outcall(self, rec: QueueLogRecord, campaign: str) -> Mapped:
        """QueueUpdate()'s OUTCALL line, written at the end of an outbound call:
        DIALSTATUS | talk time | dialled time (seconds since the dial)."""
        status = _data(rec, 0).upper()
        talk = seconds_ms(_data(rec, 1), "OUTCALL talktime")
        dialed_for = seconds_ms(_data(rec, 2), "OUTCALL dialedtime")
        dial_ts = rec.ts_ms - dialed_for
        agent = self._agent_id(rec)
        out = [self.b.call("dialed", rec.key, dial_ts, rec.callid, campaign,
                           mode="manual" if agent else None, agent_id=agent)]
        if status == "ANSWER":
            answer_ts = rec.ts_ms - talk
            out.append(self.b.call("answered", rec.key, answer_ts, rec.callid, campaign,
                                   answered_by=self.config.answered_by_default,
                                   ring_ms=max(answer_ts - dial_ts, 0)))
            if agent:
                out.append(self.b.call("connected", rec.key, answer_ts, rec.callid, campaign,
                                       agent_id=agent, team_id=self.config.team(agent), wait_ms=0))
            out.append(self.b.call("ended", rec.key, rec.ts_ms, rec.callid, campaign,
                                   agent_id=agent, talk_ms=talk))
        else:
            reason = (self.config.queue_log.chanunavail if status == "CHANUNAVAIL"
                      else _UNANSWERED.get(status, "error"))
            out.append(self.b.call("unanswered", rec.key, rec.ts_ms, rec.callid, campaign,
                                   reason=reason, ring_ms=dialed_for))
        return Mapped(out, "mapped")

    def _pbxware_out(self, rec: QueueLogRecord, ev: str, campaign: str) -> Mapped:
        """PBXware's agent outbound calls: OUTDIAL, then one of OUTANSWER (logged at hang-up:
        ring seconds in htime, talk seconds in ttime), OUTCANCEL, OUTCHANUNAVAIL, OUTCONGESTION.
        One callid can carry several OUTDIAL retries: the n-th is call `callid#n`."""
        agent = self._agent_id(rec)
        if ev == "OUTDIAL":
            prev = self.outdials.get(rec.callid, [0, 0, None])
            n = prev[1] + 1
            self.outdials[rec.callid] = [rec.ts_ms, n, agent]
            call_id = f"{rec.callid}#{n}"
            return Mapped([self.b.call("dialed", rec.key, rec.ts_ms, call_id, campaign,
                                       agent_id=agent, mode="manual" if agent else None)],
                          "mapped")
        outcomes = {"OUTCANCEL": "canceled", "OUTCHANUNAVAIL": self.config.queue_log.chanunavail,
                    "OUTCONGESTION": "congestion"}
        if ev not in outcomes and ev != "OUTANSWER":
            return Mapped([], "ignored")  # OUTTRANSFER and the like
        dial = self.outdials.get(rec.callid)
        n = dial[1] if dial else 1
        call_id = f"{rec.callid}#{n}"
        agent = agent or (dial[2] if dial else None)
        if ev in outcomes:
            return Mapped([self.b.call("unanswered", rec.key, rec.ts_ms, call_id, campaign,
                                       reason=outcomes[ev],
                                       ring_ms=rec.ts_ms - dial[0] if dial else None)], "mapped")
        ring = seconds_ms(_data(rec, 0), "OUTANSWER htime")
        talk = seconds_ms(_data(rec, 1), "OUTANSWER ttime")
        # answered `htime` after the dial; without the OUTDIAL, `ttime` before the hang-up
        answer_ts = dial[0] + ring if dial else rec.ts_ms - talk
        out = [self.b.call("answered", rec.key, answer_ts, call_id, campaign,
                           answered_by=self.config.answered_by_default, ring_ms=ring)]
        if agent:
            out.append(self.b.call("connected", rec.key, answer_ts, call_id, campaign,
                                   agent_id=agent, team_id=self.config.team(agent), wait_ms=0))
        hangup = {"COMPLETEAGENT": "agent", "COMPLETECALLER": "customer",
                  "TRANSFER": "agent"}.get(_data(rec, 2).upper())
        out.append(self.b.call("ended", rec.key, rec.ts_ms, call_id, campaign, agent_id=agent,
                               talk_ms=talk, hangup_by=hangup))
        return Mapped(out, "mapped")

    def _callstatus(self, rec: QueueLogRecord, campaign: str) -> Mapped:
        """vicidial-qm: the agent's disposition of a completed call."""
        code = _data(rec, 0)
        agent = self._agent_id(rec)
        done = self.completed.pop(rec.callid, None)
        if agent is None and done:
            agent = done[1]
        if not code or agent is None:
            raise BadRecord("missing_field", "CALLSTATUS without a status or an agent")
        wrapup = max(rec.ts_ms - done[0], 0) if done else 0
        out = [self.b.call("wrapup", rec.key, rec.ts_ms, rec.callid, campaign, agent_id=agent,
                           wrapup_ms=wrapup, disposition=self.config.disposition(code),
                           disposition_code=code[:64])]
        out.append(self._after(rec, agent, "after_wrapup"))
        return Mapped(out, "mapped")

    # ---------------------------------------------------------------- agents

    def _agent_record(self, rec: QueueLogRecord, ev: str) -> Mapped:
        agent = self._agent_id(rec)
        if agent is None:
            raise BadRecord("missing_agent", f"{ev} without an agent")
        if agent in self.config.exclude_agents:
            return Mapped([], "excluded")
        a = self.agents.setdefault(agent, {})
        if ev in ("ADDMEMBER", "REMOVEMEMBER"):
            if not self.config.queue_log.members_are_logins:
                return Mapped([], "ignored")
            queues = set(a.get("queues", []))
            had = bool(queues)
            (queues.add if ev == "ADDMEMBER" else queues.discard)(rec.queue)
            a["queues"] = sorted(queues)
            if had == bool(queues):
                return Mapped([], "ignored")  # still a member of some queue / of none
            state = "available" if queues else "logged_out"
            a.pop("paused", None)
            a.pop("reason", None)
            return self._agent_state(rec, agent, a, state, None)
        if ev in ("AGENTLOGIN", "AGENTCALLBACKLOGIN"):
            a.pop("paused", None)
            a.pop("reason", None)
            return self._agent_state(rec, agent, a, "available", None)
        if ev in ("AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
            a.clear()
            return self._agent_state(rec, agent, a, "logged_out", None)
        if ev in ("PAUSE", "PAUSEALL", "PAUSEREASON"):
            a["paused"] = True
            a["reason"] = self.config.pause_reason(_data(rec, 0)) or None
            if a.get("call"):
                return Mapped([], "mapped")  # the pause starts when the call ends
            return self._agent_state(rec, agent, a, "paused", a["reason"])
        # UNPAUSE / UNPAUSEALL
        a.pop("paused", None)
        a.pop("reason", None)
        if a.get("call"):
            return Mapped([], "mapped")
        return self._agent_state(rec, agent, a, "available", None)

    def _agent_state(self, rec: QueueLogRecord, agent: str, a: dict[str, Any], state: str,
                     reason: str | None) -> Mapped:
        """One agent.state, unless the agent is already in it (a PAUSE is logged once per queue)."""
        if a.get("state") == state and a.get("shown_reason") == reason:
            return Mapped([], "ignored")
        a["state"], a["shown_reason"] = state, reason
        return Mapped([self.b.agent(rec.key, rec.ts_ms, agent, state, reason=reason,
                                    team_id=self.config.team(agent))], "mapped")


# ---------------------------------------------------------------------- record sources

class QueueLogLines:
    """Lines of a queue_log file: parse, key (the line's hash, #k for repeats), map."""

    def __init__(self, mapper: QueueLogMapper, keys: Any) -> None:
        self.mapper, self.keys = mapper, keys

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        ts_ms, callid, queue, agent, event, data = parse_line(raw)
        key = self.keys.key(raw.rstrip(b"\r\n"), raw.split(b"|", 1)[0].decode("ascii", "replace"))
        return self.mapper.map(QueueLogRecord(ts_ms, callid, queue, agent, event, data, key))

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state(), "keys": self.keys.state()}


class QueueLogRows:
    """Rows of the realtime `queue_log` table (`id`, `time`, `callid`, `queuename`, `agent`,
    `event`, and `data1`..`data5` or one `data`): keyed by `id`."""

    def __init__(self, mapper: QueueLogMapper, to_ms: Any) -> None:
        self.mapper, self.to_ms = mapper, to_ms

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        if not isinstance(row, dict) or row.get("id") is None:
            raise BadRecord("bad_row", "a queue_log row needs an id")
        event = str(row.get("event") or "").strip()
        if not event:
            raise BadRecord("missing_event", "the event column is empty")
        if row.get("time") is None:
            raise BadRecord("bad_timestamp", "the time column is empty")
        ts_ms = self.to_ms(row["time"])
        if "data1" in row:
            data = tuple(str(row.get(f"data{i}") or "") for i in range(1, 6))
        else:
            data = tuple(str(row.get("data") or "").split("|"))
        text = lambda k: str(row.get(k) or "").strip()  # noqa: E731
        return self.mapper.map(QueueLogRecord(ts_ms, text("callid"), text("queuename"),
                                              text("agent"), event, data, f"id{row['id']}"))

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state()}


PBXWARE_COLUMNS = ("uid", "date_time", "callid", "queue_name", "type", "event", "param1",
                   "param2", "param3", "entpos", "expos", "htime", "ttime", "time")


class PbxwareLines:
    """PBXware's queue log table as a CSV export: a header row, then `uid, date_time (epoch UTC),
    callid, queue_name, type, event, param1..3, entpos, expos, htime, ttime, time (local)`. The
    hold time is in `htime`, the talk time in `ttime`; the agent is in the column named by
    `queue_log.pbxware_agent_column` (default `agent`). Rows are rearranged into the stock data
    fields so that the stock rules apply; keyed by `uid`."""

    def __init__(self, mapper: QueueLogMapper, header: list[str] | None = None) -> None:
        self.mapper, self.header = mapper, header

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        text = raw.decode("utf-8", errors="replace")
        fields = [f.strip() for f in csv_fields(text)]
        if self.header is None:
            if "event" not in [f.lower() for f in fields]:
                raise BadRecord("missing_header", "a PBXware export starts with its header row")
            self.header = [f.lower() for f in fields]
            return Mapped([], "ignored")
        r = by_header(self.header, fields)
        try:
            ts_ms = int(float(r.get("date_time", "")) * 1000)
        except ValueError:
            raise BadRecord("bad_timestamp", f"date_time {r.get('date_time', '')[:20]!r}") from None
        event = r.get("event", "").upper()
        if not event:
            raise BadRecord("missing_event", "the event column is empty")
        h, t, p1, p2 = r.get("htime", ""), r.get("ttime", ""), r.get("param1", ""), r.get("param2", "")
        data = {  # the stock data fields each event's rule reads (docs/adapters.md)
            "CONNECT": (h,), "COMPLETECALLER": (h, t), "COMPLETEAGENT": (h, t),
            "TRANSFER": (p1, p2, h, t), "BLINDTRANSFER": (p1, p2, h, t),
            "ATTENDEDTRANSFER": (p1, p2, h, t), "ABANDON": ("", "", h), "EXITEMPTY": ("", "", h),
            "EXITWITHTIMEOUT": ("", "", h), "EXITWITHKEY": (p1, "", "", h),
            "WITHDRAW": ("", "", h), "OUTANSWER": (h, t, p2),
        }.get(event, (p1, p2, r.get("param3", "")))
        agent = r.get(self.mapper.config.queue_log.pbxware_agent_column, "")
        key = f"uid{r['uid']}" if r.get("uid") else line_key(raw)
        return self.mapper.map(QueueLogRecord(ts_ms, r.get("callid", ""), r.get("queue_name", ""),
                                              agent, event, data, key))

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state(), "header": self.header}
