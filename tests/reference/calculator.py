"""Reference KPI calculator: the test oracle.

A deliberately simple BATCH implementation of shared/kpi-catalog.md over a list of raw Kafka
message values (bytes, in arrival order). It shares no code with `stream` (it re-implements the
little validation it needs from shared/event-contract.md), so an end-to-end test can compare the
streaming pipeline against it.

Readability over speed: every valid event is validated and deduplicated once, then turned into one
*record* (its ts, the scopes it counts in, and its counter contributions); `kpis()` filters and
sums records. Agent time is kept as intervals and clipped at query time.

Decisions where the catalog is silent (the pipeline implements the same):

- Validation follows docs/event-contract.md ("as implemented"): the first broken rule decides, in
  the order size, JSON, object, `v`, event_id, type, ts, call_id, campaign_id, the type's fields,
  and the clock last (future_timestamp: ts > now + 10 min; too_old: ts < now - 400 days). `null`
  means absent. Every string is trimmed and must then be 1..128 characters; an empty optional
  string is absent (1.1), an empty required one invalid. Enum values other than `type` and `disposition` outside their
  set are `invalid_field`. Booleans are never numbers; `*_ms` must be integral (1500.0 is fine,
  1.5 is invalid_field) and <= 7 days, `order_value` <= 10**9; csat 4.5 is out_of_range. `ts` is strict RFC 3339 with an
  offset, or integral epoch ms. (Not re-implemented: leap seconds, unpaired surrogates.)
- Dedupe: the first valid arrival of an `event_id` wins, later ones are ignored entirely.
- The call's agent is the `agent_id` of its earliest `call.connected` (by ts, then event_id), else
  of its earliest `call.dialed`; `caller_id` and `list_id` come from that earliest `call.dialed`.
- An agent's team is the `team_id` of its latest (ts, event_id) `agent.state` / `call.connected`
  carrying one; all of the agent's contributions count for that single team.
- A `paused` interval without a `reason` is reported under the reason "unspecified".
- Contract 1.1: a call with any `call.offered` is inbound: no `dialed`, `attempts_completed`,
  `answered`, `connected`, `machine_answered`, `abandoned` or `compliance_abandons` (its abandon is
  `inbound_abandoned`); it is `inbound_answered` at its first `call.connected` (by ts, then
  event_id), whose wait_ms is its speed of answer and decides the service level. Funnel rates are
  over `connected + offered`, `completion_rate` over `dialed + offered`. `wrapups_by_code` counts
  wrap-ups per `disposition_code`. The `variant` of the earliest `call.dialed` is a scope of every
  event of the call, without call gaps (a gap lies between two calls).
- A call gap runs from the latest `call.ended` (at or before the connect, of another call) to the
  agent's `call.connected`; a `logged_out` of the agent at or between those two instants ends
  the login session, and the gap is not counted. For an agent with no `agent.state` at all, a
  gap longer than `max_call_gap_seconds` is not counted.
- Customer retention: a sale is a `call.wrapup` with disposition `sale`; its customer is the
  `lead_id` of the call's earliest `call.dialed` (none: no customer). `retention()` counts the
  distinct leads of the center or a campaign per local calendar week (from Monday) or month.
"""
from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_BYTES = 65536
FUTURE_MS = 10 * 60 * 1000
TOO_OLD_MS = 400 * 86400 * 1000
MAX_MS = 7 * 24 * 3600 * 1000  # every *_ms field: at most 7 days (contract 1.1)
MAX_ORDER_VALUE = 10**9

DISPOSITIONS = {
    "sale", "appointment", "qualified_lead", "callback_requested", "not_interested", "refused",
    "dnc", "wrong_party", "answering_machine", "no_decision", "other",
}
ANSWERED_BY = {"human", "machine", "fax", "unknown"}
UNANSWERED_REASONS = {"no_answer", "busy", "invalid_number", "rejected", "congestion", "canceled", "error"}
MODES = {"predictive", "progressive", "preview", "manual"}
ABANDON_REASONS = {"no_agent", "customer_hangup"}
HANGUP_BY = {"customer", "agent", "system"}
INTENTS = {"high", "medium", "low", "none"}
AGENT_STATES = {"logged_out", "available", "on_call", "wrap_up", "paused"}
QUALIFIED_DISPOSITIONS = {"qualified_lead", "sale", "appointment"}

