"""The verdict of a claim over its training seeds (featflow.claims.verdict, SPEC 6): reproduced only when every seed
agrees with the paper and each CI excludes the null; a CI over the null or seeds of both signs is inconclusive;
significantly the other way on every seed is not reproduced; a failed precondition is not applicable, with its
reason; one seed is allowed and said."""

from __future__ import annotations

import math

import pytest

from featflow.claims.verdict import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Reading,
    not_applicable,
    side,
    verdict,
)


def test_every_seed_agreeing_with_its_ci_beyond_the_null_is_reproduced():
    out = verdict([(0, Reading(-0.6, -0.7, -0.5)), (1, Reading(-0.4, -0.5, -0.3))], "<", 0.0)
    assert out.verdict == REPRODUCED
    assert out.value == pytest.approx(-0.5) and (out.spread_low, out.spread_high) == (-0.6, -0.4)
    assert out.seeds == (0, 1) and "2 seeds" in out.reason and "s0 -0.6 [-0.7, -0.5]" in out.reason


def test_a_ci_straddling_the_null_is_inconclusive_not_reproduced_or_not():
    out = verdict([(0, Reading(-0.6, -0.7, -0.5)), (1, Reading(-0.1, -0.3, 0.1))], "<", 0.0)
    assert out.verdict == INCONCLUSIVE and "CI includes the null on s1" in out.reason
    # the value on the paper's side but its CI over the null, on the only seed
    assert verdict([(0, Reading(-0.2, -0.5, 0.1))], "<", 0.0).verdict == INCONCLUSIVE
    # a CI that straddles the null on the other side is inconclusive too, not "not reproduced"
    assert verdict([(0, Reading(0.2, -0.1, 0.5))], "<", 0.0).verdict == INCONCLUSIVE


def test_seeds_disagreeing_in_sign_are_inconclusive():
    out = verdict(
        [(0, Reading(0.05, 0.02, 0.08)), (1, Reading(0.07, 0.02, 0.11)), (2, Reading(-0.03, -0.05, -0.01))], ">", 0
    )
    assert out.verdict == INCONCLUSIVE and "disagree in sign" in out.reason
    assert (out.spread_low, out.spread_high) == (-0.03, 0.07)
    # point statistics (no CI) of both signs, too
    assert verdict([(0, Reading(5.0)), (1, Reading(-5.0))], ">", 0.0).verdict == INCONCLUSIVE


def test_significantly_the_other_way_on_every_seed_is_not_reproduced():
    out = verdict([(0, Reading(0.3, 0.2, 0.4)), (1, Reading(0.27, 0.1, 0.4))], "<", 0.0)
    assert out.verdict == NOT_REPRODUCED and "other way" in out.reason
    # other way on one seed, inconclusive on the other: inconclusive
    assert verdict([(0, Reading(0.3, 0.2, 0.4)), (1, Reading(0.1, -0.1, 0.3))], "<", 0.0).verdict == INCONCLUSIVE


def test_a_failed_precondition_is_not_applicable_with_its_reason():
    reason = "the maps hold only the DC term"
    out = verdict([(0, not_applicable(reason)), (1, not_applicable(reason))], ">", 0.0)
    assert out.verdict == NOT_APPLICABLE and reason in out.reason and math.isnan(out.value)
    # on some seeds only: the seeds disagree, inconclusive, with the reason
    out = verdict([(0, Reading(0.8, 0.7, 0.9)), (1, not_applicable(reason))], ">", 0.0)
    assert out.verdict == INCONCLUSIVE and reason in out.reason and out.value == 0.8
    # a statistic the reader could not compute (NaN) is no evidence either way
    assert verdict([(0, Reading(float("nan")))], ">", 0.0).verdict == NOT_APPLICABLE
    assert verdict([], ">", 0.0).verdict == NOT_APPLICABLE


def test_one_seed_is_allowed_and_said():
    out = verdict([(0, Reading(0.7, 0.6, 0.8))], ">", 0.0)
    assert out.verdict == REPRODUCED and "1 seed" in out.reason and out.spread_low == out.spread_high == 0.7


def test_p_values_and_point_statistics():
    # a p-value test: significant only at p <= 0.05
    assert verdict([(0, Reading(0.8, p=0.04))], ">", 0.0).verdict == REPRODUCED
    out = verdict([(0, Reading(0.8, p=0.08))], ">", 0.0)
    assert out.verdict == INCONCLUSIVE and "p > 0.05 on s0" in out.reason
    # a point statistic against a threshold: the value decides; a reading's own null overrides the claim's
    assert verdict([(0, Reading(6.3, null=50.0))], "<", float("nan")).verdict == REPRODUCED
    assert verdict([(0, Reading(68.5, null=50.0))], "<", float("nan")).verdict == NOT_REPRODUCED
    assert side(Reading(0.99), ">", 0.99) == 0


def test_direction_is_checked():
    with pytest.raises(ValueError, match="direction"):
        verdict([(0, Reading(1.0))], "!=", 0.0)
