"""Where events go: Kafka (`acks=all`, keyed by call or agent) or a JSONL file for `callkpi replay`.

`flush()` returns only when everything sent so far is acknowledged (Kafka) or on disk (file);
the run loop saves its checkpoint only after it, so a crash can repeat events (the worker's dedupe
removes them) but never lose one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Protocol

DLQ_TOPIC = "dialer.adapter.dlq"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class SinkError(RuntimeError):
    """The sink refused or lost a message: the run stops without saving the checkpoint."""


class Sink(Protocol):
    def send(self, key: str, event: dict[str, Any]) -> None: ...
    def dead_letter(self, record: bytes) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def encode(event: dict[str, Any]) -> bytes:
    return _dumps(event).encode()


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, dlq_topic: str = DLQ_TOPIC) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError
        try:
            self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                          enable_idempotence=False, retries=5,
                                          max_request_size=1 << 20)
        except KafkaError as exc:
            raise SinkError(f"cannot connect to Kafka at {bootstrap}: {exc}") from exc
        self.topic, self.dlq_topic = topic, dlq_topic
        self.failures: list[BaseException] = []

    def send(self, key: str, event: dict[str, Any]) -> None:
        self.producer.send(self.topic, key=key.encode(), value=encode(event)) \
            .add_errback(self.failures.append)

    def dead_letter(self, record: bytes) -> None:
        self.producer.send(self.dlq_topic, value=record).add_errback(self.failures.append)

    def flush(self) -> None:
        self.producer.flush()
        if self.failures:
            first, n = self.failures[0], len(self.failures)
            self.failures = []
            raise SinkError(f"{n} messages were not acknowledged by Kafka; first error: {first!r}")

    def close(self) -> None:
        self.producer.close(timeout=10)  # a broker that is gone must not hold the exit


class FileSink:
    """Events to FILE (one JSON object a line), dead letters to FILE.dlq.jsonl; appends."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.out = open(self.path, "ab")
        self.dlq_path = self.path.with_name(self.path.name + ".dlq.jsonl")
        self.dlq: IO[bytes] | None = None

    def send(self, key: str, event: dict[str, Any]) -> None:
        self.out.write(encode(event) + b"\n")

    def dead_letter(self, record: bytes) -> None:
        if self.dlq is None:
            self.dlq = open(self.dlq_path, "ab")
        self.dlq.write(record + b"\n")

    def flush(self) -> None:
        for f in (self.out, self.dlq):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())

    def close(self) -> None:
        self.flush()
        self.out.close()
        if self.dlq is not None:
            self.dlq.close()
