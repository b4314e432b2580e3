"""Fixtures of the wallboard browser tests: one fed pipeline and one Chromium per module, a fresh
tab per test. Every tab's last state is kept as a screenshot in test-artifacts/ (gitignored), and a
tab whose own scripts threw or logged an error fails its test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Fed, start_fed_pipeline
from tests.browser.cdp import Browser, Page
from tests.processes import lifetime, log_tail

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    """500 agents a quarter of an hour into their shift: the size the issue asks the grid to take."""
    pipeline = start_fed_pipeline(tmp_path_factory.mktemp("wallboard"), agents=500, minutes=15)
    with lifetime(request.node, "pipeline", pipeline.stop, pipeline.svc.logs):
        yield pipeline


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    with lifetime(request.node, "chromium", b.close, lambda: log_tail(b.log_path)):
        yield b


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    p = browser.new_page()
    try:
        yield p
        errors = p.log.script_errors()
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            p.screenshot(ARTIFACTS / "browser" / f"{name}.png")
        finally:
            p.close()
    assert not errors, f"the wallboard's scripts reported errors: {errors}"
