"""Sending simulated deliveries: real-time pacing, progress, and a Kafka producer.

Kept apart from the model (which is stdlib-only and never reads the wall clock): pacing maps
simulated delivery time to wall time, `publish` produces to Kafka with kafka-python.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from stream.sim.config import Delivery


def paced(deliveries: Iterable[Delivery], speed: float | None,
          start_ms: int | None = None) -> Iterator[Delivery]:
    """Yield each delivery no earlier than (deliver_ms - start_ms) / speed wall seconds from now.

    start_ms: the simulated time that maps to "now" (default: the first delivery's). speed None
    (or <= 0): as fast as possible. If the consumer is slower than the schedule, deliveries follow
    as fast as it takes them.
    """
    if not speed or speed <= 0:
        yield from deliveries
        return
    wall0 = time.monotonic()
    sim0 = start_ms
    for d in deliveries:
        if sim0 is None:
            sim0 = d.deliver_ms
        wait = wall0 + (d.deliver_ms - sim0) / 1000.0 / speed - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield d


def with_progress(deliveries: Iterable[Delivery], label: str = "simulate", every_s: float = 2.0,
                  out: TextIO | None = None) -> Iterator[Delivery]:
    """Pass deliveries through, printing count, rate and simulated clock to stderr now and then."""
    out = out or sys.stderr
    t0 = last = time.monotonic()
    n = last_n = 0
    d = None
    for d in deliveries:
        n += 1
        if n & 1023 == 0:
            now = time.monotonic()
            if now - last >= every_s:
                print(f"{label}: {n:,} events ({(n - last_n) / (now - last):,.0f}/s), simulated clock "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(d.deliver_ms // 1000))}",
                      file=out, flush=True)
                last, last_n = now, n
        yield d
    secs = time.monotonic() - t0
    print(f"{label}: done, {n:,} events in {secs:,.1f} s ({n / max(secs, 1e-9):,.0f}/s)", file=out, flush=True)


def publish(deliveries: Iterable[Delivery], bootstrap: str, topic: str, *,
            realtime_speed: float | None, start_ms: int | None = None) -> int:
    """Produce every delivery (key, raw value) to `topic`; return how many were sent.

    realtime_speed: simulated seconds per wall second (1.0 = real time), None = as fast as
    possible; start_ms: the simulated time that maps to the wall clock's "now" (see `paced`).
    Raises RuntimeError if the broker is unreachable or refused any message (after sending the
    rest).
    """
    from kafka import KafkaProducer  # imported here: the simulator itself needs no Kafka client
    from kafka.errors import KafkaError

    # acks=1 rules out idempotence; saying so avoids kafka-python's warning. kafka-python spends
    # ~90 us of CPU per send (~10k messages/s), slower than the simulator itself.
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024,
                                 acks=1, enable_idempotence=False, max_request_size=4 * 1024 * 1024)
    except KafkaError as exc:
        raise RuntimeError(f"cannot connect to Kafka at {bootstrap}: {exc}") from exc
    failures: list[BaseException] = []
    sent = 0
    try:
        for d in paced(deliveries, realtime_speed, start_ms):
            producer.send(topic, key=d.key, value=d.value).add_errback(failures.append)
            sent += 1  # (linger_ms bounds the delay of a real-time trickle)
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {sent} messages were not produced; first error: "
                           f"{failures[0]!r}")
    return sent
