"""The reports in headless Chromium: the self-contained HTML report opened from a file (offline:
nothing fetched) with every chart drawn, and the /reports page of a real `callkpi serve` showing
the API's numbers, its charts drawn, its downloads working, for a restricted token only its scopes.
The tab fixture (conftest.py) fails a test whose page threw or logged a console error."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from stream.cli.embedded import free_port
from tests.browser.cdp import Page
from tests.processes import running
from tests.reports_data import ADMIN, CONFIG, OWN, SOLAR, fed_store

pytestmark = pytest.mark.integration

CHARTS_DRAWN = """(() => {
  const charts = Array.from(document.querySelectorAll('.chart'));
  const drawn = charts.filter((c) => c.dataset.drawn === '1' && c.querySelector('canvas')
    && c.querySelector('canvas').width > 0);
  return charts.length > 0 && drawn.length === charts.length ? charts.length : 0;
})()"""


class Served(NamedTuple):
    base: str
    day: str
    workdir: Path


@pytest.fixture(scope="module")
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Overrides the wallboard's 500-agent pipeline: two fed days and one real serve."""
    work = tmp_path_factory.mktemp("reports-browser")
    config = work / "callkpi.toml"
    config.write_text(CONFIG)
    port = free_port()
    with fed_store(work) as f:
        env = {"CALLKPI_REDIS_URL": f.url, "CALLKPI_CONFIG": str(config), "CALLKPI_HTTP_PORT": str(port)}
        with running(request.node, "serve", [sys.executable, "-m", "stream.cli.main", "serve"], work,
                     port=port, env=env, timeout=120):
            yield Served(f"http://127.0.0.1:{port}", f.yesterday.isoformat(), work)


def api(served: Served, path: str, token: str = ADMIN, **params: str) -> Any:
    r = httpx.get(served.base + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json() if r.headers["content-type"].startswith("application/json") else r.content


def test_the_html_report_opens_offline_with_every_chart_drawn(fed: Served, page: Page) -> None:
    body = api(fed, "/api/v1/report", period="day", date=fed.day, format="html")
    path = fed.workdir / "report.html"
    path.write_bytes(body)
    page.navigate(path.as_uri())
    drawn = page.wait_for(CHARTS_DRAWN, 60, "every chart of the report drawn")
    assert drawn == 4  # three KPI trends and the best hours
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0  # nothing fetched
    assert page.evaluate("document.querySelectorAll('.chart canvas').length") == 4
    report = api(fed, "/api/v1/report", period="day", date=fed.day)
    attempts = report["scopes"][0]["kpis"]["attempts_completed"]
    assert f"{attempts:,}" in page.evaluate("document.body.innerText")


def read_page(page: Page) -> dict[str, Any]:
    return page.evaluate("""(() => ({
      comparison: Object.fromEntries(Array.from(document.querySelectorAll('#comparison tbody tr')).map(
        (tr) => [tr.cells[0].textContent, Array.from(tr.cells).slice(1).map((c) => c.textContent)])),
      agents: Array.from(document.querySelectorAll('#agents tbody tr')).filter((tr) => tr.cells.length > 1).map((tr) => tr.cells[1].textContent),
      experiments: Array.from(document.querySelectorAll('#experiments tbody tr')).filter((tr) => tr.cells.length > 1).length,
      heat: document.querySelectorAll('#heatmap td').length,
      scopes: Array.from(document.querySelectorAll('#scope option')).map((o) => o.value),
      csv: document.getElementById('csv').href,
      title: document.getElementById('title').textContent,
    }))()""")


def test_the_reports_page_shows_the_apis_report(fed: Served, page: Page) -> None:
    from stream.readers.reports.render import fmt

    page.navigate(f"{fed.base}/reports?token={ADMIN}&period=day&date={fed.day}")
    page.wait_for("document.body.dataset.ready === '1'", 90, "the report shown")
    page.wait_for(CHARTS_DRAWN, 30, "the trend and best-hour charts drawn")
    shown = read_page(page)
    report = api(fed, "/api/v1/report", period="day", date=fed.day, scope="center")
    center = report["scopes"][0]
    assert shown["title"] == report["title"]
    for k in ("attempts_completed", "connected", "conversions"):
        assert shown["comparison"][k][:2] == [f"{center['kpis'][k]:,}", f"{center['previous'][k]:,}"]
    assert shown["comparison"]["connect_rate"][0] == fmt("connect_rate", center["kpis"]["connect_rate"])
    assert shown["agents"] == [r["id"] for r in report["agents"]["rows"]]
    assert shown["experiments"] == 2 and shown["heat"] == 7 * 24
    csv_body = httpx.get(shown["csv"], timeout=120)
    assert csv_body.status_code == 200 and csv_body.headers["content-type"].startswith("text/csv")
    assert f"attempts_completed,{center['kpis']['attempts_completed']}," in csv_body.text
    # any catalog KPI's line chart
    from stream.kpi.catalog import KPI_BY_NAME
    assert page.evaluate("document.getElementById('kpi').options.length") == len(KPI_BY_NAME)
    page.evaluate("(() => { const s = document.getElementById('kpi'); s.value = 'aht_seconds';"
                  " document.getElementById('chart-series').dataset.drawn = '';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.wait_for("document.getElementById('chart-series').dataset.drawn === '1'", 30, "the AHT chart")
    assert "aht_seconds" in page.evaluate("document.querySelector('#chart-series .u-legend').textContent")


def test_a_restricted_token_sees_only_its_scopes_on_the_page(fed: Served, page: Page) -> None:
    page.navigate(f"{fed.base}/reports?token={SOLAR}&period=day&date={fed.day}")
    page.wait_for("document.body.dataset.ready === '1'", 90, "the report shown")
    shown = read_page(page)
    assert shown["scopes"] == [f"campaign:{OWN}"]
    assert shown["experiments"] == 0
    text = page.evaluate("document.body.innerText")
    assert "insure-renew" not in text and "center" not in shown["scopes"]
    assert os.path.basename(shown["csv"]).startswith("report?")


def test_the_wallboard_draws_a_sparkline_under_each_big_number(fed: Served, page: Page) -> None:
    page.navigate(f"{fed.base}/?token={ADMIN}")
    kpis = ("connect_rate", "abandon_rate", "aht_seconds", "conversions", "revenue")
    page.wait_for(f"document.querySelectorAll('.card .spark[data-drawn=\"1\"] canvas').length === {len(kpis)}",
                  60, "a drawn sparkline in every trend card")
    shown = page.evaluate("""Object.fromEntries(Array.from(document.querySelectorAll('.card .spark')).map(
        (el) => [el.dataset.sparkFor, el._spark]))""")
    today = api(fed, "/api/v1/series", scope="center", window="today", step="15m", kpis=",".join(kpis))
    yesterday = api(fed, "/api/v1/series", scope="center", window="yesterday", step="15m", kpis=",".join(kpis))
    assert set(shown) == set(kpis)
    for k in ("connect_rate", "aht_seconds"):  # rates: each slot's own value
        assert [v for _, v in shown[k]["yesterday"]] == [p["kpis"][k] for p in yesterday["points"]]
        assert [v for _, v in shown[k]["today"]] == [p["kpis"][k] for p in today["points"]]
    running_total = 0
    for (_, v), p in zip(shown["conversions"]["yesterday"], yesterday["points"], strict=True):
        running_total += p["kpis"]["conversions"] or 0
        assert v == running_total  # counts run up through the day, like the big number
    assert running_total > 0 and shown["conversions"]["yesterday"][36][0] == 9 * 60  # 09:00 local
