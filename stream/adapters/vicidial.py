"""VICIdial's log tables to v1 events (pure). The poller (`stream/adapters/io/vicidial_poll.py`)
re-reads rows that may still change in place and hands each here with its table's name; every
phase of a row is emitted once (its event id is `vici:<instance>:<table>:<key>:<phase>`).

Calls are identified by `uniqueid` in every table (vicidial_log, vicidial_closer_log,
vicidial_agent_log), so an agent's connect in vicidial_agent_log joins the dialer's or the
in-group's record of the same call. Every rule is in docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from stream.adapters.config import AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted, Mapped, datetime_to_ms

WINDOW_MS = 4 * 3600_000
"""A row can change for 4 hours (the agent screen's dispo update window): after that it is done."""
GARBAGE_SECONDS = 65000
"""`*_sec` columns are SMALLINT UNSIGNED; VICIdial's own reports drop values from 65000 as garbage."""

UNANSWERED = {"NA": "no_answer", "N": "no_answer", "B": "busy", "AB": "busy",
              "ADC": "invalid_number", "DC": "invalid_number", "ADCT": "congestion",
              "CPDB": "busy", "CPDNA": "no_answer", "CPDREJ": "rejected",
              "CPDINV": "invalid_number", "CPDSV": "invalid_number", "CPDATB": "congestion",
              "CPDSNC": "congestion"}
CARRIER = {"BUSY": "busy", "CONGESTION": "congestion", "CHANUNAVAIL": "error",
           "NOANSWER": "no_answer", "CANCEL": "canceled"}
MACHINE = {"AA": "machine", "AM": "machine", "AL": "machine", "AFAX": "fax"}
DROPS = {"DROP": "no_agent", "XDROP": "no_agent", "PDROP": "customer_hangup",
         "TIMEOT": "no_agent", "NANQUE": "no_agent", "MAXCAL": "no_agent", "AFTHRS": "no_agent"}
NEVER_DIALED = frozenset({"DNCL", "DNCC"})
SYSTEM_DISPOSITIONS = {"SALE": "sale", "DNC": "dnc", "NI": "not_interested", "DEC": "refused",
                       "CALLBK": "callback_requested", "CBHOLD": "callback_requested",
                       "NP": "no_decision", "A": "answering_machine"}
FLAG_ORDER = (("sale", "sale"), ("dnc", "dnc"), ("scheduled_callback", "callback_requested"),
              ("not_interested", "not_interested"), ("answering_machine", "answering_machine"),
              ("customer_contact", "no_decision"))
OPEN_CALL_STATUSES = frozenset({"PU", "INCALL", "QUEUE", "INBND", "SENT", "LIVE", "XFER", ""})
MODES = {"RATIO": "predictive", "ADAPT_HARD_LIMIT": "predictive", "ADAPT_TAPERED": "predictive",
         "ADAPT_AVERAGE": "predictive", "MANUAL": "manual", "INBOUND_MAN": "manual"}


class RowResult(NamedTuple):
    mapped: Mapped
    done: bool
    """No phase of this row can come any more: the poller stops re-reading it."""


def disposition_of(status: str, flags: Mapping[str, Mapping[str, str]],
                   config: AdapterConfig) -> str:
    """A final status to a v1 disposition: the adapter config's map first, then VICIdial's
    system statuses, then a custom status's flags (vicidial_statuses/vicidial_campaign_statuses)."""
    if status in config.dispositions:
        return config.dispositions[status]
    if status in SYSTEM_DISPOSITIONS:
        return SYSTEM_DISPOSITIONS[status]
    f = flags.get(status, {})
    for flag, disposition in FLAG_ORDER:
        if str(f.get(flag, "N")).upper() == "Y":
            return disposition
    return config.disposition_default


def _int(row: Mapping[str, Any], col: str) -> int | None:
    v = row.get(col)
    if v in (None, "", 0, "0"):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise BadRecord("bad_number", f"{col} is not a number: {str(v)[:20]!r}") from None


def _sec(row: Mapping[str, Any], col: str) -> int | None:
    """A `*_sec` column in ms, None when absent or garbage (≥ 65000)."""
    v = row.get(col)
    if v in (None, ""):
        return None
    n = int(v)
    return None if n < 0 or n >= GARBAGE_SECONDS else n * 1000


class VicidialMapper:
    def __init__(self, config: AdapterConfig, builder: Builder, dial_mode: str = "predictive",
                 state: dict[str, Any] | None = None) -> None:
        self.config, self.b, self.dial_mode = config, builder, dial_mode
        state = state or {}
        self.emitted: dict[str, list[Any]] = {k: list(v) for k, v in state.get("emitted", {}).items()}
        """row id → [source ts, phases emitted]"""
        self.answers: dict[str, int] = dict(state.get("answers", {}))
        """call uniqueid → answer (or queue entry) time, for the agent connect's wait"""
        self.flags: dict[str, dict[str, str]] = {}
        self.newest = int(state.get("newest", 0))

    def state(self) -> dict[str, Any]:
        floor = self.newest - 2 * WINDOW_MS
        self.emitted = {k: v for k, v in self.emitted.items() if v[0] >= floor}
        self.answers = {k: v for k, v in self.answers.items() if v >= floor}
        return {"emitted": self.emitted, "answers": self.answers, "newest": self.newest}

    def map(self, table: str, row: Mapping[str, Any]) -> RowResult:
        handler = {"vicidial_log": self._log, "vicidial_closer_log": self._closer,
                   "vicidial_agent_log": self._agent, "vicidial_user_log": self._user}.get(table)
        if handler is None:
            raise BadRecord("unknown_table", table)
        return handler(row)

    def _phases(self, rid: str, ts: int) -> list[Any]:
        self.newest = max(self.newest, ts)
        entry = self.emitted.setdefault(rid, [ts, []])
        return entry[1]

    def _once(self, phases: list[Any], phase: str, out: list[Emitted],
              events: list[Emitted]) -> None:
        if phase not in phases:
            phases.append(phase)
            out.extend(events)

    def _ms(self, value: Any) -> int:
        return datetime_to_ms(value, self.config.tz)

    # ------------------------------------------------------------ vicidial_log (outbound)

    def _log(self, row: Mapping[str, Any]) -> RowResult:
        uid = str(row.get("uniqueid") or "")
        if not uid or row.get("call_date") is None:
            raise BadRecord("missing_field", "a vicidial_log row needs uniqueid and call_date")
        status = str(row.get("status") or "").strip().upper()
        if status in NEVER_DIALED:
            return RowResult(Mapped([], "ignored"), True)
        ts = self._ms(row["call_date"])
        campaign = self.config.campaign(str(row.get("campaign_id") or ""))
        rid = f"log:{uid}"
        phases = self._phases(rid, ts)
        out: list[Emitted] = []
        c = lambda kind, t, **f: self.b.call(kind, rid, t, uid, campaign, **f)  # noqa: E731
        start = (_int(row, "start_epoch") or ts // 1000) * 1000
        end = _int(row, "end_epoch")
        length = _sec(row, "length_in_sec") or 0
        mode = MODES.get(str(row.get("dial_method") or "").upper(), self.dial_mode)
        caller = str(row.get("outbound_cid") or "").strip() or None
        if caller and "<" in caller:
            caller = caller.split("<", 1)[1].rstrip(">").strip() or None
        ring = row.get("dial_time")
        self._once(phases, "dialed", out, [c(
            "dialed", ts, list_id=str(row["list_id"]) if row.get("list_id") else None,
            lead_id=str(row["lead_id"]) if row.get("lead_id") else None, caller_id=caller,
            mode=mode)])
        user = str(row.get("user") or "")
        if status in UNANSWERED:
            carrier = CARRIER.get(str(row.get("dialstatus") or "").upper())
            reason = carrier if status == "NA" and carrier else UNANSWERED[status]
            end_ms = end * 1000 if end else start + length
            self._once(phases, "unanswered", out, [c(
                "unanswered", end_ms, reason=reason,
                ring_ms=int(ring) * 1000 if ring not in (None, "") and int(ring) < GARBAGE_SECONDS
                else None)])
            return RowResult(Mapped(out, "mapped"), True)
        by = MACHINE.get(status, "human")
        self.answers.setdefault(uid, start)
        self._once(phases, "answered", out, [c("answered", start, answered_by=by)])
        if status in DROPS:
            end_ms = end * 1000 if end else start + length
            self._once(phases, "abandoned", out, [c(
                "abandoned", end_ms, wait_ms=max(end_ms - start, 0), reason=DROPS[status])])
            return RowResult(Mapped(out, "mapped"), True)
        done = status not in OPEN_CALL_STATUSES or user not in ("", "VDAD")
        done = done or self.newest - ts > WINDOW_MS
        return RowResult(Mapped(out, "mapped" if out else "ignored"), done)

    # ------------------------------------------------------------ vicidial_closer_log (in-groups)

    def _closer(self, row: Mapping[str, Any]) -> RowResult:
        uid = str(row.get("uniqueid") or row.get("closecallid") or "")
        if not uid or row.get("call_date") is None:
            raise BadRecord("missing_field", "a vicidial_closer_log row needs uniqueid and call_date")
        status = str(row.get("status") or "").strip().upper()
        ts = self._ms(row["call_date"])
        ingroup = str(row.get("campaign_id") or "")
        campaign = self.config.campaign(ingroup)
        rid = f"closer:{row.get('closecallid') or uid}"
        phases = self._phases(rid, ts)
        out: list[Emitted] = []
        start = (_int(row, "start_epoch") or ts // 1000) * 1000
        self.answers[uid] = start
        self._once(phases, "offered", out, [self.b.call("offered", rid, start, uid, campaign,
                                                        queue_id=ingroup or None)])
        if status in DROPS or status in ("DROP",):
            end = _int(row, "end_epoch")
            queue = _sec(row, "queue_seconds")
            end_ms = end * 1000 if end else start + (queue or 0)
            term = str(row.get("term_reason") or "").upper()
            reason = "customer_hangup" if term in ("CALLER", "ABANDON") else DROPS.get(status, "no_agent")
            self._once(phases, "abandoned", out, [self.b.call(
                "abandoned", rid, end_ms, uid, campaign,
                wait_ms=queue if queue is not None else max(end_ms - start, 0), reason=reason)])
            return RowResult(Mapped(out, "mapped"), True)
        done = status not in OPEN_CALL_STATUSES or self.newest - ts > WINDOW_MS
        return RowResult(Mapped(out, "mapped" if out else "ignored"), done)

    # ------------------------------------------------------------ vicidial_agent_log

    def _agent(self, row: Mapping[str, Any]) -> RowResult:
        rid_n = row.get("agent_log_id")
        user = str(row.get("user") or "").strip()
        if rid_n is None or not user:
            raise BadRecord("missing_field", "a vicidial_agent_log row needs agent_log_id and user")
        agent = self.config.agent(user)
        if agent in self.config.exclude_agents:
            return RowResult(Mapped([], "excluded"), True)
        team = self.config.team(agent)
        campaign = self.config.campaign(str(row.get("campaign_id") or ""))
        rid = f"agent_log:{rid_n}"
        epochs = {p: _int(row, f"{p}_epoch") for p in ("pause", "wait", "talk", "dispo", "dead")}
        first = next((v for v in epochs.values() if v), None)
        if first is None and row.get("event_time") is not None:
            first = self._ms(row["event_time"]) // 1000
        if first is None:
            raise BadRecord("missing_field", "a vicidial_agent_log row without any time")
        phases = self._phases(rid, first * 1000)
        out: list[Emitted] = []
        a = lambda phase, t, state, **f: self.b.agent(  # noqa: E731
            rid, t, agent, state, kind=phase, team_id=team, campaign_id=campaign, **f)
        if epochs["pause"]:
            code = str(row.get("sub_status") or "").strip()
            self._once(phases, "pause", out, [a("pause", epochs["pause"] * 1000, "paused",
                                                reason=self.config.pause_reason(code) or None)])
        if epochs["wait"]:
            self._once(phases, "wait", out, [a("wait", epochs["wait"] * 1000, "available")])
        uid = str(row.get("uniqueid") or "")
        status = str(row.get("status") or "").strip().upper()
        if epochs["talk"] and uid:
            t = epochs["talk"] * 1000
            since = self.answers.get(uid)
            self._once(phases, "talk", out, [
                self.b.call("connected", rid, t, uid, campaign, agent_id=agent, team_id=team,
                            wait_ms=max(t - since, 0) if since is not None else 0),
                a("talk", t, "on_call")])
        if epochs["dispo"] and uid and epochs["talk"]:
            t = epochs["dispo"] * 1000
            talk = _sec(row, "talk_sec")
            dead = _sec(row, "dead_sec") or 0
            talk_ms = max((talk if talk is not None else t - epochs["talk"] * 1000) - dead, 0)
            self._once(phases, "dispo", out, [
                self.b.call("ended", rid, t, uid, campaign, agent_id=agent, talk_ms=talk_ms),
                a("dispo", t, "wrap_up")])
            dispo_ms = _sec(row, "dispo_sec")
            if status and dispo_ms is not None and dispo_ms > 0:
                self._once(phases, "wrapup", out, [self.b.call(
                    "wrapup", rid, t + dispo_ms, uid, campaign, agent_id=agent,
                    wrapup_ms=dispo_ms, disposition=disposition_of(status, self.flags, self.config),
                    disposition_code=status[:64])])
        # a cycle without a call ends when the agent's next row starts (VicidialRows sees it)
        done = "wrapup" in phases or self.newest - first * 1000 > WINDOW_MS
        return RowResult(Mapped(out, "mapped" if out else "ignored"), done)

    # ------------------------------------------------------------ vicidial_user_log

    def _user(self, row: Mapping[str, Any]) -> RowResult:
        user = str(row.get("user") or "").strip()
        event = str(row.get("event") or "").strip().upper()
        if not user or not event:
            raise BadRecord("missing_field", "a vicidial_user_log row needs user and event")
        if event != "LOGOUT":
            return RowResult(Mapped([], "ignored"), True)
        ts = (_int(row, "event_epoch") or self._ms(row["event_date"]) // 1000) * 1000
        agent = self.config.agent(user)
        key = f"user_log:{row.get('user_log_id') or ts}"
        phases = self._phases(key, ts)
        out: list[Emitted] = []
        self._once(phases, "logout", out, [self.b.agent(key, ts, agent, "logged_out",
                                                        kind="logout",
                                                        team_id=self.config.team(agent))])
        return RowResult(Mapped(out, "mapped" if out else "ignored"), True)


class VicidialRows:
    """The handler the run loop drives: rows tagged with their table (`_table`)."""

    def __init__(self, mapper: VicidialMapper, state: dict[str, Any] | None = None) -> None:
        self.mapper = mapper
        state = state or {}
        self.open: dict[str, dict[str, str]] = {t: dict(v) for t, v in state.get("open", {}).items()}
        """table → {row key: user}: rows that may still change in place"""

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        if not isinstance(row, dict) or "_table" not in row:
            raise BadRecord("bad_row", "not a VICIdial row")
        table = row["_table"]
        if table in ("vicidial_statuses", "vicidial_campaign_statuses"):
            self.mapper.flags[str(row.get("status"))] = {k: str(v) for k, v in row.items()}
            return Mapped([], "ignored")
        key = row.get("_key")
        if not isinstance(key, str):  # the poller's order key (io/vicidial_poll.py order_key)
            raise BadRecord("bad_row", "a VICIdial row without its order key")
        result = self.mapper.map(table, row)
        opened = self.open.setdefault(table, {})
        user = str(row.get("user") or "")
        if table == "vicidial_agent_log" and user:
            # the agent's next cycle has begun: its earlier rows are final
            for k in [k for k, u in opened.items() if u == user and k < key]:
                del opened[k]
        if result.done:
            opened.pop(key, None)
        else:
            opened[key] = user
        return result.mapped

    def low_of(self, table: str) -> str | None:
        """The smallest key of this table's rows that may still change, or None."""
        opened = self.open.get(table)
        return min(opened) if opened else None

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state(), "open": self.open}
