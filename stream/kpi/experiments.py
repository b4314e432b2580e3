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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from statistics import NormalDist
from typing import Literal, NamedTuple

from stream.kpi.catalog import COUNTERS, KPI_BY_NAME, KPIS, Counters, Kpi

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
    if vs > vn or cs > cn:  # not a proportion (more successes than trials): no binomial test
        return Comparison(vs / vn if vn else None, None, None, None, "", None)
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
            guardrail_breached: bool = False, alpha: float = ALPHA) -> Verdict:
    """The plain verdict: guardrails first, then significance, then whether to keep waiting.

    Significance is judged at α = 0.05 once each arm has its needed sample size; before that a
    difference is reported only if it is already significant at α/10 (a crude guard against
    reading too much into early peeks; it is not a sequential test). `alpha`: the level per
    comparison (`experiment_alpha` divides it among the variants).
    """
    if guardrail_breached:
        return Verdict.GUARDRAIL_BREACHED
    p, lift = comparison.p_value, comparison.lift
    if p is None or lift is None:
        return Verdict.NOT_ENOUGH_DATA
    needed = comparison.needed_per_arm
    enough = needed is not None and min(trials) >= needed
    threshold = alpha if enough else alpha / 10
    if p < threshold:
        return Verdict.VARIANT_BETTER if lift > 0 else Verdict.CONTROL_BETTER
    return Verdict.NO_DIFFERENCE_YET if enough else Verdict.NOT_ENOUGH_DATA


def verdict_text(v: Verdict, variant: str, control: str) -> str:
    """The verdict in words that name the arm: `variant B better`, `control A better`."""
    if v is Verdict.VARIANT_BETTER:
        return f"variant {variant} better"
    if v is Verdict.CONTROL_BETTER:
        return f"control {control} better"
    return v.value


def experiment_alpha(variants: int, alpha: float = ALPHA) -> float:
    """α per comparison with the control: Bonferroni over the variants (k − 1 comparisons), so
    that the chance of any false "better" stays ≤ α with several variants."""
    return alpha / max(1, variants - 1)


# --------------------------------------------------------------------------- experiments

_COUNT_COUNTERS = frozenset(c.name for c in COUNTERS if c.integer and not c.ms)


def is_ratio_of_counts(kpi: Kpi) -> bool:
    """A rate whose numerator and denominator are event counts (conversion_rate, connect_rate):
    the KPIs a binomial test applies to. Durations, sums and time shares are not."""
    return (kpi.unit == "ratio" and bool(kpi.denominator) and kpi.scale == 1.0
            and set(kpi.numerator + kpi.denominator) <= _COUNT_COUNTERS)


def experiment_kpis() -> dict[str, bool]:
    """Every catalog KPI an experiment may name, mapped to whether it can be the primary KPI
    (what `stream.kpi.config_file.parse_config` checks the configuration against)."""
    return {k.name: is_ratio_of_counts(k) for k in KPIS}


def counts_of(kpi_name: str, counters: Counters) -> tuple[int, int]:
    """(successes, trials) of a ratio-of-counts KPI from one scope's window sums."""
    kpi = KPI_BY_NAME[kpi_name]
    return (int(sum(counters.get(c, 0) for c in kpi.numerator)),
            int(sum(counters.get(c, 0) for c in kpi.denominator)))


Direction = Literal["higher", "lower"]


class Guardrail(NamedTuple):
    """A KPI that must not get worse: `direction` says which way is better, `tolerance` is the
    relative change in the worse direction that is still accepted (0.05: up to 5 % worse)."""

    kpi: str
    direction: Direction
    tolerance: float


@dataclass(frozen=True, slots=True)
class Experiment:
    """One configured experiment (`[[experiments]]`, docs/experiments.md)."""

    name: str
    variants: tuple[str, ...]
    control: str
    primary_kpi: str
    minimum_detectable_effect: float
    guardrails: tuple[Guardrail, ...] = ()
    campaigns: tuple[str, ...] = ()
    window: str = "30d"
    start: datetime | None = None
    end: datetime | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(f"variant:{v}" for v in self.variants)


class GuardrailCheck(NamedTuple):
    """A guardrail KPI of one variant against the control."""

    kpi: str
    control: float | None
    value: float | None
    change: float | None
    """(variant − control) ÷ |control|; None when either is missing or the control is 0."""
    p_value: float | None
    """Two-sided, for a ratio-of-counts guardrail (None for other KPIs)."""
    breached: bool


