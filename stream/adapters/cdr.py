"""Asterisk CDR records to v1 events (pure): `Master.csv` (cdr_csv, no header), CSV exports with a
header row, and rows of the `cdr` table (stock `start` or FreePBX `calldate`).

A CDR is written when the call ends. Rows with one `uniqueid` (trunk failover legs) are one
dial attempt: they are collected until a row of another call arrives, or the reader is caught
up, and then mapped together. Every rule is in docs/adapters.md.
"""

from __future__ import annotations

from typing import Any

from stream.adapters.config import CDR_COLUMNS, AdapterConfig
from stream.adapters.core import BadRecord, Builder, Emitted, Mapped, datetime_to_ms, dest_region, line_key, seconds_ms
from stream.adapters.csv_lines import by_header, csv_fields

_DISPOSITIONS = {"NO ANSWER": "no_answer", "NOANSWER": "no_answer", "BUSY": "busy",
                 "CONGESTION": "congestion", "CANCEL": "canceled", "FAILED": "error"}
GROUP_MS = 10 * 60_000
"""A call's failover legs start within this much of each other."""
HEADER_MARKERS = ({"disposition", "billsec"}, {"disposition", "duration"})


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """Lower-case column names; FreePBX's `calldate` is the stock `start`."""
    out = {str(k).strip().lower(): v for k, v in row.items()}
    if "start" not in out and "calldate" in out:
        out["start"] = out["calldate"]
    return out


class CdrMapper:
    """Collects the legs of one call (same `uniqueid`) and maps them as one attempt."""

    def __init__(self, config: AdapterConfig, builder: Builder,
                 state: dict[str, Any] | None = None) -> None:
        self.config, self.b, self.c = config, builder, config.cdr
        self.pending: dict[str, list[dict[str, Any]]] = {
            k: list(v) for k, v in (state or {}).get("pending", {}).items()}
        self.newest = int((state or {}).get("newest", 0))

    def state(self) -> dict[str, Any]:
        return {"pending": self.pending, "newest": self.newest}

    def add(self, row: dict[str, Any], natural_key: str) -> Mapped:
        """One CDR row: excluded, or kept with its call's other legs. Returns the events of the
        calls whose legs are all in: a row without a uniqueid at once, the others when no leg
        of theirs came for `GROUP_MS` of source time (or when the reader is caught up)."""
        row = {k: ("" if v is None else v) for k, v in row.items()}
        for need in ("start", "disposition", "duration", "billsec"):
            if need not in row:
                raise BadRecord("missing_column", f"a CDR row needs {need}")
        ts = self._ms(row["start"])
        if self._excluded(row):
            return Mapped([], "excluded")
        uid = str(row.get("uniqueid") or "")
        self.newest = max(self.newest, ts)
        leg = {"key": uid or natural_key, "ts": ts, "row": {k: str(v) for k, v in row.items()}}
        if not uid:  # no uniqueid column: every row is a call of its own
            return Mapped(self._map([leg]), "mapped")
        self.pending.setdefault(uid, []).append(leg)
        done = [u for u, legs in self.pending.items()
                if u != uid and self.newest - max(x["ts"] for x in legs) > GROUP_MS]
        return Mapped([e for u in done for e in self._map(self.pending.pop(u))], "mapped")

    def _ms(self, value: Any) -> int:
        return datetime_to_ms(value, self.config.tz)

    def _excluded(self, row: dict[str, Any]) -> bool:
        app = str(row.get("lastapp", ""))
        if any(app.lower() == x.lower() for x in self.c.exclude_lastapp):
            return True
        if self.c.exclude_local_channels and str(row.get("channel", "")).startswith("Local/"):
            return True
        return self.direction(row) == "internal"

    def direction(self, row: dict[str, Any]) -> str:
        for rule in self.c.direction_rules:
            if rule.pattern.search(str(row.get(rule.column, ""))):
                return rule.direction
        dst = "".join(ch for ch in str(row.get("dst", "")) if ch.isdigit())
        if len(dst) <= self.c.internal_max_digits:
            return "internal"
        return self.c.default_direction

    def flush(self) -> list[Emitted]:
        """Map every call still collecting legs (the reader is caught up: they are all in)."""
        groups = sorted(self.pending.values(), key=lambda legs: min(x["ts"] for x in legs))
        self.pending = {}
        return [e for legs in groups for e in self._map(legs)]

    def _map(self, legs: list[dict[str, Any]]) -> list[Emitted]:
        legs = sorted(legs, key=lambda x: x["ts"])
        first = legs[0]
        rows = [leg["row"] for leg in legs]
        rows.sort(key=lambda r: int(r.get("sequence") or 0) if str(r.get("sequence") or "0").isdigit() else 0)
        key, call_id = first["key"], first["key"]
        campaign = self.config.campaign(rows[0].get(self.c.campaign_column))
        if self.direction(rows[0]) == "inbound":
            return self._inbound(rows, key, call_id, campaign, first["ts"])
        return self._outbound(rows, key, call_id, campaign, first["ts"])

    def _agent(self, channel: str) -> str | None:
        m = self.c.agent_channel.match(channel or "")
        return self.config.agent(m.group(1)) if m else None

    def _times(self, row: dict[str, str]) -> tuple[int, int, int, int]:
        """(start, answer, end, billsec) in ms; answer = end − billsec when `answer` is empty."""
        start = self._ms(row["start"])
        duration = seconds_ms(row.get("duration"), "duration")
        billsec = seconds_ms(row.get("billsec"), "billsec")
        end = self._ms(row["end"]) if row.get("end") else start + duration
        answer = self._ms(row["answer"]) if row.get("answer") else end - billsec
        return start, max(answer, start), max(end, start), billsec

    def _outbound(self, rows: list[dict[str, str]], key: str, call_id: str, campaign: str,
                  dial_ts: int) -> list[Emitted]:
        agent = self._agent(rows[0].get("channel", ""))
        team = self.config.team(agent) if agent else None
        out = [self.b.call("dialed", key, dial_ts, call_id, campaign, agent_id=agent,
                           mode="manual" if agent else None,
                           dest_region=dest_region(rows[0].get("dst"), self.config.dest_region_digits))]
        answered = next((r for r in rows if r.get("disposition", "").upper() == "ANSWERED"), None)
        if answered is not None:
            start, answer, end, billsec = self._times(answered)
            out.append(self.b.call("answered", key, answer, call_id, campaign,
                                   answered_by=self.config.answered_by_default,
                                   ring_ms=answer - dial_ts))
            if agent:
                out.append(self.b.call("connected", key, answer, call_id, campaign,
                                       agent_id=agent, team_id=team, wait_ms=0))
            out.append(self.b.call("ended", key, end, call_id, campaign, agent_id=agent,
                                   talk_ms=billsec))
            return out
        last = rows[-1]
        start, _, end, _ = self._times(last)
        disp = last.get("disposition", "").upper()
        reason = _DISPOSITIONS.get(disp, "error")
        if disp == "FAILED" and (last.get("lastapp", "").lower() == "congestion"
                                 or "all-circuits-busy" in last.get("lastdata", "")):
            reason = "congestion"
        out.append(self.b.call("unanswered", key, end, call_id, campaign, reason=reason,
                               ring_ms=end - dial_ts))
        return out

    def _inbound(self, rows: list[dict[str, str]], key: str, call_id: str, campaign: str,
                 offer_ts: int) -> list[Emitted]:
        out = [self.b.call("offered", key, offer_ts, call_id, campaign,
                           queue_id=rows[0].get("dst") if not rows[0].get("dst", "").isdigit() else None)]
        answered = next((r for r in rows if r.get("disposition", "").upper() == "ANSWERED"), None)
        if answered is not None:
            agent = self._agent(answered.get("dstchannel", ""))
            start, answer, end, billsec = self._times(answered)
            if agent:
                out.append(self.b.call("connected", key, answer, call_id, campaign,
                                       agent_id=agent, team_id=self.config.team(agent),
                                       wait_ms=answer - offer_ts))
                out.append(self.b.call("ended", key, end, call_id, campaign, agent_id=agent,
                                       talk_ms=billsec))
                return out
        start, _, end, _ = self._times(rows[-1])
        out.append(self.b.call("abandoned", key, end, call_id, campaign,
                               wait_ms=end - offer_ts, reason="customer_hangup"))
        return out


