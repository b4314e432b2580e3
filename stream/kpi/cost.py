"""Cost and return KPIs from counters and configured cost rates. Pure.

    cost          = staffed_ms / 3 600 000 × agent_cost_per_hour
                  + (talk_ms + hold_ms) / 60 000 × telephony_cost_per_minute
                  + dialed × cost_per_dial
    cost_per_call = cost ÷ dialed
    cost_per_lead = cost ÷ qualified_leads
    roi           = (revenue − cost) ÷ cost

A zero denominator gives None (never 0). Rates are per campaign with a default; a scope that
spans campaigns (the center, a team) is costed campaign by campaign with each campaign's rates,
and whatever of its counters no campaign accounts for (agent time on an `agent.state` that named
no campaign) at the default rates: see `center_cost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

COST_KPIS: tuple[str, ...] = ("cost", "cost_per_call", "cost_per_lead", "roi")
RATE_FIELDS: tuple[str, ...] = ("agent_cost_per_hour", "telephony_cost_per_minute", "cost_per_dial")
COST_COUNTERS: tuple[str, ...] = ("staffed_ms", "talk_ms", "hold_ms", "dialed")
"""The counters `cost` is made of (what must be split by campaign to cost a mixed scope)."""

_MS_PER_HOUR = 3_600_000
_MS_PER_MINUTE = 60_000


@dataclass(frozen=True, slots=True)
class CostRates:
    agent_cost_per_hour: float = 0.0
    telephony_cost_per_minute: float = 0.0
    cost_per_dial: float = 0.0

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, slots=True)
class CostConfig:
    """Default rates, per-campaign rates (complete: the loader fills omitted fields from the
    default) and the currency label shown next to money values."""

    default: CostRates = field(default_factory=CostRates)
    per_campaign: Mapping[str, CostRates] = field(
        default_factory=lambda: MappingProxyType({}))
    currency: str = ""

    def rates_for(self, campaign_id: str | None) -> CostRates:
        if campaign_id is None:
            return self.default
        return self.per_campaign.get(campaign_id, self.default)


def _get(counters: Mapping[str, float], name: str) -> float:
    return counters.get(name, 0) or 0


def cost_of(counters: Mapping[str, float], rates: CostRates) -> float:
    """The cost of one scope and window at one set of rates."""
    return (_get(counters, "staffed_ms") / _MS_PER_HOUR * rates.agent_cost_per_hour
            + (_get(counters, "talk_ms") + _get(counters, "hold_ms")) / _MS_PER_MINUTE
            * rates.telephony_cost_per_minute
            + _get(counters, "dialed") * rates.cost_per_dial)


def _div(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def kpis_from_cost(cost: float, counters: Mapping[str, float]) -> dict[str, float | None]:
    """cost, cost_per_call, cost_per_lead and roi, given the cost and the scope's counters."""
    return {
        "cost": cost,
        "cost_per_call": _div(cost, _get(counters, "dialed")),
        "cost_per_lead": _div(cost, _get(counters, "qualified_leads")),
        "roi": _div(_get(counters, "revenue") - cost, cost),
    }


def cost_kpis(counters: Mapping[str, float], rates: CostRates) -> dict[str, float | None]:
    """Cost KPIs of a scope that uses one set of rates (a campaign, or any scope at defaults)."""
    return kpis_from_cost(cost_of(counters, rates), counters)


def remainder(total: Mapping[str, float],
              parts: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The cost counters of `total` that no part accounts for: total − Σ parts, floored at 0
    (a float sum may overshoot by a rounding error; a real excess cannot occur, since every
    campaign-attributed counter is also counted in the total)."""
    return {name: max(0.0, _get(total, name) - sum(_get(p, name) for p in parts.values()))
            for name in COST_COUNTERS}


def center_cost(center_counters: Mapping[str, float],
                per_campaign_counters: Mapping[str, Mapping[str, float]],
                config: CostConfig) -> dict[str, float | None]:
    """Cost KPIs of the center (or any scope, given its per-campaign breakdown).

    cost = Σ over campaigns of cost_of(campaign counters, that campaign's rates)
         + cost_of(center − Σ campaigns, default rates);
    cost_per_call, cost_per_lead and roi then use the center's own dialed, qualified_leads and
    revenue. `config` is a `CostConfig` (or anything with a `.costs` CostConfig, such as the
    service configuration).
    """
    costs: CostConfig = getattr(config, "costs", config)
    total = sum(cost_of(c, costs.rates_for(cid)) for cid, c in per_campaign_counters.items())
    total += cost_of(remainder(center_counters, per_campaign_counters), costs.default)
    return kpis_from_cost(total, center_counters)
