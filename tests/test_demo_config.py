"""`callkpi demo` shows every feature: its configuration (stream/sim/demo.toml) is valid and matched
to the simulated campaigns, and the simulated dialers keep the demo's abandon rates realistic
(under the limit without a scenario, over it with `abandon_spike`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from stream.cli.commands import load_service_config
from stream.cli.stack import demo_config
from stream.kpi.compliance import DEFAULT_LIMIT
from stream.kpi.config_file import ServiceConfig
from stream.settings import Settings
from stream.sim import DEMO_CONFIG, SimConfig, generate
from stream.sim.model import CAMPAIGNS

HOUR = 3_600_000
DAY_2026 = 1_767_225_600_000  # 2026-01-01T00:00Z
DEMO_AGENTS, DEMO_SEED = 60, 1  # `callkpi demo`'s defaults (stream/cli/stack.py)
SIMULATED = {c.id for c in CAMPAIGNS}
PREDICTIVE = sorted(c.id for c in CAMPAIGNS if c.mode == "predictive")


@pytest.fixture(scope="module")
def config() -> ServiceConfig:
    loaded: ServiceConfig = load_service_config(Settings(config=str(DEMO_CONFIG)))
    return loaded


def test_demo_uses_the_demo_configuration_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLKPI_CONFIG", raising=False)
    assert demo_config() == str(DEMO_CONFIG)
    monkeypatch.setenv("CALLKPI_CONFIG", "/etc/callkpi.toml")
    assert demo_config() == "/etc/callkpi.toml"


def test_every_target_has_warn_and_critical_levels(config: ServiceConfig) -> None:
    assert len(config.targets) >= 5
    for t in config.targets:
        assert t.warn is not None and t.critical is not None, t.name


def test_it_names_only_simulated_campaigns_and_teams(config: ServiceConfig) -> None:
    named = set(config.compliance.campaign_limits) | set(config.costs.per_campaign)
    named |= {c for g in config.compliance.groups for c in g.campaigns}
    named |= {t.scope.split(":", 1)[1] for t in config.targets if t.scope.startswith("campaign:") and "*" not in t.scope}
    assert named and named <= SIMULATED
    teams = {t.scope.rsplit("@team:", 1)[1] for t in config.targets if "@team:" in t.scope}
    assert teams <= {f"team-{n:02d}" for n in range(1, DEMO_AGENTS // 12 + 1)}


def test_costs_and_a_compliance_group_are_configured(config: ServiceConfig) -> None:
    rates = config.costs.default
    assert rates.agent_cost_per_hour > 0 and rates.telephony_cost_per_minute > 0 and rates.cost_per_dial > 0
    assert config.compliance.groups


def _first_hour(start_ms: int, scenario: str | None = None) -> Iterator[dict]:
    """The events of the first hour of the demo's simulated shift (`--backfill 1`: sent at once)."""
    cfg = SimConfig(seed=DEMO_SEED, agents=DEMO_AGENTS, hours=8.0, start_ms=start_ms, scenario=scenario,
                    scenario_at=0.0)
    for d in generate(cfg):
        if d.deliver_ms > start_ms + HOUR:
            return
        yield json.loads(d.value)


def us_abandon_rates(start_ms: int, scenario: str | None = None) -> dict[str, float]:
    """Per predictive campaign: (abandoned + bridged later than 2 s) ÷ live answers, the
    regulators' count (the catalog's compliance_abandons ÷ connected, default thresholds)."""
    abandons, answers = Counter[str](), Counter[str]()
    for e in _first_hour(start_ms, scenario):
        camp = e.get("campaign_id", "")
        if e["type"] == "call.answered" and e["answered_by"] == "human":
            answers[camp] += 1
        elif e["type"] == "call.abandoned" or (e["type"] == "call.connected" and e["wait_ms"] > 2000):
            abandons[camp] += 1
    return {c: abandons[c] / answers[c] for c in PREDICTIVE}


@pytest.mark.parametrize("hour", [9, 18])  # the morning and the evening peak of the answer curve
def test_the_demos_first_hour_stays_under_the_abandon_limit(hour: int) -> None:
    rates = us_abandon_rates(DAY_2026 + hour * HOUR)
    assert sum(r < DEFAULT_LIMIT for r in rates.values()) >= 2, rates  # most; never all over at once
    assert all(r < 2 * DEFAULT_LIMIT for r in rates.values()), rates


def test_the_abandon_spike_scenario_breaches_it() -> None:
    rates = us_abandon_rates(DAY_2026 + 9 * HOUR, "abandon_spike")
    assert all(r > DEFAULT_LIMIT for r in rates.values()), rates
