"""Reports on a real Redis through the real HTTP app: every number of a report is the API's own
answer for the same range (KPIs, the previous period, rankings, the hourly profile, the series,
experiments), every format carries them, the CLI writes the same report, and a restricted token
sees only its scopes."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from stream.cli.commands import build_api
from stream.readers.reports import RANK_KPIS, RANK_LIMIT
from stream.readers.service import create_service_app
from stream.settings import Settings
from tests.reports_data import ADMIN, CONFIG, OWN, SOLAR, Fed, fed_store

pytestmark = pytest.mark.integration
Answer = tuple[int, Any]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fed, Path]]:
    work = tmp_path_factory.mktemp("reports")
    config = work / "callkpi.toml"
    config.write_text(CONFIG)
    with fed_store(work) as f:
        yield f, config


def fetch(fed: tuple[Fed, Path], requests: list[tuple[str, str]]) -> list[Answer]:
    """(status, JSON or bytes) of each (token, path) against one in-process `serve`."""
    f, config = fed
    settings = Settings(redis_url=f.url, config=str(config))

    async def main() -> list[Answer]:
        from aiohttp.test_utils import TestServer
        server = TestServer(create_service_app(build_api(settings)), host="127.0.0.1")
        await server.start_server()
        out: list[Answer] = []
        try:
            async with aiohttp.ClientSession() as session:
                for token, path in requests:
                    async with session.get(str(server.make_url(path)),
                                           headers={"Authorization": f"Bearer {token}"}) as r:
                        body = await r.read()
                        is_json = r.content_type == "application/json"
                        out.append((r.status, await r.json() if is_json else body))
        finally:
            await server.close()
        return out
    return asyncio.run(main())


def q(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}"


def test_report_numbers_equal_the_apis(fed: tuple[Fed, Path]) -> None:
    f, _ = fed
    day = f.yesterday.isoformat()
    [(status, report)] = fetch(fed, [(ADMIN, q("/api/v1/report", period="day", date=day))])
    assert status == 200, report
    rng = {"from": report["from"], "to": report["to"]}
    prev = report["previous"]
    answers = fetch(fed, [
        (ADMIN, q("/api/v1/kpis", scope="center", **rng)),
        (ADMIN, q("/api/v1/kpis", scope="center", **prev)),
        (ADMIN, q("/api/v1/breakdown", by="agent", kpis=",".join(RANK_KPIS), sort="conversions:desc",
                  limit=str(RANK_LIMIT), **rng)),
        (ADMIN, q("/api/v1/breakdown", by="team", kpis=",".join(RANK_KPIS), sort="conversions:desc",
                  limit=str(RANK_LIMIT), **rng)),
        (ADMIN, q("/api/v1/breakdown", by="hour_of_day", **rng)),
        (ADMIN, q("/api/v1/series", scope="center", step="1h", compare="previous_period",
                  kpis="connect_rate,conversion_rate,aht_seconds", **rng)),
        (ADMIN, q("/api/v1/experiments", **rng)),
    ])
    assert all(s == 200 for s, _ in answers), answers
    kpis, before, agents, teams, hours, series, experiments = (b for _, b in answers)
    center = report["scopes"][0]
    assert center["scope"] == "center" and center["complete"] is True
    assert kpis["kpis"]["attempts_completed"] > 100  # a real day, not an empty one
    assert center["kpis"] == kpis["kpis"]
    assert center["previous"] == before["kpis"]
    assert center["change"]["attempts_completed"] == (kpis["kpis"]["attempts_completed"]
                                                      - before["kpis"]["attempts_completed"])
    assert report["agents"]["rows"] == agents["rows"] and len(agents["rows"]) == 8
    assert report["teams"]["rows"] == teams["rows"]
    assert sorted(report["hours"], key=lambda c: c["hour"]) == sorted(hours["cells"], key=lambda c: c["hour"])
    assert sum(c["attempts"] for c in report["hours"]) == kpis["kpis"]["attempts_completed"]
    assert report["series"]["points"] == series["points"] and len(series["points"]) == 24
    assert report["experiments"] == experiments["experiments"]
    assert [v["trials"] for v in report["experiments"][0]["variants"]] != [0, 0]
    connect = next(t for t in report["targets"] if t["name"] == "connect")
    assert connect["value"] == kpis["kpis"]["connect_rate"] and connect["status"] in ("ok", "warn", "critical")
    assert {t["scope"] for t in report["targets"] if t["name"] == "campaign conversion"} >= {f"campaign:{OWN}"}
    assert {c["campaign_id"] for c in report["compliance"]} >= {OWN}


def test_every_format_carries_the_reports_numbers(fed: tuple[Fed, Path]) -> None:
    from openpyxl import load_workbook

    f, _ = fed
    day = f.yesterday.isoformat()
    base = {"period": "day", "date": day}
    (s0, report), (s1, csv_body), (s2, xlsx), (s3, md), (s4, page) = fetch(fed, [
        (ADMIN, q("/api/v1/report", **base)), (ADMIN, q("/api/v1/report", format="csv", **base)),
        (ADMIN, q("/api/v1/report", format="xlsx", **base)), (ADMIN, q("/api/v1/report", format="md", **base)),
        (ADMIN, q("/api/v1/report", format="html", **base))])
    assert (s0, s1, s2, s3, s4) == (200,) * 5
    attempts = report["scopes"][0]["kpis"]["attempts_completed"]
    rows = list(csv.reader(io.StringIO(csv_body.decode())))
    assert ["KPIs center", "attempts_completed", str(attempts),
            str(report["scopes"][0]["previous"]["attempts_completed"]),
            str(report["scopes"][0]["change"]["attempts_completed"])] in rows
    sheet = load_workbook(io.BytesIO(xlsx))["KPIs center"]
    values = {r[0]: r[1] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["attempts_completed"] == attempts
    assert values["connect_rate"] == pytest.approx(report["scopes"][0]["kpis"]["connect_rate"], rel=1e-12)
    assert f"| attempts_completed | {attempts:,} |" in md.decode()
    html = page.decode()
    assert "<script src" not in html and "http://" not in html.split("<script>")[0].split("</title>")[1]
    assert "uPlot" in html and report["title"] in html


def test_the_cli_writes_the_same_report(fed: tuple[Fed, Path], tmp_path: Path) -> None:
    f, config = fed
    day = f.yesterday.isoformat()
    out = tmp_path / "day.md"
    env = {**os.environ, "CALLKPI_REDIS_URL": f.url, "CALLKPI_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "stream.cli.main", "report", "--period", "day", "--date", day,
                           "--format", "md", "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    [(status, md)] = fetch(fed, [(ADMIN, q("/api/v1/report", period="day", date=day, format="md"))])
    assert status == 200 and out.read_bytes() == md
    bad = subprocess.run([sys.executable, "-m", "stream.cli.main", "report", "--period", "day",
                          "--date", "yesterday"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr


def test_weeks_and_months_and_bad_requests(fed: tuple[Fed, Path]) -> None:
    f, _ = fed
    day = f.yesterday.isoformat()
    (s1, week), (s2, month), (s3, year), (s4, bad_date), (s5, future) = fetch(fed, [
        (ADMIN, q("/api/v1/report", period="week", date=day)),
        (ADMIN, q("/api/v1/report", period="month", date=day)),
        (ADMIN, q("/api/v1/report", period="year")),
        (ADMIN, q("/api/v1/report", period="day", date="01/12/2026")),
        (ADMIN, q("/api/v1/report", period="day", date="2999-01-01"))])
    assert (s1, s2) == (200, 200), (week, month)
    assert week["series"]["step"] == "1d" and len(week["series"]["points"]) <= 7
    assert week["label"].count("-W") == 1 and month["label"] == day[:7]
    assert week["scopes"][0]["kpis"]["attempts_completed"] >= 0
    assert (s3, s4, s5) == (400, 400, 400)
    assert "period" in year["error"] and "YYYY-MM-DD" in bad_date["error"]


def admin_range(fed: tuple[Fed, Path]) -> tuple[str, str]:
    [(_, report)] = fetch(fed, [(ADMIN, q("/api/v1/report", period="day", date=fed[0].yesterday.isoformat()))])
    return report["from"], report["to"]


def test_a_restricted_token_sees_only_its_scopes(fed: tuple[Fed, Path]) -> None:
    f, _ = fed
    day = f.yesterday.isoformat()
    (s1, center), (s2, own), (s3, other), (s4, page), (s5, admin), (s6, ranking) = fetch(fed, [
        (SOLAR, q("/api/v1/report", period="day", date=day)),
        (SOLAR, q("/api/v1/report", period="day", date=day, scope=f"campaign:{OWN}")),
        (SOLAR, q("/api/v1/report", period="day", date=day, scope="campaign:insure-renew")),
        (SOLAR, "/reports"),
        (ADMIN, q("/api/v1/report", period="day", date=day)),
        (SOLAR, q("/api/v1/breakdown", by="agent", kpis=",".join(RANK_KPIS), sort="conversions:desc",
                  limit=str(RANK_LIMIT), **{"from": admin_range(fed)[0], "to": admin_range(fed)[1]}))])
    assert (s1, s2, s3, s4, s5, s6) == (403, 200, 403, 200, 200, 200), (center, other)
    assert own["agents"]["rows"] == ranking["rows"]  # what the API shows this token
    assert [b["scope"] for b in own["scopes"]] == [f"campaign:{OWN}"]
    assert {c["campaign_id"] for c in own["compliance"]} == {OWN}
    assert {t["scope"] for t in own["targets"]} == {f"campaign:{OWN}"}
    assert own["experiments"] == []  # the experiment's variants are not the token's scopes
    assert own["teams"]["rows"] == []  # teams are not campaign:solar-q4's scopes
    every_agent = {r["id"] for r in admin["agents"]["rows"]}
    assert {r["id"] for r in own["agents"]["rows"]} < every_agent
    text = str(own)
    assert "insure-renew" not in text


def test_an_old_period_is_answered_with_what_is_kept(fed: tuple[Fed, Path]) -> None:
    """Hour buckets are kept 35 days, day buckets 400: a month two months back has its KPIs and a
    daily trend but no hourly profile, and says so; a year back, no previous month either."""
    from datetime import datetime, timedelta

    from stream.kpi.windows import DAY_READABLE_MS
    from tests.reports_data import ZONE

    f, _ = fed
    two_months = (f.yesterday - timedelta(days=60)).isoformat()
    # the oldest month still wholly kept: its start after the day buckets' cutoff, its previous
    # month's before (a fixed "390 days back" fell out of the retention early in a month)
    cutoff = datetime.fromtimestamp((f.now_ms - DAY_READABLE_MS) / 1000, ZONE).date()
    year = (cutoff.replace(day=1) + timedelta(days=32)).replace(day=1).isoformat()
    (s1, old), (s2, older), (s3, md) = fetch(fed, [
        (ADMIN, q("/api/v1/report", period="month", date=two_months)),
        (ADMIN, q("/api/v1/report", period="month", date=year)),
        (ADMIN, q("/api/v1/report", period="month", date=two_months, format="md"))])
    assert (s1, s2, s3) == (200, 200, 200), (old, older)
    assert old["hours"] == [] and "hour buckets" in old["notes"]["hours"]
    assert old["series"]["step"] == "1d" and len(old["series"]["points"]) >= 28
    assert old["scopes"][0]["previous"] and "previous" not in old["notes"]
    assert older["scopes"][0]["previous"] == {} and "400" in older["notes"]["previous"]
    assert "Note: no hourly profile" in md.decode()
