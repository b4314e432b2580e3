"""The pipeline process as the worker runs it: spawned, handed its settings and thresholds by
pickle, fed a batch as columns, and answering once the batch is committed to a real Redis.

`tests/integration/test_native_build.py` runs this file against the native build as well:
what crosses the process boundary must survive pickling compiled too (a frozen dataclass of a
compiled module did not, and the worker could not start its pipeline process)."""

from __future__ import annotations

import asyncio
import pickle

import redis

from stream.kpi.contributions import Thresholds
from stream.processing.offload import PipelineProcess
from stream.processing.pipeline import RawMessage
from stream.settings import Settings
from stream.sim import FaultConfig, SimConfig, generate
from stream.store.layout import Layout


def test_what_crosses_to_the_pipeline_process_pickles() -> None:
    for value in (Thresholds(), Thresholds(connect_threshold_ms=5_000, timezone="Europe/Paris"),
                  Layout("ck:"), Settings.from_env({})):
        assert pickle.loads(pickle.dumps(value)) == value


def test_the_pipeline_process_commits_a_batch(redis_url: str) -> None:
    settings = Settings.from_env({}, redis_url=redis_url, key_prefix="offload:")
    now = 1_796_190_000_000
    sim = SimConfig(seed=3, agents=5, hours=0.2, start_ms=now - 720_000, faults=FaultConfig())
    batch = [RawMessage("dialer.events", 0, i, d.value, now) for i, d in enumerate(generate(sim))]
    failures: list[str] = []

    async def run() -> dict[str, object]:
        child = PipelineProcess(settings, Thresholds(), "offload-test", failures.append)
        done = await child.submit(batch, {}, {"dialer.events:0": len(batch)})
        return dict(await asyncio.wait_for(done, timeout=120))

    excluded = asyncio.run(run())
    assert failures == [] and excluded == {}
    offsets = redis.Redis.from_url(redis_url, decode_responses=True).hgetall("offload:offsets")
    assert offsets.get("dialer.events:0") == str(len(batch) - 1), offsets
