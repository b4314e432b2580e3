"""A batch crosses to the pipeline process as columns and arrives as the same messages."""

from __future__ import annotations

import pickle

from stream.processing.offload import columns, from_columns
from stream.processing.pipeline import RawMessage


def test_a_batch_survives_the_trip_as_columns() -> None:
    batch = [RawMessage("dialer.events", p, 10 + i, b'{"x":%d}' % i, 1_764_640_000_000 + i)
             for i, p in enumerate([0, 0, 3, 1])]
    back = from_columns(pickle.loads(pickle.dumps(columns(batch))))
    assert back == batch
    assert all(type(m) is RawMessage for m in back) and back[2].tp == "dialer.events:3"


def test_an_empty_batch_stays_empty() -> None:
    assert from_columns(pickle.loads(pickle.dumps(columns([])))) == []
