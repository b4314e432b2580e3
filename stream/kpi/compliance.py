"""Abandon-rate compliance per campaign and per compliance group. Pure.

The reader supplies counter sums (Σ over the window's buckets) for two windows of each campaign:
the rolling 30 days and the local calendar day (`today`). A compliance group pools the counters
of its campaigns (as dialers do when several campaigns share one compliance budget) and is
reported next to its campaigns.

    us_abandon_rate_30d    = compliance_abandons ÷ connected                        (30 days)
    uk_abandon_rate_today  = (abandoned − machine_estimate) ÷ (agent_connected + abandoned)
                             machine_estimate = abandoned × am_dispositions ÷ agent_connected
                             (0 when agent_connected = 0; the share is capped at 1)    (today)
                             agent_connected: of outbound calls (inbound_agent_connected,
                             contract 1.1, subtracted)
    abandon_headroom       = max(0, floor(limit × connected − compliance_abandons))  (30 days)
                             the number of further compliance abandons the 30-day window can
                             take with its rate still ≤ limit, at today's volume (connected
                             held fixed)
    abandon_rate_projected = (A30 − At + At ÷ f) ÷ (C30 − Ct + Ct ÷ f)
                             A = compliance_abandons, C = connected, 30 = 30-day window,
                             t = today so far, f = elapsed fraction of the local day (DST-aware
                             day length): the 30-day rate at the end of today if today's pace
                             holds (today's counts scaled to a full day; the older part of the
                             window is taken as it is now)
    status                 = critical when a judged rate ≥ limit, warn when ≥ 80 % of the
                             limit, ok otherwise, no_data when no judged rate is defined;
                             the judged rates are configurable (default: the US 30-day rate and
                             the UK daily rate; the worst one wins)

All ratios and thresholds are computed with exact fractions (the limit as the decimal written in
the configuration), so a rate of exactly 3 % against a 3 % limit is `critical` and headroom is
never off by one because of float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from fractions import Fraction
from types import MappingProxyType

from stream.kpi.targets import calendar_period

COMPLIANCE_KPIS: tuple[str, ...] = (
    "us_abandon_rate_30d", "uk_abandon_rate_today", "abandon_headroom", "abandon_rate_projected",
)
STATUS_RATE_CHOICES: tuple[str, ...] = (
    "us_abandon_rate_30d", "uk_abandon_rate_today", "abandon_rate_projected",
)
DEFAULT_STATUS_RATES: tuple[str, ...] = ("us_abandon_rate_30d", "uk_abandon_rate_today")
DEFAULT_LIMIT = 0.03
WARN_FRACTION = Fraction(4, 5)
"""`warn` from 80 % of the limit."""
_SEVERITY = {"no_data": 0, "ok": 1, "warn": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class ComplianceGroup:
    """Campaigns that share one abandon budget; `limit` None means the default limit."""

    name: str
    campaigns: tuple[str, ...]
    limit: float | None = None


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    default_limit: float = DEFAULT_LIMIT
    groups: tuple[ComplianceGroup, ...] = ()
    campaign_limits: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    status_rates: tuple[str, ...] = DEFAULT_STATUS_RATES

    def group_of(self, campaign_id: str) -> ComplianceGroup | None:
        for g in self.groups:
            if campaign_id in g.campaigns:
                return g
        return None

    def group_limit(self, group: ComplianceGroup) -> float:
        return self.default_limit if group.limit is None else group.limit

    def limit_for(self, campaign_id: str) -> float:
        """The campaign's own limit, else its group's, else the default."""
        if campaign_id in self.campaign_limits:
            return self.campaign_limits[campaign_id]
        group = self.group_of(campaign_id)
        return self.default_limit if group is None else self.group_limit(group)


# --------------------------------------------------------------------------- exact arithmetic

def _q(counters: Mapping[str, float], name: str) -> Fraction:
    return Fraction(counters.get(name, 0) or 0)


def _limit(limit: float) -> Fraction:
    # The decimal the operator wrote (0.03 is 3/100, not the nearest binary double).
    return Fraction(repr(float(limit)))


def _ratio(num: Fraction, den: Fraction) -> Fraction | None:
    return None if den == 0 else num / den


def _float(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


def pool(counters: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Σ of several counter mappings (a group's window sums)."""
    out: dict[str, float] = {}
    for c in counters:
        for k, v in c.items():
            out[k] = out.get(k, 0) + (v or 0)
    return out


# --------------------------------------------------------------------------- the rates

def us_abandon_ratio(window_30d: Mapping[str, float]) -> Fraction | None:
    """compliance_abandons ÷ connected (exact)."""
    return _ratio(_q(window_30d, "compliance_abandons"), _q(window_30d, "connected"))


def machine_estimate(today: Mapping[str, float]) -> float:
    """Estimated abandons to machines: abandoned × am_dispositions ÷ agent_connected.

    The share of agent-connected calls that the agent dispositioned `answering_machine` is
    applied to the abandoned calls (Ofcom's method); 0 when agent_connected = 0; the share is
    capped at 1.
    """
    return float(_machine_estimate(today))


def _outbound_connects(c: Mapping[str, float]) -> Fraction:
    """`agent_connected` of outbound calls: a blended campaign's inbound connects (contract
    1.1) are no outbound calls and must not dilute the rate."""
    return _q(c, "agent_connected") - _q(c, "inbound_agent_connected")


