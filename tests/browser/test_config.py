"""The browser tests' configuration keeps its promises whatever the simulator draws: the banner
test needs a compliance entry in warn or critical, and the simulated abandon spike varies with the
start time (a third of the draws left every campaign under its limit, so the banner test failed
when CI happened to start on one). No browser, no services: the reference calculator's sums."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.kpi.compliance import compliance_report, rate_status
from stream.kpi.config_file import load_config
from tests.browser import simulated, write_config
from tests.reference.calculator import Reference

DAY = 86_400_000
# Start times (ms) whose draw left every compliance entry `ok` under the fixed limits.
MILD_SPIKES = (1796241347148, 1796241347259, 1796241347518)


@pytest.mark.parametrize("now_ms", MILD_SPIKES)
def test_a_compliance_entry_is_critical_and_stays_at_least_warn(tmp_path: Path, now_ms: int) -> None:
    traffic = simulated(now_ms, 500, 15)
    values, _ = traffic.until(now_ms)
    config = load_config(write_config(tmp_path / "callkpi.toml", now_ms, traffic, values))
    ref = Reference(values, now_ms=now_ms)
    sums = {c: ref.sums(f"campaign:{c}", now_ms - DAY, now_ms) for c in traffic.campaigns}
    report = compliance_report(sums, sums, config.compliance, day_fraction=0.5)
    assert any(e["status"] == "critical" for e in report), [(e["campaign_id"], e["status"]) for e in report]
    # The tests that run before the banner's publish more traffic; the 30-day rate's abandons
    # stay, its connects grow: with five times the connects the entry must still warn.
    diluted = [rate_status(e["us_abandon_rate_30d"] / 5, e["limit"]) for e in report
               if e["us_abandon_rate_30d"] is not None]
    assert {"warn", "critical"} & set(diluted), diluted
