"""The background load of `run.py latency`, in a process of its own: publish a pickled list of
(key, value) records at a fixed rate with librdkafka (confluent-kafka, 20 ms linger as a dialer's
producer would), until stdin closes or the list ends; prints how many it sent and over how long.

A thread of the probing process with kafka-python reached only 990-1,650 of 2,000 events/s on a
loaded 2-core machine, and its records waited seconds in the producer's buffer (their Kafka
timestamps, the worker's publish → commit histogram, then measured the generator)."""

from __future__ import annotations

import pickle
import sys
import threading
import time


def main() -> None:
    from confluent_kafka import Producer
    bootstrap, topic, rate, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    with open(path, "rb") as f:
        records: list[tuple[bytes | None, bytes]] = pickle.load(f)
    stop = threading.Event()

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()
    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": 1,
                         "queue.buffering.max.messages": 1_000_000})
    t0, i = time.monotonic(), 0
    while not stop.is_set() and i < len(records):
        key, value = records[i]
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
        i += 1
        if i % 100 == 0:
            producer.poll(0)
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    seconds = time.monotonic() - t0
    producer.flush(30)
    print(f"{i} {seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()