def check_guardrail(g: Guardrail, control: float | None, value: float | None,
                    counts: tuple[tuple[int, int], tuple[int, int]] | None = None,
                    alpha: float = ALPHA) -> GuardrailCheck:
    """Breached when the variant is worse than the control by more than the tolerance and, for
    a ratio of counts (`counts` = control's and variant's (successes, trials)), the difference
    is significant at `alpha`: a guardrail must not trip on the noise of a few calls."""
    change = None
    if control is not None and value is not None and control != 0:
        change = (value - control) / abs(control)
    p = None
    if counts is not None:
        (cs, cn), (vs, vn) = counts
        if cn and vn and cs <= cn and vs <= vn:
            p = (fisher_exact_p_value(vs, vn, cs, cn) if needs_exact_test(vs, vn, cs, cn)
                 else z_test_p_value(vs, vn, cs, cn))
    worse = change is not None and (-change if g.direction == "higher" else change) > g.tolerance
    breached = worse and (counts is None or (p is not None and p < alpha))
    return GuardrailCheck(g.kpi, control, value, change, p, breached)


class Arm(NamedTuple):
    """The primary KPI's counts of one variant, and its guardrail KPIs' values."""

    successes: int
    trials: int
    guardrail_values: Mapping[str, float | None]
    guardrail_counts: Mapping[str, tuple[int, int] | None]


class VariantResult(NamedTuple):
    variant: str
    is_control: bool
    successes: int
    trials: int
    comparison: Comparison
    still_needed: int | None
    """Trials still missing in the smaller of this arm and the control (None: unknown)."""
    guardrails: tuple[GuardrailCheck, ...]
    verdict: Verdict
    verdict_text: str


class ExperimentResult(NamedTuple):
    experiment: Experiment
    variants: tuple[VariantResult, ...]
    verdict_text: str
    """The experiment's verdict: a breached guardrail first, then the best significant
    variant, then the control, then `no difference yet` / `not enough data`."""


def evaluate(exp: Experiment, arms: Mapping[str, Arm]) -> ExperimentResult:
    """Every variant against the control: pure arithmetic on the arms' counts."""
    alpha = experiment_alpha(len(exp.variants))
    ctl = arms[exp.control]
    rows: list[VariantResult] = []
    for name in exp.variants:
        arm = arms[name]
        cmp = compare((ctl.successes, ctl.trials), (arm.successes, arm.trials),
                      exp.minimum_detectable_effect)
        if name == exp.control:
            cmp = cmp._replace(lift=None, p_value=None, test="")
            rows.append(VariantResult(name, True, arm.successes, arm.trials, cmp, None, (),
                                      Verdict.NOT_ENOUGH_DATA, "control"))
            continue
        checks = tuple(check_guardrail(g, ctl.guardrail_values.get(g.kpi),
                                       arm.guardrail_values.get(g.kpi),
                                       _pair(ctl.guardrail_counts.get(g.kpi),
                                             arm.guardrail_counts.get(g.kpi)), alpha)
                       for g in exp.guardrails)
        trials = (ctl.trials, arm.trials)
        v = verdict(cmp, trials, any(c.breached for c in checks), alpha)
        still = (None if cmp.needed_per_arm is None
                 else max(0, cmp.needed_per_arm - min(trials)))
        rows.append(VariantResult(name, False, arm.successes, arm.trials, cmp, still, checks, v,
                                  verdict_text(v, name, exp.control)))
    return ExperimentResult(exp, tuple(rows), _overall(rows, exp.control))


def _pair(a: tuple[int, int] | None, b: tuple[int, int] | None
          ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    return None if a is None or b is None else (a, b)


def _overall(rows: Sequence[VariantResult], control: str) -> str:
    others = [r for r in rows if not r.is_control]
    if any(r.verdict is Verdict.GUARDRAIL_BREACHED for r in others):
        return Verdict.GUARDRAIL_BREACHED.value
    better = [r for r in others if r.verdict is Verdict.VARIANT_BETTER]
    if better:
        best = max(better, key=lambda r: r.comparison.lift or 0.0)
        return best.verdict_text
    if any(r.verdict is Verdict.CONTROL_BETTER for r in others):
        return verdict_text(Verdict.CONTROL_BETTER, "", control)
    if others and all(r.verdict is Verdict.NO_DIFFERENCE_YET for r in others):
        return Verdict.NO_DIFFERENCE_YET.value
    return Verdict.NOT_ENOUGH_DATA.value