# Per type: field -> (kind, required, extra). kinds: str, enum, ms (int >= 0), num (range), int
# (range), bool. Every call.* type also requires call_id and campaign_id.
_CALL_FIELDS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "call.dialed": {"list_id": ("str", False, None), "lead_id": ("str", False, None),
                    "caller_id": ("str", False, None), "dest_region": ("str", False, None),
                    "mode": ("enum", False, MODES), "agent_id": ("str", False, None),
                    "variant": ("code", False, None)},
    "call.offered": {"queue_id": ("str", False, None)},
    "call.answered": {"answered_by": ("enum", True, ANSWERED_BY), "ring_ms": ("ms", False, None)},
    "call.unanswered": {"reason": ("enum", True, UNANSWERED_REASONS), "ring_ms": ("ms", False, None)},
    "call.connected": {"agent_id": ("str", True, None), "team_id": ("str", False, None),
                       "wait_ms": ("ms", True, None)},
    "call.abandoned": {"wait_ms": ("ms", True, None), "reason": ("enum", True, ABANDON_REASONS)},
    "call.ended": {"agent_id": ("str", False, None), "talk_ms": ("ms", True, None),
                   "hold_ms": ("ms", False, None), "hangup_by": ("enum", False, HANGUP_BY)},
    "call.wrapup": {"agent_id": ("str", True, None), "wrapup_ms": ("ms", True, None),
                    "disposition": ("disposition", True, None),
                    "disposition_code": ("code", False, None),
                    "order_value": ("num", False, (0, MAX_ORDER_VALUE)),
                    "lead_score": ("num", False, (0, 100)), "intent": ("enum", False, INTENTS),
                    "resolved": ("bool", False, None)},
    "call.survey": {"agent_id": ("str", False, None), "csat": ("int", True, (1, 5))},
    "call.complaint": {"agent_id": ("str", False, None), "category": ("str", False, None)},
    "call.qa": {"agent_id": ("str", True, None), "score": ("num", True, (0, 100)),
                "compliant": ("bool", True, None)},
    "call.quality": {"mos": ("num", False, (1.0, 5.0)), "dropped": ("bool", True, None)},
    "call.callback": {"lead_id": ("str", False, None)},
}
_AGENT_FIELDS = {
    "agent.state": {"agent_id": ("str", True, None), "state": ("enum", True, AGENT_STATES),
                    "reason": ("str", False, None), "team_id": ("str", False, None),
                    "campaign_id": ("str", False, None)},
}
TYPES = {**_CALL_FIELDS, **_AGENT_FIELDS}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

COUNT_KEYS = [
    "dialed", "attempts_completed", "answered", "connected", "machine_answered", "agent_connected",
    "abandoned", "handled", "conversations", "conversions", "goals_completed", "qualified_leads",
    "intent_high", "intent_medium", "intent_low", "refusals", "dnc_requests", "callbacks", "orders",
    "revenue", "surveys", "csat_sum", "csat_satisfied", "complaints", "qa_reviews", "qa_compliant",
    "qa_score_sum", "quality_reports", "mos_sum", "network_drops", "resolved",
    "wrapups", "compliance_abandons", "offered", "inbound_answered", "inbound_abandoned",
]
# Internal sums behind the duration averages (not reported).
_SUM_KEYS = ["talk_ms", "hold_ms", "wrapup_ms", "gap_ms", "gaps", "wait_ms", "ring_ms", "rings",
             "lead_score_sum", "lead_scores", "inbound_wait_ms", "inbound_in_sl"]
AGENT_TIME_STATES = ["available", "on_call", "wrap_up", "paused"]


