"""Per-call records (one row a call: Amazon Connect contact records, Genesys or Five9 reports,
VICIdial's vicidial_closer_log, a research data set) to v1 events (pure), by the column map of
the adapter config's `[call_records]` section (docs/adapters.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from stream.adapters.config import AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted, Mapped, datetime_to_ms, line_key, seconds_ms
from stream.adapters.csv_lines import by_header, csv_fields

_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")
ANSWERS = {"human", "machine", "fax", "unknown"}
UNANSWERED = {"no_answer", "busy", "invalid_number", "rejected", "congestion", "canceled", "error"}


class CallRecordMapper:
    def __init__(self, config: AdapterConfig, builder: Builder) -> None:
        self.config, self.b, self.c = config, builder, config.call_records

    def _get(self, row: dict[str, Any], name: str) -> str:
        col = self.c.columns.get(name)
        if not col:
            return ""
        v = row.get(col)
        return "" if v is None else str(v).strip()

    def _time(self, row: dict[str, Any], name: str) -> int | None:
        v = self._get(row, name)
        if not v:
            return None
        if _EPOCH.match(v):
            n = float(v)
            return int(n if n > 1e11 else n * 1000)  # epoch ms or seconds
        return datetime_to_ms(v.replace("Z", "+00:00"), self.config.tz)

    def _secs(self, row: dict[str, Any], name: str) -> int | None:
        v = self._get(row, name)
        return seconds_ms(v, name) if v else None

    def map(self, row: dict[str, Any], natural_key: str) -> Mapped:
        if self.c.filter_column and str(row.get(self.c.filter_column, "")).strip() not in self.c.filter_values:
            return Mapped([], "not_a_call")
        call_id = self._get(row, "call_id")
        if not call_id:
            raise BadRecord("missing_field", f"no call id in column {self.c.columns['call_id']!r}")
        campaign = self.config.campaign(self._get(row, "campaign") or None)
        agent = self.config.agent(self._get(row, "agent")) if self._get(row, "agent") else None
        team = self._get(row, "team") or (self.config.team(agent) if agent else None)
        direction = self.c.directions.get(self._get(row, "direction"), self.c.default_direction) \
            if self._get(row, "direction") else self.c.default_direction
        outcome_raw = self._get(row, "outcome")
        outcome = self.c.outcomes.get(outcome_raw, "") if outcome_raw else ""
        key = call_id
        c = lambda kind, ts, **f: self.b.call(kind, key, ts, call_id, campaign, **f)  # noqa: E731
        dialed = self._time(row, "dialed_at")
        queued = self._time(row, "queued_at")
        answered = self._time(row, "answered_at")
        connected = self._time(row, "connected_at")
        ended = self._time(row, "ended_at")
        wait = self._secs(row, "wait_seconds")
        talk = self._secs(row, "talk_seconds")
        hold = self._secs(row, "hold_seconds")
        wrap = self._secs(row, "wrapup_seconds")
        ring = self._secs(row, "ring_seconds")
        start = dialed or queued or answered or connected
        if start is None:
            raise BadRecord("missing_field", "no time of the call in the mapped columns")
        if connected is None and wait is not None and agent and outcome not in UNANSWERED \
                and outcome not in ("abandoned", "abandoned_no_agent"):
            connected = (queued or answered or start) + wait
        if ended is None and connected is not None and talk is not None:
            ended = connected + talk + (hold or 0)
        # a record that crosses midnight with time-only columns is not supported: full stamps only
        if ended is not None and ended < start:
            raise BadRecord("end_before_start", "the call ends before it starts")
        out: list[Emitted] = []
        by, human = "", False
        if direction == "inbound":
            out.append(c("offered", queued or start, queue_id=self._get(row, "campaign") or None))
            since = queued or start
        else:
            out.append(c("dialed", start, agent_id=agent if connected is not None else None,
                         list_id=self._get(row, "list") or None,
                         lead_id=self._get(row, "lead") or None,
                         caller_id=self._get(row, "caller_id") or None))
            if outcome in UNANSWERED or (not outcome and answered is None and connected is None):
                out.append(c("unanswered", ended or start, reason=outcome or "no_answer",
                             ring_ms=ring))
                return Mapped(out, "mapped")
            answer_ts = answered or connected or start
            by = outcome if outcome in ANSWERS else self.config.answered_by_default
            out.append(c("answered", answer_ts, answered_by=by, ring_ms=ring if ring is not None
                         else (answer_ts - dialed if dialed and answer_ts >= dialed else None)))
            since = answer_ts
        human = direction == "outbound" and by == "human"
        if connected is not None and agent and not outcome.startswith("abandoned"):
            out.append(c("connected", connected, agent_id=agent, team_id=team,
                         wait_ms=wait if wait is not None else max(connected - since, 0)))
            end = ended if ended is not None else connected
            out.append(c("ended", end, agent_id=agent,
                         talk_ms=talk if talk is not None else max(end - connected - (hold or 0), 0),
                         hold_ms=hold))
            code = self._get(row, "disposition")
            if wrap is not None or code:
                out.append(c("wrapup", end + (wrap or 0), agent_id=agent, wrapup_ms=wrap or 0,
                             disposition=self.config.disposition(code) if code
                             else self.config.disposition_default,
                             disposition_code=code[:64] or None))
        elif direction == "inbound" or outcome.startswith("abandoned") or human:
            # a person answered (or queued) and no agent came; a machine's answer is no drop
            end = ended if ended is not None else since + (wait or 0)
            out.append(c("abandoned", end, wait_ms=wait if wait is not None else max(end - since, 0),
                         reason="no_agent" if outcome == "abandoned_no_agent" else "customer_hangup"))
        return Mapped(out, "mapped")


class CallRecordLines:
    """CSV (its first line is the header) or JSON lines."""

    def __init__(self, mapper: CallRecordMapper, fmt: str, header: list[str] | None = None) -> None:
        self.mapper, self.fmt, self.header = mapper, fmt, header

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        text = raw.decode("utf-8-sig", errors="replace")
        if self.fmt == "jsonl":
            try:
                record = json.loads(text)
            except ValueError:
                raise BadRecord("malformed_json", "not a JSON object") from None
            if not isinstance(record, dict):
                raise BadRecord("not_an_object", "a JSON line must be an object")
        else:
            fields = csv_fields(text, self.mapper.c.delimiter)
            if self.header is None:
                self.header = [f.strip() for f in fields]
                return Mapped([], "ignored")
            record = by_header(self.header, fields)
        return self.mapper.map(record, line_key(raw))

    def state(self) -> dict[str, Any]:
        return {"header": self.header}
