"""The API's error paths in process (aiohttp's test client over a real redis-server): every
mistake in a scope, window or range is a 400 with a reason on each route that takes them, an
unknown route is a 404, and a store that does not answer is a 503 with Retry-After (never a 500
traceback)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.cli.commands import build_api
from stream.cli.embedded import free_port
from stream.readers.service import create_service_app
from stream.settings import Settings

pytestmark = pytest.mark.integration
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}

BAD_SCOPES = ["nowhere", "campaign:", "planet:mars", ":x"]
BAD_WINDOWS = [{"window": "2h"}, {"window": "forever"}, {"window": "15M"}, {"window": ""}]
BAD_RANGES = [
    {"window": "15m", **RANGE},                                        # both
    {"from": RANGE["from"]},                                           # no end
    {"to": RANGE["to"]},                                               # no start
    {"from": "yesterday", "to": "today"},                              # not timestamps
    {"from": "2026-01-01T00:00:30Z", "to": RANGE["to"]},               # not on a minute
    {"from": RANGE["to"], "to": RANGE["from"]},                        # backwards
    {"from": "2000-01-01T00:00:00Z", "to": "2000-01-01T01:00:00Z"},    # no longer kept
]
WINDOWED = ["/api/v1/kpis", "/api/v1/campaigns", "/api/v1/agents"]
SCOPED = ["/api/v1/kpis", "/api/v1/agents", "/api/v1/live"]
CASES: list[tuple[str, dict[str, str]]] = (
    [(path, {"scope": s}) for path in SCOPED for s in BAD_SCOPES]
    + [(path, w) for path in WINDOWED for w in BAD_WINDOWS]
    + [(path, r) for path in WINDOWED for r in BAD_RANGES])

Get = Callable[[str, dict[str, str] | None], Awaitable[tuple[int, dict[str, str], Any]]]


def settings_for(url: str, tmp: Path) -> Settings:
    path = tmp / "callkpi.toml"
    path.write_text("")
    return Settings(redis_url=url, config=str(path))


@contextlib.asynccontextmanager
async def _client(url: str, tmp: Path) -> AsyncIterator[Get]:
    client = TestClient(TestServer(create_service_app(build_api(settings_for(url, tmp))), host="127.0.0.1"))
    await client.start_server()

    async def get(path: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        async with client.get(path, params=params) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, dict(r.headers), body
    try:
        yield get
    finally:
        await client.close()


def ask(url: str, tmp: Path, requests: Sequence[tuple[str, dict[str, str] | None]]
        ) -> list[tuple[int, dict[str, str], Any]]:
    """The answers to `requests`, from one in-process server on `url` (one event loop)."""
    async def main() -> list[tuple[int, dict[str, str], Any]]:
        async with _client(url, tmp) as get:
            return [await get(path, params) for path, params in requests]
    return asyncio.run(main())


def test_every_bad_scope_window_and_range_is_a_400_with_a_reason(redis_url: str, tmp_path: Path) -> None:
    answers = ask(redis_url, tmp_path, CASES)
    wrong = [(path, params, status, body) for (path, params), (status, _, body) in zip(CASES, answers, strict=True)
             if status != 400 or not isinstance(body, dict) or not body.get("error")]
    assert not wrong, wrong[:5]


def test_the_good_requests_beside_them_are_200(redis_url: str, tmp_path: Path) -> None:
    """The 400s above are about the mistakes, not the routes: the same routes answer."""
    answers = ask(redis_url, tmp_path, [(p, None) for p in (*WINDOWED, "/api/v1/live")]
                  + [("/api/v1/kpis", {"scope": "campaign:c1", "window": "1h"})])
    assert [status for status, _, _ in answers] == [200] * 5, answers


def test_unknown_routes_are_404(redis_url: str, tmp_path: Path) -> None:
    paths = ["/api/v1/nope", "/api/v2/kpis", "/api/v1/kpis/extra", "/static/nope.js", "/nothing-here"]
    answers = ask(redis_url, tmp_path, [(p, None) for p in paths])
    assert [status for status, _, _ in answers] == [404] * len(paths), answers


def test_a_store_that_does_not_answer_is_a_503_with_retry_after(tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    paths = ["/api/v1/kpis", "/api/v1/live", "/api/v1/campaigns", "/api/v1/agents", "/api/v1/scopes"]
    answers = ask(down, tmp_path, [(p, None) for p in paths] + [("/api/v1/health", None)])
    for path, (status, headers, body) in zip(paths, answers, strict=False):
        assert status == 503 and int(headers.get("Retry-After", 0)) > 0, (path, status, headers, body)
        assert "did not answer" in body["error"], (path, body)
    assert answers[-1][0] == 503 and answers[-1][2] == {"redis": False}
