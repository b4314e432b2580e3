"""The shared process fixtures (tests/conftest.py): a failing test shows the logs of what it started,
and what it started is stopped whatever the outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Service

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

TEST = '''
import sys, time
from pathlib import Path

def test_fails_after_starting_a_process(start_process, tmp_path):
    p = start_process("talker", [sys.executable, "-c",
                      "import time; print('hello from the process', flush=True); time.sleep(60)"],
                      ready=lambda: "hello" in (tmp_path / "talker.log").read_text())
    Path("pid").write_text(str(p.proc.pid))
    assert False, "on purpose"

def test_passes_quietly(start_process):
    start_process("quiet", [sys.executable, "-c", "print('not shown'); import time; time.sleep(60)"])
'''


def test_a_failure_shows_the_processes_log_and_every_process_is_stopped(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_it=TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "log of talker" in out and "hello from the process" in out
    assert "not shown" not in out, "a passing test's logs stay out of the report"
    pid = int((pytester.path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.integration
def test_the_service_fixture_is_a_pipeline_to_start_processes_on(service: Service) -> None:
    """Broker, Redis and topics, for a module's tests to add workers and `serve` to."""
    assert service.pipeline_counter("consumed") == 0
    assert "redis" in service.logs()