class CdrLines:
    """Lines of Master.csv (positional, the optional columns by config) or of a CSV export with a
    header row (columns by name; the header is recognised and remembered in the checkpoint)."""

    def __init__(self, mapper: CdrMapper, header: list[str] | None = None) -> None:
        self.mapper, self.header = mapper, header

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        fields = csv_fields(text)
        lowered = {f.strip().lower() for f in fields}
        if self.header is None and any(m <= lowered for m in HEADER_MARKERS):
            self.header = [f.strip().lower() for f in fields]
            return Mapped([], "ignored")
        if self.header is not None:
            record = normalize(by_header(self.header, fields))
        else:
            names = CDR_COLUMNS + self.mapper.c.columns
            if len(fields) < len(names):
                raise BadRecord("wrong_column_count", f"{len(fields)} columns, Master.csv has "
                                f"{len(names)} with this configuration")
            record = dict(zip(names, fields, strict=False))
        return self.mapper.add(record, line_key(raw.rstrip(b"\r\n")))

    def flush(self) -> list[Emitted]:
        return self.mapper.flush()

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state(), "header": self.header}


class CdrRows:
    """Rows of the `cdr` table (dicts from the database poll)."""

    def __init__(self, mapper: CdrMapper) -> None:
        self.mapper = mapper

    def handle(self, raw: bytes, row: Any = None) -> Mapped:
        if not isinstance(row, dict):
            raise BadRecord("bad_row", "not a row")
        return self.mapper.add(normalize(row), line_key(raw))

    def flush(self) -> list[Emitted]:
        return self.mapper.flush()

    def state(self) -> dict[str, Any]:
        return {"mapper": self.mapper.state()}
