"""Process lifetimes for tests: start, yield, stop, and the logs of what a test started shown under
its failure.

Used by the fixtures in tests/conftest.py and by any package's own fixtures (a module-scoped
fixture passes `request.node`, the module, so every test of the module that fails shows the
logs). The pytest hook that prints the logs lives in tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stream.cli.embedded import Managed, wait_for_port
from tests.harness import Service, make_service

#: `start_process(name, argv, port=..., ready=..., env=...)`, the fixture of tests/conftest.py.
StartProcess = Callable[..., Managed]

#: On a pytest node: title -> a function that reads that process's log (called only on failure).
LOGS = pytest.StashKey[dict[str, Callable[[], str]]]()

LOG_TAIL_CHARS = 4000


def log_tail(path: Path | None, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a log file (or a note that there is none)."""
    if path is None or not path.exists():
        return f"(no log at {path})"
    return path.read_text(encoding="utf-8", errors="replace")[-chars:]


def attach_logs(node: pytest.Item | pytest.Collector, title: str, read: Callable[[], str]) -> None:
    """Show `read()` under every failing test at or below `node`."""
    node.stash.setdefault(LOGS, {})[title] = read


def logs_for(item: pytest.Item) -> list[tuple[str, str]]:
    """(title, text) of every log attached to the item or a node above it."""
    out = []
    for node in item.listchain():
        for title, read in node.stash.get(LOGS, {}).items():
            try:
                text = read()
            except Exception as exc:  # noqa: BLE001 - a log that cannot be read must not hide the failure
                text = f"(could not read the log: {exc!r})"
            out.append((title, text))
    return out


@contextmanager
def lifetime(node: pytest.Item | pytest.Collector, title: str, stop: Callable[[], None],
             logs: Callable[[], str]) -> Iterator[None]:
    """Between start and stop: logs attached to `node`, `stop()` however the block ends."""
    attach_logs(node, title, logs)
    try:
        yield
    finally:
        stop()


@contextmanager
def running(node: pytest.Item | pytest.Collector, name: str, argv: list[str], workdir: Path, *,
            port: int | None = None, ready: Callable[[], bool] | None = None, timeout: float = 30,
            env: dict[str, str] | None = None) -> Iterator[Managed]:
    """A process started for a test: its output in `workdir/<name>.log`, ready when `port` accepts
    connections or `ready()` is true, stopped (terminate, then kill) when the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    managed = Managed(name, proc, port or 0, workdir, log_path)
    with lifetime(node, name, managed.stop, lambda: log_tail(log_path)):
        if port is not None:
            wait_for_port(port, timeout=timeout, proc=proc)
        if ready is not None:
            _wait_ready(managed, ready, timeout)
        yield managed


def _wait_ready(managed: Managed, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if managed.proc.poll() is not None:
            pytest.fail(f"{managed.name} exited with {managed.proc.returncode}:\n{log_tail(managed.log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{managed.name} not ready within {timeout} s:\n{log_tail(managed.log_path)}")
        time.sleep(0.1)


@contextmanager
def running_service(node: pytest.Item | pytest.Collector, workdir: Path,
                    extra_env: dict[str, str] | None = None) -> Iterator[Service]:
    """A pipeline's infrastructure (broker, Redis, topics) for a test, with every process's log
    (workers and `serve` too, once the test starts them) shown under a failure."""
    svc = make_service(workdir, extra_env)
    with lifetime(node, "pipeline", svc.stop, svc.logs):
        yield svc