def _machine_estimate(c: Mapping[str, float]) -> Fraction:
    agent_connected = _outbound_connects(c)
    if agent_connected == 0:
        return Fraction(0)
    share = min(Fraction(1), _q(c, "am_dispositions") / agent_connected)
    return _q(c, "abandoned") * share


def uk_abandon_ratio(today: Mapping[str, float]) -> Fraction | None:
    """(abandoned − machine_estimate) ÷ (agent_connected + abandoned) (exact)."""
    abandoned = _q(today, "abandoned")
    return _ratio(abandoned - _machine_estimate(today), _outbound_connects(today) + abandoned)


def us_abandon_rate(window_30d: Mapping[str, float]) -> float | None:
    return _float(us_abandon_ratio(window_30d))


def uk_abandon_rate(today: Mapping[str, float]) -> float | None:
    return _float(uk_abandon_ratio(today))


def abandon_headroom(window_30d: Mapping[str, float], limit: float) -> int:
    """max(0, floor(limit × connected − compliance_abandons)) over the 30-day window."""
    room = _limit(limit) * _q(window_30d, "connected") - _q(window_30d, "compliance_abandons")
    return max(0, math.floor(room))


def projected_ratio(window_30d: Mapping[str, float], today: Mapping[str, float],
                    day_fraction: float) -> Fraction | None:
    """(A30 − At + At ÷ f) ÷ (C30 − Ct + Ct ÷ f); f ≤ 0 (the day has not started) gives the
    30-day rate as it is, f is capped at 1."""
    a30, c30 = _q(window_30d, "compliance_abandons"), _q(window_30d, "connected")
    if day_fraction <= 0:
        return _ratio(a30, c30)
    f = min(Fraction(1), Fraction(day_fraction))
    at, ct = _q(today, "compliance_abandons"), _q(today, "connected")
    return _ratio(a30 - at + at / f, c30 - ct + ct / f)


def projected_rate(window_30d: Mapping[str, float], today: Mapping[str, float],
                   day_fraction: float) -> float | None:
    return _float(projected_ratio(window_30d, today, day_fraction))


def rate_status(rate: Fraction | float | None, limit: float) -> str:
    """critical (≥ limit), warn (≥ 80 % of the limit), ok, or no_data (rate None)."""
    if rate is None:
        return "no_data"
    # A float is read as its shortest decimal (3 / 100 → 0.03), like the limit; the exact
    # fractions computed in this module are compared as they are.
    r = rate if isinstance(rate, Fraction) else Fraction(repr(float(rate)))
    lim = _limit(limit)
    if r >= lim:
        return "critical"
    if r >= WARN_FRACTION * lim:
        return "warn"
    return "ok"


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_SEVERITY.__getitem__, default="no_data")


def day_fraction(now_ms: int, tz: str | tzinfo) -> float:
    """Elapsed fraction of the local calendar day (a DST day is 23 or 25 hours long)."""
    start, end = calendar_period("today", now_ms, tz)
    return (now_ms - start) / (end - start)


def compliance_kpis(window_30d: Mapping[str, float], today: Mapping[str, float], *,
                    limit: float, day_fraction: float,
                    status_rates: Iterable[str] = DEFAULT_STATUS_RATES) -> dict:
    """The compliance KPIs and status of one campaign or pooled group."""
    rates = {
        "us_abandon_rate_30d": us_abandon_ratio(window_30d),
        "uk_abandon_rate_today": uk_abandon_ratio(today),
        "abandon_rate_projected": projected_ratio(window_30d, today, day_fraction),
    }
    return {
        "limit": limit,
        "us_abandon_rate_30d": _float(rates["us_abandon_rate_30d"]),
        "uk_abandon_rate_today": _float(rates["uk_abandon_rate_today"]),
        "abandon_headroom": abandon_headroom(window_30d, limit),
        "abandon_rate_projected": _float(rates["abandon_rate_projected"]),
        "status": worst(rate_status(rates[name], limit) for name in status_rates),
    }


def compliance_report(per_campaign_30d: Mapping[str, Mapping[str, float]],
                      per_campaign_today: Mapping[str, Mapping[str, float]],
                      config: ComplianceConfig, *, day_fraction: float) -> list[dict]:
    """The entries of `GET /api/v1/compliance`: every campaign seen in either window (sorted),
    then every configured group (in configuration order) with its campaigns' counters pooled.

    Entry: campaign_id (a group's name for a group), group, campaigns, limit, the four KPIs and
    status. `config` is a `ComplianceConfig` or anything with a `.compliance` one.
    """
    cfg: ComplianceConfig = getattr(config, "compliance", config)
    empty: Mapping[str, float] = {}
    entries = []
    for cid in sorted(set(per_campaign_30d) | set(per_campaign_today)):
        kpis = compliance_kpis(per_campaign_30d.get(cid, empty), per_campaign_today.get(cid, empty),
                               limit=cfg.limit_for(cid), day_fraction=day_fraction,
                               status_rates=cfg.status_rates)
        entries.append({"campaign_id": cid, "group": False, "campaigns": [cid], **kpis})
    for g in cfg.groups:
        w = pool(per_campaign_30d.get(c, empty) for c in g.campaigns)
        t = pool(per_campaign_today.get(c, empty) for c in g.campaigns)
        kpis = compliance_kpis(w, t, limit=cfg.group_limit(g), day_fraction=day_fraction,
                               status_rates=cfg.status_rates)
        entries.append({"campaign_id": g.name, "group": True, "campaigns": list(g.campaigns),
                        **kpis})
    return entries
