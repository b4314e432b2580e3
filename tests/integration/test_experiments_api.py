"""Experiments end to end: a simulated day of the `ab_test` scenario (a real effect on
conversion, every delivery fault on) through the real broker, worker, Redis and `callkpi serve`;
the API detects it, its numbers equal the independent reference calculator, and the same day of
the `aa_test` scenario (both variants the same script) is not called a winner.

The seed is 2026, the seed the equivalence test uses, fixed before this test was written; that it
is not a lucky one for the A/A check is what tests/unit/test_experiments.py::
test_a_a_false_positive_rate_over_many_seeds shows (20 consecutive seeds, false positives as
often as α says)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stream.contract import format_ts
from stream.kpi.experiments import compare, wilson_interval
from tests.config_text import api_token, config_text, toml_table
from tests.harness import Service, faulty_stretch, running_service
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
HOUR = 3_600_000
AGENTS, HOURS, SEED = 40, 8.0, 2026
ADMIN, SOLAR, ARMS = "admin-token", "solar-token", "variants-token"


CONFIG = config_text(
    api_token("admin", ADMIN),
    api_token("solar supervisor", SOLAR, scopes=["campaign:solar-q4"]),
    api_token("experiment analyst", ARMS, scopes=["variant:*"]),
    toml_table("experiments", name="script-test", variants=["A", "B"],
               primary_kpi="conversion_rate", minimum_detectable_effect=0.2,
               campaigns=["solar-q4", "insure-renew", "fiber-upgrade", "b2b-leads", "vip-winback"],
               window="24h"),
    *(toml_table("experiments.guardrails", kpi=kpi, direction="lower", tolerance=0.5)
      for kpi in ("complaint_rate", "aht_seconds")))


class Day:
    def __init__(self, svc: Service, ref: Reference, first_hour: int, last_hour: int) -> None:
        self.svc, self.ref, self.first_hour, self.last_hour = svc, ref, first_hour, last_hour
        self.http = httpx.Client(base_url=svc.url, timeout=60,
                                 headers={"Authorization": f"Bearer {ADMIN}"})

    def get(self, path: str, token: str | None = None, status: int = 200,
            query: dict[str, str] | None = None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.get(path, params={**(query or {}), **params}, headers=headers)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture(scope="module", params=["ab_test", "aa_test"])
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    scenario = request.param
    now = int(time.time() * 1000)
    # The same simulated day whatever the clock: it starts on a whole hour, at 09:00 of the
    # center's local time (the model's answer curve follows the local hour), so the seed fixes
    # every count (ids differ by the start, counts do not) and the verdict is the seed's.
    start = (now - int(HOURS * HOUR)) // HOUR * HOUR
    nine = ((9 - start // HOUR % 24) % 24) * 60
    deliveries, _ = faulty_stretch(SEED, AGENTS, HOURS, start, scenario=scenario,
                                   scenario_at=0.0, utc_offset_min=nine)
    workdir = tmp_path_factory.mktemp(scenario)
    config = Path(workdir) / "callkpi.toml"
    config.write_text(CONFIG)
    with running_service(workdir / "run", {"CALLKPI_CONFIG": str(config)}) as svc:
        published_at = svc.feed(deliveries, timeout=600)
        ref = Reference([d.value for d in deliveries], now_ms=published_at)
        first_hour = start
        last_hour = int(time.time() * 1000) // HOUR * HOUR
        d = Day(svc, ref, first_hour, last_hour)
        d.scenario = scenario  # type: ignore[attr-defined]
        yield d
        d.http.close()


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_verdict_over_the_day(day: Day) -> None:
    e = day.get("/api/v1/experiments/script-test")
    assert e["window"] == "24h" and e["started"]
    control, b = e["variants"]
    assert (control["variant"], control["control"], b["variant"]) == ("A", True, "B")
    assert control["trials"] > 1000 and b["trials"] > 1000
    if day.scenario == "ab_test":  # type: ignore[attr-defined]
        assert b["p_value"] < 0.05 and b["lift"] > 0.2, b
        assert b["verdict"] == e["verdict"] == "variant B better"
        assert not any(g["breached"] for g in b["guardrails"]), b["guardrails"]
    else:
        assert b["p_value"] >= 0.05, b
        assert e["verdict"] in ("not enough data", "no difference yet"), e
    assert [g["kpi"] for g in b["guardrails"]] == ["complaint_rate", "aht_seconds"]
    assert day.get("/api/v1/experiments")["experiments"][0]["verdict"] == e["verdict"]


def test_numbers_equal_the_reference_every_hour_and_the_day(day: Day) -> None:
    hours = [(h, h + HOUR) for h in range(day.first_hour, day.last_hour, HOUR)]
    for start, end in [*hours, (day.first_hour, day.last_hour)]:
        expected = day.ref.conversion_arms(["A", "B"], start, end)
        e = day.get("/api/v1/experiments/script-test",
                    query={"from": format_ts(start), "to": format_ts(end)})
        assert (e["from"], e["to"], e["window"]) == (format_ts(start), format_ts(end), None)
        rows = {v["variant"]: v for v in e["variants"]}
        for variant, (s, n) in expected.items():
            assert (rows[variant]["successes"], rows[variant]["trials"]) == (s, n), \
                (variant, format_ts(start))
            ci = wilson_interval(s, n)
            assert rows[variant]["interval"] == (None if ci is None
                                                 else {"low": ci.low, "high": ci.high})
        cmp = compare(expected["A"], expected["B"], 0.2)
        assert _close(rows["B"]["rate"], cmp.rate) and _close(rows["B"]["lift"], cmp.lift)
        assert _close(rows["B"]["p_value"], cmp.p_value) and rows["B"]["test"] == cmp.test
        assert rows["B"]["needed_per_arm"] == cmp.needed_per_arm
        # The guardrails are the variant scopes' KPIs, as /api/v1/kpis and the reference say.
        ref_b = day.ref.kpis("variant:B", start, end, now_ms=end)
        guard = {g["kpi"]: g for g in rows["B"]["guardrails"]}
        assert _close(guard["complaint_rate"]["value"], ref_b["complaint_rate"])
        assert _close(guard["aht_seconds"]["value"], ref_b["aht_seconds"])


def test_access_control(day: Day) -> None:
    # A supervisor of one of the experiment's campaigns does not see it (its calls span five).
    assert day.get("/api/v1/experiments", token=SOLAR)["experiments"] == []
    hidden = day.get("/api/v1/experiments/script-test", token=SOLAR, status=404)["error"]
    unknown = day.get("/api/v1/experiments/nope", token=SOLAR, status=404)["error"]
    assert hidden.replace("script-test", "nope") == unknown  # the same answer
    assert day.get("/api/v1/experiments/script-test", token=ARMS)["name"] == "script-test"
    assert day.http.get("/api/v1/experiments", headers={"Authorization": ""}).status_code == 401
    assert "window" in day.get("/api/v1/experiments", status=400, window="2h")["error"]
    # Retention follows the same grants: the supervisor's campaign, not the center.
    own = day.get("/api/v1/retention", token=SOLAR, scope="campaign:solar-q4")
    assert own["current"]["buying_customers"] > 0  # the simulator's leads buy
    assert "not readable" in day.get("/api/v1/retention", token=SOLAR, status=403)["error"]


def test_cli_table(day: Day) -> None:
    out = day.svc.run_cli(["experiments"], timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    verdict = day.get("/api/v1/experiments/script-test")["verdict"]
    assert lines[0].startswith(f"script-test: {verdict}"), out.stdout
    assert any(line.split()[:2] == ["A", "(control)"] for line in lines), out.stdout
    assert "guardrail complaint_rate" in out.stdout
