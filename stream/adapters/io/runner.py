"""The run loop every adapter shares: read → map (pure) → validate → send → ack → checkpoint.

The checkpoint is saved only after the sink acknowledged everything read before it, so a crash
repeats at most the last unacknowledged batch (same event ids: the worker drops them).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from stream.adapters.core import BadRecord
from stream.adapters.io import checkpoint
from stream.adapters.io.badinput import BadInput
from stream.adapters.io.metrics import AdapterMetrics
from stream.adapters.io.sink import Sink
from stream.adapters.io.source import IDLE, Item
from stream.contract import Rejection, parse_ts, validate_dict
from stream.kpi.windows import MAX_EVENT_AGE_MS

log = logging.getLogger("callkpi.adapter")


class Handler(Protocol):
    """A source's pure side: one record in, its events out (`Mapped`), and its small state."""

    def handle(self, raw: bytes, row: Any = None) -> Any: ...
    def state(self) -> dict[str, Any]: ...


class Runner:
    def __init__(self, *, source: str, instance: str, reader: Iterable[Item | object],
                 handler: Handler, sink: Sink, checkpoint_path: Path | None,
                 metrics: AdapterMetrics, batch_records: int = 500, batch_seconds: float = 1.0,
                 clock_ms: Any = None) -> None:
        self.source, self.instance = source, instance
        self.reader, self.handler, self.sink = reader, handler, sink
        self.checkpoint_path, self.metrics = checkpoint_path, metrics
        self.batch_records, self.batch_seconds = batch_records, batch_seconds
        self.bad = BadInput(source, instance)
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.results: dict[str, int] = {}
        self.types: dict[str, int] = {}
        self._position: dict[str, Any] | None = None
        self._pending = 0

    def run(self) -> dict[str, Any]:
        stop = getattr(self.reader, "stop", None)
        previous = signal.getsignal(signal.SIGTERM)
        if stop is not None:
            signal.signal(signal.SIGTERM, lambda *_: stop())
        last_flush = time.monotonic()
        try:
            for item in self.reader:
                if item is IDLE:
                    self.flush_handler()
                    self.commit()
                    last_flush = time.monotonic()
                    continue
                assert isinstance(item, Item)
                self.one(item)
                if (self._pending >= self.batch_records
                        or time.monotonic() - last_flush >= self.batch_seconds):
                    self.commit()
                    last_flush = time.monotonic()
            self.flush_handler()
            self.commit()
        except KeyboardInterrupt:
            self.flush_handler()
            self.commit()
        finally:
            if stop is not None:
                signal.signal(signal.SIGTERM, previous)
            self.sink.close()
        return {"records": dict(self.results), "events": dict(self.types),
                "bad": dict(self.bad.counts)}

    def one(self, item: Item) -> None:
        self._position = item.position
        self._pending += 1
        try:
            mapped = self.handler.handle(item.raw, item.row)
        except BadRecord as e:
            self._count("bad")
            self._dead_letter(e.reason, e.message, item)
            return
        self._count(mapped.result)
        self._emit(mapped.events, item)

    def flush_handler(self) -> None:
        """Records a handler holds back (a CDR call's legs) are mapped when the reader is
        caught up or done."""
        flush = getattr(self.handler, "flush", None)
        if flush is None:
            return
        events = flush()
        if events:
            self._pending += 1
            self._emit(events, Item(b"", None, self._position or {}))

    def _emit(self, events: list[Any], item: Item) -> None:
        now = self.clock_ms()
        for emitted in events:
            checked = validate_dict(emitted.event, now_ms=now, max_age_ms=MAX_EVENT_AGE_MS)
            if isinstance(checked, Rejection):
                self._dead_letter(f"invalid_event:{checked.reason}",
                                  f"{emitted.event.get('type')}: {checked.message}", item)
                continue
            self.sink.send(emitted.key, emitted.event)
            self.types[emitted.event["type"]] = self.types.get(emitted.event["type"], 0) + 1
            self.metrics.event(emitted.event["type"])
        if events:
            self.metrics.source_time(min(parse_ts(e.event["ts"]) for e in events))

    def _count(self, result: str) -> None:
        self.results[result] = self.results.get(result, 0) + 1
        self.metrics.record(result)

    def _dead_letter(self, reason: str, message: str, item: Item) -> None:
        self.metrics.bad_input(reason)
        self.sink.dead_letter(self.bad.record(reason, message, item.raw, item.position))

    def commit(self) -> None:
        """Wait for the sink's ack of everything so far, then save the checkpoint."""
        if not self._pending:
            return
        self.sink.flush()
        self._pending = 0
        whole = getattr(self.reader, "checkpoint_position", None)
        position = whole() if whole is not None else self._position
        if self.checkpoint_path is not None and position is not None:
            at = checkpoint.save(self.checkpoint_path, source=self.source, instance=self.instance,
                                 position=position, state=self.handler.state())
            self.metrics.saved(at)
