"""A/B test statistics for experiments over ratio-of-counts KPIs (e.g. `conversion_rate`).

Pure arithmetic on (successes, trials) per variant, which the reader sums from the
`variant:<id>` scopes exactly as for any KPI. Written here with the standard library
(`statistics.NormalDist`, `math.comb`) rather than SciPy: the formulas are a few lines each
and SciPy would add a 40 MB dependency to the service for them.

What the numbers are (docs/experiments.md says more, including what they do not protect
against):

* each variant's rate with a 95 % Wilson score interval (good coverage for small counts and
  rates near 0 or 1, unlike the normal-approximation interval);
* lift = (variant − control) ÷ control;
* a two-sided p-value: the pooled two-proportion z-test, or Fisher's exact test when any
  expected cell count is below 5 (where the normal approximation is poor);
* the trials per arm needed to detect the configured minimum detectable effect (relative) at
  α = 0.05 two-sided and 80 % power, from the control's current rate.
"""

from __future__ import annotations

import math
from enum import StrEnum
from statistics import NormalDist
from typing import NamedTuple

ALPHA = 0.05
POWER = 0.80
_Z = NormalDist()


class Verdict(StrEnum):
    """The plain answer a manager reads first."""

    NOT_ENOUGH_DATA = "not enough data"
    NO_DIFFERENCE_YET = "no difference yet"
    VARIANT_BETTER = "variant better"
    CONTROL_BETTER = "control better"
    GUARDRAIL_BREACHED = "guardrail breached"


class Interval(NamedTuple):
    low: float
    high: float


class Comparison(NamedTuple):
    """One variant against the control on the primary KPI."""

    rate: float | None
    interval: Interval | None
    lift: float | None
    p_value: float | None
    test: str  # "z" or "fisher" or "" when there is nothing to test
    needed_per_arm: int | None


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval for a proportion; None with no trials."""
    if trials <= 0:
        return None
    z = _Z.inv_cdf(1 - (1 - confidence) / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def z_test_p_value(s1: int, n1: int, s2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (s1 / n1 - s2 / n2) / se
    return min(1.0, 2 * (1 - _Z.cdf(abs(z))))


def fisher_exact_p_value(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided Fisher exact test of the 2×2 table [[s1, n1−s1], [s2, n2−s2]].

    Sums the probabilities of every table with the same margins that is no more likely than
    the observed one (the usual two-sided definition, as R's fisher.test).
    """
    successes, total = s1 + s2, n1 + n2

    def prob(a: int) -> float:
        return math.comb(n1, a) * math.comb(n2, successes - a) / math.comb(total, successes)

    observed = prob(s1)
    low, high = max(0, successes - n2), min(n1, successes)
    p = sum(q for a in range(low, high + 1) if (q := prob(a)) <= observed * (1 + 1e-7))
    return min(1.0, p)


def needs_exact_test(s1: int, n1: int, s2: int, n2: int) -> bool:
    """True when an expected cell count is below 5 (the z-test's approximation is poor)."""
    total = n1 + n2
    if total == 0:
        return False
    successes = s1 + s2
    expected = [n * m / total for n in (n1, n2) for m in (successes, total - successes)]
    return min(expected) < 5


def sample_size_per_arm(base_rate: float, relative_mde: float,
                        alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Trials per arm to detect base_rate → base_rate × (1 + relative_mde), two-sided."""
    target = base_rate * (1 + relative_mde)
    if not 0 < base_rate < 1 or not 0 < target < 1 or relative_mde == 0:
        return None
    z_alpha = _Z.inv_cdf(1 - alpha / 2)
    z_beta = _Z.inv_cdf(power)
    mean = (base_rate + target) / 2
    numerator = (z_alpha * math.sqrt(2 * mean * (1 - mean))
                 + z_beta * math.sqrt(base_rate * (1 - base_rate) + target * (1 - target))) ** 2
    return math.ceil(numerator / (target - base_rate) ** 2)


def compare(control: tuple[int, int], variant: tuple[int, int],
            relative_mde: float) -> Comparison:
    """The variant (successes, trials) against the control's on one ratio KPI."""
    (cs, cn), (vs, vn) = control, variant
    rate = vs / vn if vn else None
    control_rate = cs / cn if cn else None
    lift = (rate - control_rate) / control_rate if rate is not None and control_rate else None
    if not cn or not vn:
        p, test = None, ""
    elif needs_exact_test(vs, vn, cs, cn):
        p, test = fisher_exact_p_value(vs, vn, cs, cn), "fisher"
    else:
        p, test = z_test_p_value(vs, vn, cs, cn), "z"
    needed = sample_size_per_arm(control_rate, relative_mde) if control_rate else None
    return Comparison(rate, wilson_interval(vs, vn), lift, p, test, needed)


def verdict(comparison: Comparison, trials: tuple[int, int],
            guardrail_breached: bool = False) -> Verdict:
    """The plain verdict: guardrails first, then significance, then whether to keep waiting.

    Significance is judged at α = 0.05 once each arm has its needed sample size; before that a
    difference is reported only if it is already significant at α/10 (a crude guard against
    reading too much into early peeks; it is not a sequential test).
    """
    if guardrail_breached:
        return Verdict.GUARDRAIL_BREACHED
    p, lift = comparison.p_value, comparison.lift
    if p is None or lift is None:
        return Verdict.NOT_ENOUGH_DATA
    needed = comparison.needed_per_arm
    enough = needed is not None and min(trials) >= needed
    threshold = ALPHA if enough else ALPHA / 10
    if p < threshold:
        return Verdict.VARIANT_BETTER if lift > 0 else Verdict.CONTROL_BETTER
    return Verdict.NO_DIFFERENCE_YET if enough else Verdict.NOT_ENOUGH_DATA
