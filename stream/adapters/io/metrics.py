"""The adapter process's own /metrics (prometheus-client): records read by result, events
emitted by type, bad input by reason, source lag and checkpoint age."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class AdapterMetrics:
    def __init__(self, source: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.source = source
        r = self.registry
        self.records = Counter("callkpi_adapter_records", "Source records read, by result "
                               "(mapped, ignored, excluded, bad)", ["source", "result"], registry=r)
        self.emitted = Counter("callkpi_adapter_events_emitted", "v1 events sent (acknowledged or "
                               "in flight), by type", ["source", "type"], registry=r)
        self.bad = Counter("callkpi_adapter_bad_input", "Unreadable records and invalid events, "
                           "by reason; each went to dialer.adapter.dlq", ["source", "reason"],
                           registry=r)
        self.lag = Gauge("callkpi_adapter_source_lag_seconds", "Wall clock minus the time of the "
                         "newest source record read", ["source"], registry=r)
        self.checkpoint_saved = Gauge("callkpi_adapter_checkpoint_saved_timestamp_seconds",
                                      "When the checkpoint was last saved", ["source"], registry=r)
        age = Gauge("callkpi_adapter_checkpoint_age_seconds", "Seconds since the checkpoint was "
                    "last saved", ["source"], registry=r)
        age.labels(source).set_function(self._checkpoint_age)
        self._saved_at: float | None = None
        self._newest_ms: int | None = None
        self.lag.labels(source).set_function(self._lag)

    def _checkpoint_age(self) -> float:
        return 0.0 if self._saved_at is None else max(time.time() - self._saved_at, 0.0)

    def _lag(self) -> float:
        return 0.0 if self._newest_ms is None else max(time.time() - self._newest_ms / 1000, 0.0)

    def record(self, result: str) -> None:
        self.records.labels(self.source, result).inc()

    def event(self, type_: str) -> None:
        self.emitted.labels(self.source, type_).inc()

    def bad_input(self, reason: str) -> None:
        self.bad.labels(self.source, reason).inc()

    def source_time(self, ts_ms: int) -> None:
        if self._newest_ms is None or ts_ms > self._newest_ms:
            self._newest_ms = ts_ms

    def saved(self, at: float) -> None:
        self._saved_at = at
        self.checkpoint_saved.labels(self.source).set(at)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
