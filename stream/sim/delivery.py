"""From model events to Kafka deliveries: encoding, delivery faults, invalid messages, ordering.

Every event the model emits is encoded once (compact JSON, UTF-8) and pushed on a heap keyed by
its delivery time (>= its ts). The model runs in time order and never emits an event with a ts
before its clock, so whatever on the heap is due at or before the clock can be released: the
output is in delivery order, and memory holds only what is still in flight (future follow-ups,
reordered, late and duplicate copies).

Faults use their own random stream, so turning faults on does not change the underlying events.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from heapq import heappop, heappush
from random import Random
from typing import Any

from stream.sim.config import INVALID_REASONS, Delivery, SimConfig
from stream.sim.model import Model

DAY_MS = 86_400_000


def _make_encode():
    """Compact JSON (ASCII). `JSONEncoder.encode` rebuilds its C encoder on every call (~2x the
    cost of encoding a small event); build it once."""
    c_make = getattr(json.encoder, "c_make_encoder", None)
    esc = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if c_make is None or esc is None:  # pragma: no cover - no C accelerator
        return json.JSONEncoder(separators=(",", ":")).encode
    c = c_make(None, None, esc, None, ":", ",", False, False, True)
    join = "".join
    return lambda obj: join(c(obj, 0))


_encode = _make_encode()


class TsFormatter:
    """Epoch ms -> RFC 3339 UTC with milliseconds ("2026-11-20T09:15:02.120Z"), memoized per second.

    Same output as `stream.contract.format_ts`, several times faster (the simulator formats
    millions). With style "mixed", a deterministic third of the events use a +08:00 offset and a
    third integer epoch ms (both allowed by the contract).
    """

    def __init__(self, style: str = "rfc3339", seed: int = 0):
        self._cache: dict[int, str] = {}
        self._cache8: dict[int, str] = {}
        self._mixed = style == "mixed"
        self._r = Random(f"ts:{seed}")

    def utc(self, ms: int) -> str:
        s, frac = divmod(ms, 1000)
        p = self._cache.get(s)
        if p is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            p = self._cache[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        return f"{p}.{frac:03d}Z"

    def __call__(self, ms: int) -> Any:
        if not self._mixed:
            return self.utc(ms)
        u = self._r.random()
        if u < 1 / 3:
            return ms
        if u < 2 / 3:
            return self.utc(ms)
        s, frac = divmod(ms, 1000)
        p = self._cache8.get(s)
        if p is None:
            if len(self._cache8) > 200_000:
                self._cache8.clear()
            p = self._cache8[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s + 8 * 3600))
        return f"{p}.{frac:03d}+08:00"


class Simulator:
    """One run. Iterate it for deliveries; `stats` counts what was produced (and injected)."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.stats: Counter[str] = Counter()
        self.fmt = TsFormatter(cfg.ts_style, cfg.seed)
        f = cfg.faults
        self._faulty = f.any
        self._fr = Random(f"faults:{cfg.seed}")
        self._reorder_ms = int(f.reorder_window_s * 1000)
        self._late_lo = math.log(60_000)
        self._late_hi = math.log(max(60_001, f.late_max_s * 1000))
        self._out: list = []
        self._seq = 0
        fmt = self.fmt if cfg.ts_style == "mixed" else self.fmt.utc
        self.model = Model(cfg, self._push_fast if not self._faulty else self._push_faulty, fmt)

    @property
    def customers(self) -> tuple[str, ...]:
        """The leads that bought in this run (after iterating it), in order: as the next run's
        `SimConfig.earlier_leads`, its repeat dials re-call customers (renewals, win-back)."""
        return tuple(self.model.customers)

    def __iter__(self) -> Iterator[Delivery]:
        out = self._out
        for clock in self.model.steps():
            while out and out[0][0] <= clock:
                dm, _, key, value = heappop(out)
                yield Delivery(dm, key, value)
        while out:
            dm, _, key, value = heappop(out)
            yield Delivery(dm, key, value)

    # --------------------------------------------------------------------------- pushing

    def _push_fast(self, ts: int, key: bytes, d: dict) -> None:
        self._seq += 1
        heappush(self._out, (ts, self._seq, key, _encode(d).encode()))

    def _push_faulty(self, ts: int, key: bytes, d: dict) -> None:
        f, r, st = self.cfg.faults, self._fr, self.stats
        value = _encode(d).encode()
        deliver = ts
        if self._reorder_ms:
            deliver += int(r.random() * self._reorder_ms)
        if f.late_rate and r.random() < f.late_rate:
            deliver = ts + int(math.exp(r.uniform(self._late_lo, self._late_hi)))
            st["late"] += 1
        self._seq += 1
        heappush(self._out, (deliver, self._seq, key, value))
        if f.duplicate_rate and r.random() < f.duplicate_rate:
            again = (200 + r.random() * 30_000) if r.random() < 0.8 else (60_000 + r.random() * 3_540_000)
            self._seq += 1
            heappush(self._out, (deliver + int(again), self._seq, key, value))
            st["duplicates"] += 1
        if f.invalid_rate and r.random() < f.invalid_rate:
            reason = INVALID_REASONS[int(r.random() * len(INVALID_REASONS))]
            self._seq += 1
            heappush(self._out, (deliver, self._seq, key, self._invalid(reason, d, deliver)))
            st["invalid:" + reason] += 1

    # --------------------------------------------------------------------------- invalid messages

    def _invalid(self, reason: str, valid: dict, deliver: int) -> bytes:
        """One message that breaks exactly one rule (so its rejection reason is `reason`)."""
        r = self._fr
        d = dict(valid)
        d["event_id"] = f"{valid['event_id']}-x{reason[:3]}"
        typ = d["type"]
        is_call = typ.startswith("call.")
        if reason == "oversize":
            d["padding"] = "x" * 66_000
        elif reason == "malformed_json":
            raw = _encode(d)
            choice = r.random()
            if choice < 0.6:
                return raw[: 1 + int(r.random() * (len(raw) - 2))].encode()  # truncated
            if choice < 0.8:
                return raw.replace('"', "'").encode()
            return b'\xff' + raw.encode()  # not UTF-8
        elif reason == "not_an_object":
            return _encode([d] if r.random() < 0.5 else d["event_id"]).encode()
        elif reason == "missing_field":
            names = ["event_id", "type", "ts"] + (["call_id", "campaign_id"] if is_call else ["agent_id"])
            names += _REQUIRED.get(typ, [])
            del d[names[int(r.random() * len(names))]]
        elif reason == "invalid_field":
            choice = int(r.random() * 4)
            if choice == 0:
                d["ts"] = "2026-13-45T25:61:00Z" if r.random() < 0.5 else "yesterday"
            elif choice == 1:
                d["event_id"] = 10_000_000 + self._seq
            elif choice == 2:
                d["call_id" if is_call else "agent_id"] = "   "  # a required string, blank
            else:
                d["v"] = "1"
        elif reason == "unknown_type":
            d["type"] = "call.transferred" if is_call else "agent.heartbeat"
        elif reason == "unknown_disposition":
            d = _as_type(d, "call.wrapup", agent_id=d.get("agent_id", "agent-x"), wrapup_ms=12_000,
                         disposition="maybe_later")
        elif reason == "out_of_range":
            field, bad = _OUT_OF_RANGE.get(typ, (None, None))
            if field is None:
                d = _as_type(d, "call.survey", csat=7)
            else:
                d[field] = bad
        elif reason == "future_timestamp":
            d["ts"] = self.fmt.utc(max(deliver, self.cfg.end_ms) + 3_600_000)
        elif reason == "too_old":
            d["ts"] = self.fmt.utc(deliver - 401 * DAY_MS)
        elif reason == "unsupported_version":
            d["v"] = 2
        return _encode(d).encode()


