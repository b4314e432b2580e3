"""Cost and return KPIs, by hand."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from stream.kpi.cost import CostConfig, CostRates, center_cost, cost_kpis, cost_of

RATES = CostRates(agent_cost_per_hour=20.0, telephony_cost_per_minute=0.02, cost_per_dial=0.01)


def test_cost_by_hand():
    c = {"staffed_ms": 8 * 3_600_000, "talk_ms": 120 * 60_000, "hold_ms": 30 * 60_000,
         "dialed": 1000, "qualified_leads": 10, "revenue": 500.0}
    cost = 8 * 20 + 150 * 0.02 + 1000 * 0.01  # 160 + 3 + 10 = 173
    k = cost_kpis(c, RATES)
    assert k["cost"] == pytest.approx(cost)
    assert k["cost_per_call"] == pytest.approx(cost / 1000)
    assert k["cost_per_lead"] == pytest.approx(cost / 10)
    assert k["roi"] == pytest.approx((500 - cost) / cost)


def test_zero_denominators_give_none():
    k = cost_kpis({}, RATES)
    assert k == {"cost": 0.0, "cost_per_call": None, "cost_per_lead": None, "roi": None}
    k = cost_kpis({"dialed": 10, "revenue": 50}, CostRates())  # all rates zero: cost 0
    assert k["cost"] == 0 and k["cost_per_call"] == 0 and k["roi"] is None


def test_negative_rates_are_refused():
    with pytest.raises(ValueError):
        CostRates(cost_per_dial=-0.01)


def test_center_cost_uses_each_campaigns_rates_and_defaults_for_the_rest():
    cfg = CostConfig(default=CostRates(agent_cost_per_hour=10.0),
                     per_campaign=MappingProxyType({"c1": CostRates(agent_cost_per_hour=30.0,
                                                                    cost_per_dial=0.5)}))
    c1 = {"staffed_ms": 3_600_000, "dialed": 10}
    c2 = {"staffed_ms": 3_600_000, "dialed": 4}   # no own rates: default
    # The center also has 2 h of agent time on agent.state events that named no campaign.
    center = {"staffed_ms": 4 * 3_600_000, "dialed": 14, "qualified_leads": 2, "revenue": 100}
    k = center_cost(center, {"c1": c1, "c2": c2}, cfg)
    expected = (30 + 10 * 0.5) + 10 + 2 * 10
    assert k["cost"] == pytest.approx(expected)
    assert k["cost_per_call"] == pytest.approx(expected / 14)
    assert k["cost_per_lead"] == pytest.approx(expected / 2)
    assert k["roi"] == pytest.approx((100 - expected) / expected)
    # The same numbers at the default rates everywhere would differ: the split matters.
    assert cost_of(center, cfg.default) != pytest.approx(expected)


def test_center_cost_accepts_the_service_config():
    class Service:  # anything with a `.costs`
        costs = CostConfig(default=RATES)

    c = {"dialed": 100}
    assert center_cost(c, {}, Service())["cost"] == pytest.approx(1.0)


def test_remainder_never_goes_negative():
    cfg = CostConfig(default=CostRates(cost_per_dial=1.0))
    # Float noise: the campaign parts sum slightly above the center's total.
    k = center_cost({"dialed": 0.3}, {"a": {"dialed": 0.1}, "b": {"dialed": 0.2}}, cfg)
    assert k["cost"] == pytest.approx(0.3)


def test_rates_for():
    cfg = CostConfig(default=RATES, per_campaign=MappingProxyType({"c1": CostRates()}))
    assert cfg.rates_for("c1") == CostRates()
    assert cfg.rates_for("other") is RATES and cfg.rates_for(None) is RATES