class Invalid(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class RefConfig:
    conversation_threshold_ms: int = 30000
    success_dispositions: tuple[str, ...] = ("sale", "appointment")
    goal_dispositions: tuple[str, ...] = ("sale", "appointment", "qualified_lead")
    qualification_score: float = 70
    connect_threshold_ms: int = 2000
    service_level_threshold_ms: int = 20000
    max_call_gap_seconds: int = 3600


# ----------------------------------------------------------------------------- validation

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _integral(x: Any) -> int:
    if not _is_number(x) or x != int(x):
        raise Invalid("invalid_field")
    return int(x)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _parse_ts(x: Any) -> int:
    if isinstance(x, str):
        s = x.strip()
        if not _RFC3339.fullmatch(s):
            raise Invalid("invalid_field")
        try:
            dt = datetime.fromisoformat(s[:10] + "T" + s[11:].upper())
        except ValueError:
            raise Invalid("invalid_field") from None
        return (dt - _EPOCH) // _MS
    return _integral(x)


def _check_str(x: Any) -> str:
    if not isinstance(x, str):
        raise Invalid("invalid_field")
    s = x.strip()
    if not 1 <= len(s) <= 128:
        raise Invalid("invalid_field")
    return s


def _check(kind: str, extra: Any, x: Any) -> Any:
    if kind == "str":
        return _check_str(x)
    if kind == "code":  # 1.1: disposition_code, variant
        if len(_check_str(x)) > 64:
            raise Invalid("invalid_field")
        return x.strip()
    if kind == "enum":
        if not isinstance(x, str) or x.strip() not in extra:
            raise Invalid("invalid_field")
        return x.strip()
    if kind == "disposition":
        if _check_str(x) not in DISPOSITIONS:
            raise Invalid("unknown_disposition")
        return x.strip()
    if kind == "bool":
        if not isinstance(x, bool):
            raise Invalid("invalid_field")
        return x
    if not _is_number(x):
        raise Invalid("invalid_field")
    if kind == "ms":
        value = _integral(x)  # a type error (1.5) wins over a range error
        if not 0 <= value <= MAX_MS:
            raise Invalid("out_of_range")
        return value
    lo, hi = extra
    if kind == "int" and x != int(x):  # csat 4.5: not one of 1..5
        raise Invalid("out_of_range")
    if not lo <= x <= hi:
        raise Invalid("out_of_range")
    return int(x) if kind == "int" else x


def validate(raw: bytes, now_ms: int) -> dict[str, Any]:
    """Return the normalized event (ts as epoch ms, strings trimmed) or raise Invalid(reason).

    The first broken rule decides, in this order: size, JSON, object, v, event_id, type, ts,
    call_id, campaign_id, the type's own fields (agent_id first), then the clock.
    """
    if len(raw) > MAX_BYTES:
        raise Invalid("oversize")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Invalid("malformed_json") from None
    if not isinstance(obj, dict):
        raise Invalid("not_an_object")
    obj = {k: v for k, v in obj.items() if v is not None}
    if "v" in obj and _integral(obj["v"]) != 1:
        raise Invalid("unsupported_version")

    def required(name: str) -> Any:
        if name not in obj:
            raise Invalid("missing_field")
        return obj[name]

    ev: dict[str, Any] = {"event_id": _check_str(required("event_id"))}
    typ = required("type")
    if not isinstance(typ, str):
        raise Invalid("invalid_field")
    if typ.strip() not in TYPES:
        raise Invalid("unknown_type")
    ev["type"] = typ = typ.strip()
    ev["ts"] = _parse_ts(required("ts"))
    spec = TYPES[typ]
    if typ.startswith("call."):
        spec = {"call_id": ("str", True, None), "campaign_id": ("str", True, None), **spec}
    if "agent_id" in spec:
        spec = {"agent_id": spec["agent_id"], **spec}
    for name, (kind, is_required, extra) in spec.items():
        blank = isinstance(obj.get(name), str) and not obj[name].strip()
        if blank and not is_required and kind in ("str", "enum", "code"):
            continue  # an empty optional string is absent (contract 1.1)
        if name in obj:
            ev[name] = _check(kind, extra, obj[name])
        elif is_required:
            raise Invalid("missing_field")
    if ev["ts"] > now_ms + FUTURE_MS:
        raise Invalid("future_timestamp")
    if ev["ts"] < now_ms - TOO_OLD_MS:
        raise Invalid("too_old")
    return ev


# ----------------------------------------------------------------------------- records

@dataclass
class _Record:
    ts: int
    scopes: list[str]
    values: dict[str, float]


@dataclass
class _Interval:
    start: int
    end: int | None  # None: open, runs to the query's now
    state: str
    reason: str | None
    scopes: list[str] = field(default_factory=list)


def _first(events: list[dict]) -> dict | None:
    return min(events, key=lambda e: (e["ts"], e["event_id"])) if events else None


def period_starts(period: str, at_ms: int, tz: Any) -> list[int]:
    """The starts (epoch ms) of the local calendar week (from Monday) or month before the one
    containing `at_ms`, of that one and of the next one."""
    local = datetime.fromtimestamp(at_ms / 1000, tz).date()
    if period == "week":
        first = local - timedelta(days=local.weekday())
        starts = [first + timedelta(days=7 * k) for k in (-1, 0, 1)]
    else:
        first = local.replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        starts = [before, first, after]
    return [int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000) for d in starts]