# Required type-specific fields (dropping one gives missing_field).
_REQUIRED = {
    "call.answered": ["answered_by"], "call.unanswered": ["reason"],
    "call.connected": ["agent_id", "wait_ms"], "call.abandoned": ["wait_ms", "reason"],
    "call.ended": ["talk_ms"], "call.wrapup": ["agent_id", "wrapup_ms", "disposition"],
    "call.survey": ["csat"], "call.qa": ["agent_id", "score", "compliant"],
    "call.quality": ["dropped"], "agent.state": ["state"],
}
_OUT_OF_RANGE = {
    "call.answered": ("ring_ms", -100), "call.unanswered": ("ring_ms", -1),
    "call.connected": ("wait_ms", -1), "call.abandoned": ("wait_ms", -250),
    "call.ended": ("talk_ms", -5), "call.wrapup": ("lead_score", 150), "call.survey": ("csat", 0),
    "call.qa": ("score", 101), "call.quality": ("mos", 6.2),
}


def _as_type(d: dict, typ: str, **fields: Any) -> dict:
    """A call event of type `typ` built from the common fields of `d` (call or agent event)."""
    out = {"event_id": d["event_id"], "type": typ, "ts": d["ts"],
           "campaign_id": d.get("campaign_id") or "unknown-campaign",
           "call_id": d.get("call_id") or f"{d['event_id']}-call"}
    out.update(fields)
    return out


def generate(cfg: SimConfig) -> Iterator[Delivery]:
    """Every message of the run, in delivery order (non-decreasing `deliver_ms`)."""
    return iter(Simulator(cfg))
