"""Tripwires on the upstream internals callkpi depends on: an upgrade fails here, loudly, naming
the file that forks or reads them, instead of somewhere deep in a worker at run time.

* `stream/processing/fetch.py` replaces Faust's private `Consumer._drain_messages` (a copy with
  one hand-off per fetch), overrides `_new_consumer_thread` and `_create_worker_consumer`, and
  sets aiokafka's private `_fetch_max_wait_ms`.
* `stream/readers/exporter.py` builds on prometheus-client's metric families.

When a test here fails after an upgrade: diff the new upstream source against the fork, port the
change, then record the new version and hash below.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path

import aiokafka
import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

REPO = Path(__file__).resolve().parents[1]

#: The versions the fork was made from and measured with (pinned in pyproject.toml).
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

#: sha256 of `inspect.getsource(...)` of each upstream method stream/processing/fetch.py replaces
#: or overrides, at the pinned versions.
UPSTREAM_SOURCES = {
    "faust.transport.consumer.Consumer._drain_messages":
        (Consumer._drain_messages, "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"),
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer":
        (faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer,
         "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7"),
    # fetch.py extends it: after Faust's seek to the committed offsets, the worker seeks further
    # back where Redis is behind; it relies on perform_seek filling `_committed_offset`
    "faust.transport.consumer.Consumer.perform_seek":
        (Consumer.perform_seek, "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6"),
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread":
        (faust_aiokafka.Consumer._new_consumer_thread,
         "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9"),
}


@pytest.mark.parametrize("distribution", sorted(PINNED))
def test_the_installed_version_is_the_one_the_fork_was_made_from(distribution):
    installed = importlib.metadata.version(distribution)
    assert installed == PINNED[distribution], (
        f"{distribution} {installed} is installed, stream/processing/fetch.py forks {PINNED[distribution]}: "
        "re-diff the fork against the new source, then update PINNED and UPSTREAM_SOURCES here")


def test_pyproject_pins_the_same_versions():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = dict(m.groups() for d in deps if (m := re.fullmatch(r"([\w.-]+)==([\w.!+-]+)", d)))
    assert {name: pins.get(name) for name in PINNED} == PINNED


@pytest.mark.parametrize("qualname", sorted(UPSTREAM_SOURCES))
def test_the_upstream_source_the_fork_replaces_is_unchanged(qualname):
    method, recorded = UPSTREAM_SOURCES[qualname]
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()
    assert digest == recorded, (
        f"{qualname} changed upstream (sha256 {digest}): port the change to stream/processing/fetch.py, "
        "then record the new hash")


def test_the_private_attributes_the_fork_uses_still_exist():
    assert "self._read_offset" in inspect.getsource(Consumer.__init__), "fetch.py reads Consumer._read_offset"
    assert "self._committed_offset" in inspect.getsource(Consumer.__init__), \
        "app.py reads Consumer._committed_offset after perform_seek"
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__), \
        "fetch.py sets AIOKafkaConsumer._fetch_max_wait_ms"


def test_the_exporter_subclasses_no_internal_prometheus_client_class():
    """prometheus-client documents `Metric` as "intended only for internal use by the
    instrumentation client" (custom collectors use the *MetricFamily classes)."""
    from prometheus_client.metrics_core import Metric

    from stream.readers import exporter

    subclasses = [name for name, obj in vars(exporter).items()
                  if inspect.isclass(obj) and obj.__module__ == exporter.__name__ and Metric in obj.__bases__]
    assert subclasses == [], "subclass a documented family (e.g. GaugeMetricFamily) instead"
