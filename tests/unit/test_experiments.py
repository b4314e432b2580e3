"""Experiment statistics against published values and against a second implementation."""

from __future__ import annotations

import math

import pytest

from stream.kpi.experiments import (
    Verdict,
    compare,
    fisher_exact_p_value,
    needs_exact_test,
    sample_size_per_arm,
    verdict,
    wilson_interval,
    z_test_p_value,
)


def test_fisher_lady_tasting_tea() -> None:
    # Fisher's own example: 3 of 4 cups right in each row; two-sided p = 34/70.
    assert fisher_exact_p_value(3, 4, 1, 4) == pytest.approx(34 / 70)


def test_fisher_textbook_table() -> None:
    # [[1, 9], [11, 3]]: the worked example in most references, two-sided p = 0.002759.
    assert fisher_exact_p_value(1, 10, 11, 14) == pytest.approx(0.002759, abs=5e-6)


def test_z_test_equals_the_chi_square_test_of_the_same_table() -> None:
    """A second implementation: Pearson's χ² of the 2×2 table (no continuity correction)."""
    for s1, n1, s2, n2 in [(200, 1000, 250, 1000), (30, 120, 18, 130), (5, 40, 9, 41)]:
        table = [[s1, n1 - s1], [s2, n2 - s2]]
        total = n1 + n2
        cols = [s1 + s2, total - s1 - s2]
        chi2 = sum((table[r][c] - [n1, n2][r] * cols[c] / total) ** 2
                   / ([n1, n2][r] * cols[c] / total) for r in range(2) for c in range(2))
        assert z_test_p_value(s1, n1, s2, n2) == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))


def test_wilson_interval_solves_the_score_equation() -> None:
    """Each bound p satisfies |p − p̂| = z·sqrt(p(1−p)/n), found here by bisection."""
    z = 1.959963984540054
    for s, n in [(81, 263), (0, 10), (10, 10), (3, 7)]:
        interval = wilson_interval(s, n)
        assert interval is not None
        phat = s / n

        def f(p: float, phat: float = phat, n: int = n) -> float:
            return abs(p - phat) - z * math.sqrt(p * (1 - p) / n)

        for bound, lo, hi in [(interval.low, 0.0, phat), (interval.high, phat, 1.0)]:
            if (lo == 0.0 and bound == 0.0) or (hi == 1.0 and bound == 1.0):
                continue
            a, b = lo, hi
            for _ in range(200):
                m = (a + b) / 2
                if (f(m) > 0) == (f(a) > 0):
                    a = m
                else:
                    b = m
            assert bound == pytest.approx((a + b) / 2, abs=1e-9)
    assert wilson_interval(0, 0) is None


def test_sample_size_ten_versus_fifteen_percent() -> None:
    # 10 % → 15 % at α = 0.05 two-sided, 80 % power: 686 per group (Fleiss, no correction).
    assert sample_size_per_arm(0.10, 0.5) == 686
    assert sample_size_per_arm(0.0, 0.5) is None


def test_small_counts_use_the_exact_test() -> None:
    assert needs_exact_test(0, 8, 3, 9)
    assert not needs_exact_test(200, 1000, 250, 1000)
    assert compare((3, 9), (0, 8), 0.2).test == "fisher"


def test_verdicts() -> None:
    big = compare((1000, 10_000), (1300, 10_000), 0.1)
    assert big.lift == pytest.approx(0.3)
    assert verdict(big, (10_000, 10_000)) is Verdict.VARIANT_BETTER
    same = compare((2000, 20_000), (2020, 20_000), 0.1)
    assert verdict(same, (20_000, 20_000)) is Verdict.NO_DIFFERENCE_YET
    early = compare((10, 100), (14, 100), 0.1)
    assert verdict(early, (100, 100)) is Verdict.NOT_ENOUGH_DATA
    assert verdict(compare((0, 0), (0, 0), 0.1), (0, 0)) is Verdict.NOT_ENOUGH_DATA
    assert verdict(big, (10_000, 10_000), guardrail_breached=True) is Verdict.GUARDRAIL_BREACHED
    worse = compare((1300, 10_000), (1000, 10_000), 0.1)
    assert verdict(worse, (10_000, 10_000)) is Verdict.CONTROL_BETTER
