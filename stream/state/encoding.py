"""Encoding entity states in proportion to what changed.

A call's events and an agent's timeline points only grow at the end between prunings (a late
point is inserted, a pruning cuts the front), and a batch usually adds one or two. Encoding the
whole list again for every batch that touches the entity cost more than the batch's KPI
arithmetic, so the encoded text of a list is kept with the list, and only the items after
the ones already encoded are encoded again. The result is byte for byte what encoding the
whole state would give (`tests/unit/test_state_encoding.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

_ENCODER = json.JSONEncoder(separators=(",", ":"))
_make_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # private: not in typeshed
_c_encode: Callable[[Any, int], Any] | None = (
    None if _make_c_encoder is None else _make_c_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False,
        False, True))
"""`_ENCODER`'s C encoder, made once: `JSONEncoder.encode` makes a new one (and a float
formatter closure) on every call, which cost more than encoding a call's one or two new
events. The same encoder and arguments, so the same text (no circular-reference check: a
state never contains itself)."""


def dumps(value: Any) -> str:
    """Compact JSON, as every state is stored: `json.JSONEncoder(separators=(",", ":"))`'s."""
    if _c_encode is None:
        return _ENCODER.encode(value)
    return "".join(_c_encode(value, 0))


class EncodedPrefix(NamedTuple):
    """The JSON of `items[:count]`, without its closing bracket; valid while the list still
    holds the same first and last of those items (by identity: items are never changed, so a
    different object there means the front was cut or something was inserted before)."""

    first: Any  # (not `object`: a NamedTuple field typed `object` fails to import under mypyc)
    last: Any
    items: int
    """how many items the prefix encodes"""
    text: str


def encode_list(items: Sequence[Any], cached: EncodedPrefix | None,
                item: Callable[[Any], Any] | None = None) -> tuple[str, EncodedPrefix | None]:
    """JSON of `items` (each mapped by `item` first) and the prefix to keep for next time."""
    if not items:
        return "[]", None
    n = len(items)
    if (cached is not None and 0 < cached.items <= n and items[0] is cached.first
            and items[cached.items - 1] is cached.last):
        if cached.items == n:
            return cached.text + "]", cached
        rest = items[cached.items:]
        text = cached.text + "," + dumps([item(x) for x in rest] if item else list(rest))[1:-1]
    else:
        text = dumps([item(x) for x in items] if item else list(items))[:-1]
    return text + "]", EncodedPrefix(items[0], items[-1], n, text)
