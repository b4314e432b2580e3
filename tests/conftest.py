"""Shared test fixtures: processes started for a test are stopped after it, and their logs are
shown under its failure (tests/processes.py)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from stream.cli.embedded import Managed, free_port, start_redis
from stream.native import StaleNativeBuild, require_fresh
from tests.harness import Service
from tests.processes import StartProcess, logs_for, running, running_service


def pytest_configure(config: pytest.Config) -> None:
    """A stale native build (a compiled module older than its `.py`) would test the old code:
    stop the session before collecting, with the module and the fix (stream/native.py)."""
    try:
        require_fresh()
    except StaleNativeBuild as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                             pytest.TestReport]:
    report = yield
    if report.failed:
        for title, text in logs_for(item):
            report.sections.append((f"log of {title}", text))
    return report


@pytest.fixture
def start_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartProcess]:
    """`start_process(name, argv, port=..., ready=..., env=...)`: a process for this test (see
    `tests.processes.running`), stopped after it; its log in tmp_path/<name>.log."""
    with ExitStack() as stack:
        def start(name: str, argv: list[str], **kwargs: Any) -> Managed:
            return stack.enter_context(running(request.node, name, argv, tmp_path, **kwargs))

        yield start


@pytest.fixture(scope="module")
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A module's pipeline: broker, Redis and topics (start workers and `serve` on it as needed);
    a module sets SERVICE_ENV for extra CALLKPI_* variables."""
    env = getattr(request.module, "SERVICE_ENV", None)
    with running_service(request.node, tmp_path_factory.mktemp("service"), env) as svc:
        yield svc


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty redis-server of the module's own, on a free port."""
    server = start_redis(free_port(), tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()
