"""Bench instrumentation only: with this directory first on PYTHONPATH and
CALLKPI_BENCH_PREPARES=<dir>, every `Pipeline.prepare` call is counted, per process, into
<dir>/<pid> (`bench/scaleout.py --count-prepares` sums them over its measured stretch). It works
on any checkout, so the preparations per committed batch of two checkouts compare; the pipeline
counters only count what the code under test knows about."""

from __future__ import annotations

import os

_dir = os.environ.get("CALLKPI_BENCH_PREPARES")
if _dir:
    from typing import Any

    from stream.processing import pipeline as _pipeline

    _prepare = _pipeline.Pipeline.prepare
    _calls = {"n": 0}
    _into: str = _dir

    async def _counted(self: Any, job: Any, ahead: Any = None) -> Any:
        _calls["n"] += 1
        with open(os.path.join(_into, str(os.getpid())), "w") as f:
            f.write(str(_calls["n"]))
        return await _prepare(self, job, ahead)

    _pipeline.Pipeline.prepare = _counted  # type: ignore[method-assign]
