"""When a batch prepared on one outcome of the batch before it still holds on another (the
same batch redone after a conflict): `StoreView.holds` (stream/processing/pipelining.py)."""

from __future__ import annotations

from stream.processing.loading import Consulted, StoreView
from stream.store.commit import CommitBatch, EntityWrite
from stream.store.layout import PartitionProgress

OFFSETS = {"t:0": 10, "t:1": 5}
MARKS = {"t:0": PartitionProgress(100, False)}
RECORDS = {"x": '{"s":1}'}
ASKED = Consulted(["t:0"], ["call:a", "agent:x"], ["x"])


class Obj:
    def clone(self) -> Obj:
        return self


def view(*entities: tuple[str, int, str | None], offsets: dict[str, int] = OFFSETS,
         marks: dict[str, PartitionProgress] = MARKS,
         records: dict[str, str] = RECORDS) -> StoreView:
    """The view after a batch that writes `entities` (key, version read, JSON or None)."""
    batch = CommitBatch(offsets=[(tp, -1, n) for tp, n in offsets.items()],
                        entities=[EntityWrite(k, v, j, 1000) for k, v, j in entities],
                        watermarks=dict(marks), agent_records=dict(records))
    return StoreView.after(batch, {k: Obj() for k, _, j in entities if j is not None})


def test_the_same_entries_hold() -> None:
    first = view(("call:a", 3, '{"a":1}'), ("call:b", 1, '{"b":1}'))
    redone = view(("call:a", 3, '{"a":1}'), ("call:b", 2, '{"b":2}'))
    assert first.holds(redone, ASKED)  # call:b differs, but was not asked for


def test_a_version_bumped_by_the_conflict_does_not_hold() -> None:
    assert not view(("call:a", 3, '{"a":1}')).holds(view(("call:a", 4, '{"a":1}')), ASKED)


def test_other_json_at_the_same_version_does_not_hold() -> None:
    assert not view(("call:a", 3, '{"a":1}')).holds(view(("call:a", 3, '{"a":2}')), ASKED)


def test_a_key_asked_for_written_by_one_outcome_only_does_not_hold() -> None:
    """Absent from the first view, the batch read it from Redis, which the redone batch changes."""
    assert not view().holds(view(("agent:x", 0, '{"x":1}')), ASKED)
    assert not view(("agent:x", 0, '{"x":1}')).holds(view(), ASKED)
    deleted = view(("agent:x", 2, None))
    assert deleted.holds(view(("agent:x", 2, None)), ASKED)
    assert not deleted.holds(view(), ASKED)


def test_offsets_watermarks_and_records_must_match() -> None:
    first = view()
    assert first.holds(view(offsets={"t:0": 10, "t:1": 6}), ASKED)  # t:1 was not asked for
    assert not first.holds(view(offsets={"t:0": 9}), ASKED)
    assert not first.holds(view(offsets={}), ASKED)
    assert not first.holds(view(marks={"t:0": PartitionProgress(100, True)}), ASKED)
    assert not first.holds(view(marks={}), ASKED)  # watermarks are taken whole
    assert not first.holds(view(records={"x": '{"s":2}'}), ASKED)
    assert not first.holds(view(records={}), ASKED)
    assert first.holds(view(records={"x": '{"s":1}', "y": "{}"}), ASKED)
