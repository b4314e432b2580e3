"""Scheduled reports fire once per period across restarts of `callkpi serve`: real serve
processes (two at once after the restart), a real Redis, a one-minute period, and a real HTTP
webhook receiver whose first answer is a 500 (the delivery is retried, never lost or doubled)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.cli.embedded import free_port
from tests.harness import wait_until
from tests.processes import running
from tests.reports_data import ADMIN, CONFIG, fed_store

pytestmark = pytest.mark.integration


class Receiver:
    """A chat channel's incoming webhook: records every POST; answers 500 to the very first."""

    def __init__(self) -> None:
        self.posts: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    status = 500 if not outer.posts else 200
                    outer.posts.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> dict[str, int]:
        """label → deliveries answered 200."""
        with self.lock:
            out: dict[str, int] = {}
            for status, body in self.posts:
                if status == 200:
                    out[body["label"]] = out.get(body["label"], 0) + 1
            return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("minutely-*.md")) if directory.exists() else []


def test_a_scheduled_report_fires_once_per_period_across_restarts(
        request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver) -> None:
    out = tmp_path / "reports"
    config = tmp_path / "callkpi.toml"
    config.write_text(CONFIG + f"""
[[reports]]
name = "minutely"
period = "minute"
scopes = ["center"]
format = "md"
directory = "{out}"
webhook = "{receiver.url}"
check_seconds = 0.5
""")
    serve = [sys.executable, "-m", "stream.cli.main", "serve"]
    with fed_store(tmp_path) as f:
        def env(port: int) -> dict[str, str]:
            return {"CALLKPI_REDIS_URL": f.url, "CALLKPI_CONFIG": str(config), "CALLKPI_HTTP_PORT": str(port)}
        port = free_port()
        with running(request.node, "serve-1", serve, tmp_path, port=port, env=env(port), timeout=120):
            wait_until(lambda: len(files(out)) >= 1, 120, lambda: f"no report in {out}")
        first = files(out)
        assert len(first) == 1
        # the restart (two processes at once): the finished minute is not produced again, the next one once
        p2, p3 = free_port(), free_port()
        with running(request.node, "serve-2", serve, tmp_path, port=p2, env=env(p2), timeout=120), \
                running(request.node, "serve-3", serve, tmp_path, port=p3, env=env(p3), timeout=120):
            wait_until(lambda: len(files(out)) >= len(first) + 1, 150, lambda: f"no new report: {files(out)}")
            labels = [n.removeprefix("minutely-").removesuffix(".md") for n in files(out)]
            wait_until(lambda: set(receiver.delivered()) >= set(labels), 60,
                       lambda: f"webhook deliveries {receiver.posts} for {labels}")
            time.sleep(2)  # any second production or delivery would have happened by now
            labels = [n.removeprefix("minutely-").removesuffix(".md") for n in files(out)]
            delivered = receiver.delivered()
            status = [json.loads(s) for s in (httpx_get(p2, "/api/v1/reports/scheduled"),
                                              httpx_get(p3, "/api/v1/reports/scheduled"))]
        markers = redis.Redis.from_url(f.url, decode_responses=True)
        done = {k.rsplit(":", 1)[1]: markers.get(k) for k in markers.scan_iter("ck:report:minutely:*")}
    produced = [n for n in labels if n]
    assert produced == sorted(set(produced))
    for label in produced:
        assert delivered.get(label, 0) <= 1, receiver.posts  # never twice
    assert all(delivered.get(label) == 1 for label in produced[:-1]), (receiver.posts, produced)
    assert receiver.posts[0][0] == 500 and receiver.posts[1][1]["label"] == receiver.posts[0][1]["label"]
    first_post = receiver.posts[1][1]
    assert first_post["file"].endswith(first[0]) and "Call center report" in first_post["text"]
    assert (out / first[0]).read_text().startswith("# Call center report — minute ")
    assert all(str(done[label]).startswith("done:") for label in produced), done
    # the two processes after the restart split the periods between them: one produced each
    counts = [s["counts"].get("produced", 0) for s in status]
    assert sum(counts) == len(produced) - 1


def httpx_get(port: int, path: str) -> str:
    import httpx
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {ADMIN}"},
                     timeout=60).text


def test_a_failing_webhook_is_retried_with_backoff_then_given_up_and_counted(tmp_path: Path) -> None:
    """A receiver that always answers 500: attempts 1, 2, 4, 8, 16 s apart (a test clock), then
    given up and counted; the report itself is produced once and the next period too."""
    import asyncio

    from aiohttp import web

    from stream.cli.commands import build_api
    from stream.kpi.config_file import ReportSchedule
    from stream.readers.reports.schedule import WEBHOOK_ATTEMPTS, Scheduler
    from stream.settings import Settings

    attempts: list[float] = []
    clock = [1_800_000_000.0]

    async def main() -> tuple[Scheduler, list[Path | None]]:
        async def hook(request: web.Request) -> web.Response:
            attempts.append(clock[0])
            return web.Response(status=500)
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        config = tmp_path / "callkpi.toml"
        config.write_text(CONFIG)
        ctx = build_api(Settings(redis_url=f.url, config=str(config)))
        ctx.clock = lambda: clock[0]
        schedule = ReportSchedule(name="daily", period="day", directory=str(tmp_path / "out"),
                                  format="csv", webhook=f"http://127.0.0.1:{port}/hook")
        scheduler = Scheduler(ctx, (schedule,))
        produced = []
        try:
            for _ in range(40):  # checks 1 s apart on the test clock
                produced.append(await scheduler.check(schedule))
                await asyncio.sleep(0.05)  # the delivery task runs
                clock[0] += 1
        finally:
            await scheduler.close()
            await ctx.store.close()
            await runner.cleanup()
        return scheduler, produced

    with fed_store(tmp_path) as f:
        scheduler, produced = asyncio.run(main())
    assert len([p for p in produced if p is not None]) == 1  # one day, produced once
    assert len(attempts) == WEBHOOK_ATTEMPTS
    gaps = [round(b - a) for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [1, 2, 4, 8, 16]
    assert scheduler.counts["webhook_failed"] == 1 and scheduler.counts["webhook_retries"] == WEBHOOK_ATTEMPTS - 1
    assert scheduler.counts["produced"] == 1
