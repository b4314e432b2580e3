"""Redis's applied offsets against a batch's offsets and the partitions' ends (`offsets.py`)."""

from __future__ import annotations

from stream.processing.offsets import Action, OffsetCheck

TP = "dialer.events:0"


def test_in_step_nothing_to_do() -> None:
    out = OffsetCheck().check(1, {TP: 100}, {TP: 99}, {TP: 300})
    assert not out.excluded and not out.reset and not out.counters
    assert out.gauges == {f"store_ahead:{TP}": 0}


def test_a_redelivered_batch_is_no_gap() -> None:
    assert not OffsetCheck().check(1, {TP: 50}, {TP: 99}, {TP: 300}).excluded


def test_redis_behind_the_batch_is_read_again_from_its_applied_offset() -> None:
    check = OffsetCheck()
    out = check.check(1, {TP: 100}, {TP: 39}, {TP: 300})
    assert out.excluded[TP].action is Action.REWIND and out.excluded[TP].offset == 40
    assert out.counters == {"store_rewinds": 1}
    # the same batch prepared again (a conflict) asks again, and is not counted again
    again = check.check(1, {TP: 100}, {TP: 39}, {TP: 300})
    assert again.excluded[TP].offset == 40 and not again.counters


def test_a_re_read_that_starts_at_the_same_offset_again_finds_no_records_there() -> None:
    check = OffsetCheck()
    check.check(1, {TP: 100}, {TP: 39}, {TP: 300})
    out = check.check(2, {TP: 100}, {TP: 39}, {TP: 300})  # read from 40: first record is 100
    assert not out.excluded
    assert out.counters == {"offsets_unreadable": 60}


def test_redis_ahead_of_the_partition_end_pauses_it_by_default() -> None:
    out = OffsetCheck().check(1, {TP: 0}, {TP: 5000}, {TP: 20})
    assert out.excluded[TP].action is Action.HOLD
    assert out.gauges[f"store_ahead:{TP}"] == 4981 and out.counters == {"store_ahead": 1}


def test_redis_ahead_with_policy_reset_counts_from_the_groups_position() -> None:
    out = OffsetCheck("reset").check(1, {TP: 7}, {TP: 5000}, {TP: 20})
    assert not out.excluded and out.reset == {TP: 6}
    assert out.counters == {"store_ahead": 1, "store_offset_resets": 1}


def test_the_last_applied_offset_just_below_the_end_is_not_ahead() -> None:
    assert not OffsetCheck().check(1, {TP: 19}, {TP: 19}, {TP: 20}).excluded
