"""The README's demo command, run as a new user would: numbers appear, Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stream.cli.embedded import free_port
from tests.harness import wait_until

pytestmark = pytest.mark.integration


def test_demo_shows_live_numbers_and_stops_cleanly(tmp_path: Path) -> None:
    http, broker, redis_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli.main", "demo", "--http-port", str(http),
         "--broker-port", str(broker), "--redis-port", str(redis_port),
         "--workdir", str(tmp_path), "--agents", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ), text=True)
    try:
        url = f"http://127.0.0.1:{http}"

        def numbers() -> bool:
            try:
                k = httpx.get(f"{url}/api/v1/kpis", params={"window": "15m"}, timeout=5).json()["kpis"]
            except (httpx.HTTPError, KeyError, ValueError):
                return False
            return k["dialed"] > 0 and k["staffed_seconds"] > 0
        wait_until(numbers, 60, lambda: "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in tmp_path.glob("*.log")))
        def dialed_today() -> int:
            return httpx.get(f"{url}/api/v1/kpis", params={"window": "today"}).json()["kpis"]["dialed"]
        first = dialed_today()
        wait_until(lambda: dialed_today() > first, 30, "no live traffic after the backfill")
        live = httpx.get(f"{url}/api/v1/live").json()
        assert sum(live["agents"]["by_state"].values()) > 0
        assert httpx.get(f"{url}/").status_code == 200
        assert "callcenter_dialed_total" in httpx.get(f"{url}/metrics").text
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{http}/" in out
    time.sleep(0.5)
    for port in (http, broker, redis_port):  # every child is gone: the ports are free again
        import socket
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