class Reference:
    def __init__(self, raw_messages: Iterable[bytes], *, now_ms: int, config: RefConfig | None = None):
        self.config = config = config or RefConfig()
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        events: list[dict] = []
        seen: set[str] = set()
        for raw in raw_messages:
            try:
                ev = validate(raw, now_ms)
            except Invalid as exc:
                self.rejected[exc.reason] += 1
                continue
            if ev["event_id"] in seen:
                self.duplicates += 1
                continue
            seen.add(ev["event_id"])
            events.append(ev)
        self.accepted = len(events)

        # Per call: its events; per agent: state points and team evidence.
        calls: dict[str, list[dict]] = defaultdict(list)
        agent_points: dict[str, list[dict]] = defaultdict(list)
        team_evidence: dict[str, list[dict]] = defaultdict(list)
        for ev in events:
            if ev["type"].startswith("call."):
                calls[ev["call_id"]].append(ev)
            else:
                agent_points[ev["agent_id"]].append(ev)
            if ev["type"] in ("agent.state", "call.connected") and "team_id" in ev:
                team_evidence[ev["agent_id"]].append(ev)
        self.team_of: dict[str, str] = {
            a: max(evs, key=lambda e: (e["ts"], e["event_id"]))["team_id"]
            for a, evs in team_evidence.items()
        }

        # Attribute every call event: (event, agent, caller_id, list_id). 1.1: a call with a
        # call.offered is inbound; its first call.connected is where it is answered; the
        # variant of its earliest call.dialed is a scope of every event of the call.
        attributed: list[tuple[dict, str | None, str | None, str | None]] = []
        self._inbound: set[str] = set()
        self._first_connects: set[str] = set()
        self._variant: dict[str, str] = {}
        self._sales: list[tuple[int, str, str]] = []  # (ts, campaign, lead) of every sale
        for call_events in calls.values():
            dialed = _first([e for e in call_events if e["type"] == "call.dialed"])
            connected = _first([e for e in call_events if e["type"] == "call.connected"])
            call_agent = connected["agent_id"] if connected else (dialed or {}).get("agent_id")
            caller_id = (dialed or {}).get("caller_id")
            list_id = (dialed or {}).get("list_id")
            if any(e["type"] == "call.offered" for e in call_events):
                self._inbound.add(call_events[0]["call_id"])
            if connected is not None:
                self._first_connects.add(connected["event_id"])
            if dialed is not None and "variant" in dialed:
                self._variant[dialed["call_id"]] = dialed["variant"]
            # Customer retention: a sale's customer is the lead of the call's earliest dialed.
            lead = (dialed or {}).get("lead_id")
            if lead is not None:
                for e in call_events:
                    if e["type"] == "call.wrapup" and e["disposition"] == "sale":
                        self._sales.append((e["ts"], e["campaign_id"], lead))
            for ev in call_events:
                attributed.append((ev, ev.get("agent_id", call_agent), caller_id, list_id))

        # Call gaps: per agent, the ends of its calls.
        ends: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for ev, agent, _, _ in attributed:
            if ev["type"] == "call.ended" and agent is not None:
                ends[agent].append((ev["ts"], ev["call_id"]))
        for agent_ends in ends.values():
            agent_ends.sort()
        logouts = {a: sorted(p["ts"] for p in points if p["state"] == "logged_out")
                   for a, points in agent_points.items()}

        self.records: list[_Record] = []
        for ev, agent, caller_id, list_id in attributed:
            scopes = ["center", f"campaign:{ev['campaign_id']}"]
            if agent is not None:
                scopes.append(f"agent:{agent}")
                if agent in self.team_of:
                    scopes.append(f"team:{self.team_of[agent]}")
            if caller_id is not None:
                scopes.append(f"caller_id:{caller_id}")
            if list_id is not None:
                scopes.append(f"list:{list_id}")
            values = self._contributions(ev)
            if ev["call_id"] in self._variant:  # a variant has no call gaps (between two calls)
                self.records.append(_Record(ev["ts"], [f"variant:{self._variant[ev['call_id']]}"],
                                            dict(values)))
            if ev["type"] == "call.connected":
                a = ev["agent_id"]
                gap = self._gap(ends.get(a, []), ev["ts"], ev["call_id"], logouts.get(a))
                if gap is not None and a not in agent_points \
                        and gap > config.max_call_gap_seconds * 1000:
                    gap = None
                if gap is not None:
                    values["gap_ms"] = gap
                    values["gaps"] = 1
            self.records.append(_Record(ev["ts"], scopes, values))

        # Agent time intervals.
        self.intervals: list[_Interval] = []
        for agent, points in agent_points.items():
            points.sort(key=lambda e: (e["ts"], e["event_id"]))
            for i, p in enumerate(points):
                end = points[i + 1]["ts"] if i + 1 < len(points) else None
                scopes = ["center", f"agent:{agent}"]
                if agent in self.team_of:
                    scopes.append(f"team:{self.team_of[agent]}")
                if "campaign_id" in p:
                    scopes.append(f"campaign:{p['campaign_id']}")
                reason = p.get("reason", "unspecified") if p["state"] == "paused" else None
                self.intervals.append(_Interval(p["ts"], end, p["state"], reason, scopes))

        self._by_scope: dict[str, list[_Record]] = defaultdict(list)
        for rec in self.records:
            for s in rec.scopes:
                self._by_scope[s].append(rec)
        self._intervals_by_scope: dict[str, list[_Interval]] = defaultdict(list)
        for iv in self.intervals:
            for s in iv.scopes:
                self._intervals_by_scope[s].append(iv)

    @staticmethod
    def _gap(agent_ends: list[tuple[int, str]], t: int, call_id: str,
             logouts: list[int] | None) -> int | None:
        """The gap before a connect at `t`, unless a logout lies at or between its two ends."""
        i = bisect.bisect_right(agent_ends, (t, "\U0010ffff")) - 1
        while i >= 0:
            end_ts, end_call = agent_ends[i]
            if end_call != call_id:
                if any(end_ts <= lo <= t for lo in logouts or ()):
                    return None
                return t - end_ts
            i -= 1
        return None

    def _contributions(self, ev: dict) -> dict[str, float]:
        cfg = self.config
        t = ev["type"]
        v: dict[str, float] = {}
        inbound = ev["call_id"] in self._inbound
        if t == "call.dialed":
            if not inbound:
                v["dialed"] = 1
        elif t == "call.offered":
            v["offered"] = 1
        elif t in ("call.answered", "call.unanswered"):
            if "ring_ms" in ev:
                v["ring_ms"] = ev["ring_ms"]
                v["rings"] = 1
            if inbound:  # an inbound call is no outbound attempt or answer
                return v
            v["attempts_completed"] = 1
            if t == "call.answered":
                v["answered"] = 1
                if ev["answered_by"] == "human":
                    v["connected"] = 1
                if ev["answered_by"] in ("machine", "fax"):
                    v["machine_answered"] = 1
        elif t == "call.connected":
            v["agent_connected"] = 1
            v["wait_ms"] = ev["wait_ms"]
            if not inbound and ev["wait_ms"] > cfg.connect_threshold_ms:
                v["compliance_abandons"] = 1
            if inbound and ev["event_id"] in self._first_connects:
                v["inbound_answered"] = 1
                v["inbound_wait_ms"] = ev["wait_ms"]
                if ev["wait_ms"] <= cfg.service_level_threshold_ms:
                    v["inbound_in_sl"] = 1
        elif t == "call.abandoned":
            if inbound:
                v["inbound_abandoned"] = 1
            else:
                v["abandoned"] = 1
                v["compliance_abandons"] = 1
        elif t == "call.ended":
            if "agent_id" in ev:
                v["handled"] = 1
                v["talk_ms"] = ev["talk_ms"]
                v["hold_ms"] = ev.get("hold_ms", 0)
                if ev["talk_ms"] >= cfg.conversation_threshold_ms:
                    v["conversations"] = 1
        elif t == "call.wrapup":
            d = ev["disposition"]
            v["wrapups"] = 1
            v["wrapup_ms"] = ev["wrapup_ms"]
            if "disposition_code" in ev:
                v["code:" + ev["disposition_code"]] = 1
            if d in cfg.success_dispositions:
                v["conversions"] = 1
            if d in cfg.goal_dispositions:
                v["goals_completed"] = 1
            if d in QUALIFIED_DISPOSITIONS or ev.get("lead_score", -1) >= cfg.qualification_score:
                v["qualified_leads"] = 1
            if ev.get("intent") in ("high", "medium", "low"):
                v[f"intent_{ev['intent']}"] = 1
            if d in ("refused", "dnc"):
                v["refusals"] = 1
            if d == "dnc":
                v["dnc_requests"] = 1
            if d == "callback_requested":
                v["callbacks"] = 1
            if d == "sale":
                v["orders"] = 1
                v["revenue"] = float(ev.get("order_value", 0))
            if "lead_score" in ev:
                v["lead_score_sum"] = ev["lead_score"]
                v["lead_scores"] = 1
            if ev.get("resolved") is True:
                v["resolved"] = 1
        elif t == "call.survey":
            v["surveys"] = 1
            v["csat_sum"] = ev["csat"]
            if ev["csat"] >= 4:
                v["csat_satisfied"] = 1
        elif t == "call.complaint":
            v["complaints"] = 1
        elif t == "call.qa":
            v["qa_reviews"] = 1
            v["qa_score_sum"] = ev["score"]
            if ev["compliant"]:
                v["qa_compliant"] = 1
        elif t == "call.quality":
            v["quality_reports"] = 1
            if "mos" in ev:
                v["mos_sum"] = ev["mos"]
            if ev["dropped"]:
                v["network_drops"] = 1
        elif t == "call.callback":
            v["callbacks"] = 1
        return v

    # ------------------------------------------------------------------------- queries

    def scopes(self) -> list[str]:
        return sorted(set(self._by_scope) | set(self._intervals_by_scope))

    def ids(self, kind: str) -> list[str]:
        """The ids of a scope kind with any data (for breakdowns)."""
        return sorted(s.split(":", 1)[1] for s in self.scopes() if s.startswith(kind + ":"))

    def hour_cells(self, scope: str, from_ms: int, to_ms: int, tz: Any, *,
                   weekday: bool) -> dict[tuple[int, int], dict[str, float]]:
        """Call counters per local (weekday or -1, hour) of each record's ts in [from, to): the
        "best time to call" heatmap, from the records alone."""
        cells: dict[tuple[int, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for rec in self._by_scope.get(scope, []):
            if from_ms <= rec.ts < to_ms:
                local = datetime.fromtimestamp(rec.ts / 1000, tz)
                cell = cells[(local.weekday() if weekday else -1, local.hour)]
                for k, x in rec.values.items():
                    cell[k] += x
        return {k: dict(v) for k, v in cells.items()}

    def sums(self, scope: str, from_ms: int, to_ms: int) -> dict[str, float]:
        """Σ of every counter of `scope` over the records with from_ms ≤ ts < to_ms."""
        c: dict[str, float] = defaultdict(int)
        for rec in self._by_scope.get(scope, []):
            if from_ms <= rec.ts < to_ms:
                for k, x in rec.values.items():
                    c[k] += x
        return c

    def conversion_arms(self, variants: Iterable[str], from_ms: int, to_ms: int
                        ) -> dict[str, tuple[int, int]]:
        """Per variant (experiment arm): (conversions, live contacts), the counts behind
        conversion_rate, summed over the `variant:<id>` scope's events in [from, to)."""
        out = {}
        for v in variants:
            c = self.sums(f"variant:{v}", from_ms, to_ms)
            out[v] = (int(c["conversions"]), int(c["connected"] + c["offered"]))
        return out

    def buyers(self, scope: str, from_ms: int, to_ms: int) -> set[str]:
        """Customer retention: the distinct leads with a sale in [from, to) in `center` or
        `campaign:<id>`."""
        return {lead for ts, campaign, lead in self._sales
                if from_ms <= ts < to_ms and scope in ("center", f"campaign:{campaign}")}

    def retention(self, scope: str, period: str, at_ms: int, tz: Any) -> dict[str, Any]:
        """buying_customers, repeat_customers and retention_rate of the local calendar week
        (from Monday) or month containing `at_ms`, as sets."""
        ms = period_starts(period, at_ms, tz)
        now, prev = self.buyers(scope, ms[1], ms[2]), self.buyers(scope, ms[0], ms[1])
        return {"buying_customers": len(now), "repeat_customers": len(now & prev),
                "previous_buying_customers": len(prev),
                "retention_rate": len(now & prev) / len(prev) if prev else None}

    def kpis(self, scope: str, from_ms: int, to_ms: int, *, now_ms: int) -> dict[str, Any]:
        c = self.sums(scope, from_ms, to_ms)

        seconds: dict[str, float] = defaultdict(float)
        paused_by_reason: dict[str | None, float] = defaultdict(float)
        hi = min(to_ms, now_ms)
        for iv in self._intervals_by_scope.get(scope, []):
            end = now_ms if iv.end is None else iv.end
            overlap = min(end, hi) - max(iv.start, from_ms)
            if overlap <= 0:
                continue
            seconds[iv.state] += overlap / 1000
            if iv.state == "paused":
                paused_by_reason[iv.reason] += overlap / 1000

        out: dict[str, Any] = {}
        for k in COUNT_KEYS:
            out[k] = c[k]
        out["revenue"] = float(c["revenue"])
        out["mos_sum"] = float(c["mos_sum"])
        out["qa_score_sum"] = float(c["qa_score_sum"])

        def div(a: float, b: float) -> float | None:
            return None if b == 0 else a / b

        handled = c["handled"]
        out["avg_talk_seconds"] = div(c["talk_ms"] / 1000, handled)
        out["aht_seconds"] = div((c["talk_ms"] + c["hold_ms"] + c["wrapup_ms"]) / 1000, handled)
        out["avg_wrapup_seconds"] = div(c["wrapup_ms"] / 1000, c["wrapups"])
        out["avg_call_gap_seconds"] = div(c["gap_ms"] / 1000, c["gaps"])
        out["avg_answer_to_agent_seconds"] = div(c["wait_ms"] / 1000, c["agent_connected"])
        out["avg_ring_seconds"] = div(c["ring_ms"] / 1000, c["rings"])

        for st in AGENT_TIME_STATES:
            out[f"{st}_seconds"] = seconds[st]
        out["paused_seconds_by_reason"] = dict(paused_by_reason)
        out["staffed_seconds"] = sum(seconds[st] for st in AGENT_TIME_STATES)
        productive = seconds["available"] + seconds["on_call"] + seconds["wrap_up"]
        out["productive_seconds"] = productive
        out["occupancy"] = div(seconds["on_call"] + seconds["wrap_up"], productive)
        out["calls_per_agent_hour"] = div(handled, out["staffed_seconds"] / 3600)
        out["calls_per_productive_hour"] = div(handled, productive / 3600)

        connected = c["connected"]
        live = connected + c["offered"]  # 1.1: every live person reached, outbound or inbound
        out["avg_speed_of_answer_seconds"] = div(c["inbound_wait_ms"] / 1000, c["inbound_answered"])
        out["inbound_abandon_rate"] = div(c["inbound_abandoned"], c["offered"])
        out["service_level"] = div(c["inbound_in_sl"], c["offered"])
        out["wrapups_by_code"] = {k[5:]: n for k, n in sorted(c.items()) if k.startswith("code:") and n}
        out["connect_rate"] = div(connected, c["attempts_completed"])
        out["answer_rate"] = div(c["answered"], c["attempts_completed"])
        out["machine_rate"] = div(c["machine_answered"], c["answered"])
        out["abandon_rate"] = div(c["abandoned"], connected)
        out["conversation_rate"] = div(c["conversations"], live)
        out["conversion_rate"] = div(c["conversions"], live)
        out["completion_rate"] = div(c["goals_completed"], c["dialed"] + c["offered"])
        out["lead_rate"] = div(c["qualified_leads"], live)
        out["sales_conversion_rate"] = div(c["orders"], c["qualified_leads"])
        out["refusal_rate"] = div(c["refusals"], live)
        out["callback_rate"] = div(c["callbacks"], live)
        out["complaint_rate"] = div(c["complaints"], live)
        out["csat_avg"] = div(c["csat_sum"], c["surveys"])
        out["csat_satisfied_rate"] = div(c["csat_satisfied"], c["surveys"])
        out["resolution_rate"] = div(c["resolved"], c["wrapups"])
        out["qa_compliance_rate"] = div(c["qa_compliant"], c["qa_reviews"])
        out["avg_mos"] = div(c["mos_sum"], c["quality_reports"])
        out["network_drop_rate"] = div(c["network_drops"], c["quality_reports"])
        out["avg_order_value"] = div(c["revenue"], c["orders"])
        out["avg_lead_score"] = div(c["lead_score_sum"], c["lead_scores"])
        return out
