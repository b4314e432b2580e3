"""`Store.load`: a batch's reads (applied offsets, entity states, versions of states held) in one
command, whatever the number of keys (a pipeline of one HMGET per key cost the pipeline process
a command object and a reply callback per key)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from stream.store.redis_store import Store, StoreLoad

PREFIX = "ck:load:"


def _load(url: str, tps: list[str], keys: list[str], check: list[str]) -> tuple[StoreLoad, int]:
    """The load, and the number of commands the client packed for it (what the pipeline of one
    HMGET per key cost: a command built, packed and answered per key)."""
    async def run() -> tuple[StoreLoad, int]:
        store = Store(url, prefix=PREFIX)
        await store.load(["t:0"], [], [])  # the script loaded first (EVALSHA, SCRIPT LOAD on NOSCRIPT)
        cls: Any = store.redis.connection_pool.connection_class  # this store's own class
        packed = [0]
        pack = cls.pack_command

        def counting(self: Any, *args: Any) -> Any:
            packed[0] += 1
            return pack(self, *args)
        cls.pack_command = counting
        try:
            return await store.load(tps, keys, check), packed[0]
        finally:
            await store.close()
    return asyncio.run(run())


def test_offsets_states_and_versions_come_back_as_stored(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.hset(f"{PREFIX}offsets", mapping={"dialer.events:0": 41, "dialer.events:2": 7})
    r.hset(f"{PREFIX}st:call:a", mapping={"v": 3, "s": '{"events": [1, 2]}'})
    r.hset(f"{PREFIX}st:call:b", mapping={"v": 1, "s": '{"x": "é"}'})
    r.hset(f"{PREFIX}st:agent:held", mapping={"v": 9, "s": "{}"})
    keys = [f"{PREFIX}st:call:a", f"{PREFIX}st:call:missing", f"{PREFIX}st:call:b"]
    check = [f"{PREFIX}st:agent:held", f"{PREFIX}st:agent:gone"]
    out, _ = _load(redis_url, ["dialer.events:0", "dialer.events:1", "dialer.events:2"], keys, check)
    assert out.offsets == {"dialer.events:0": 41, "dialer.events:1": -1, "dialer.events:2": 7}
    assert out.states == {f"{PREFIX}st:call:a": (3, {"events": [1, 2]}),
                          f"{PREFIX}st:call:missing": (0, None),
                          f"{PREFIX}st:call:b": (1, {"x": "é"})}
    assert out.versions == {f"{PREFIX}st:agent:held": 9, f"{PREFIX}st:agent:gone": 0}


def test_each_part_alone_and_nothing_at_all(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.hset(f"{PREFIX}offsets", "t:5", 12)
    r.hset(f"{PREFIX}st:call:c", mapping={"v": 2, "s": "{}"})
    assert _load(redis_url, ["t:5"], [], [])[0] == StoreLoad({"t:5": 12}, {}, {})
    assert _load(redis_url, [], [f"{PREFIX}st:call:c"], [])[0] == StoreLoad({}, {f"{PREFIX}st:call:c": (2, {})}, {})
    assert _load(redis_url, [], [], [f"{PREFIX}st:call:c"])[0] == StoreLoad({}, {}, {f"{PREFIX}st:call:c": 2})
    assert _load(redis_url, [], [], []) == (StoreLoad({}, {}, {}), 0)  # no command at all


def test_thousands_of_keys_are_one_command(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    for i in range(0, 3000, 3):
        r.hset(f"{PREFIX}st:call:n{i}", mapping={"v": i + 1, "s": f'{{"i": {i}}}'})
    keys = [f"{PREFIX}st:call:n{i}" for i in range(3000)]
    check = [f"{PREFIX}st:call:n{i}" for i in range(0, 9000, 3)]
    out, commands = _load(redis_url, ["t:0"], keys, check)
    assert commands == 1  # (a pipeline of one HMGET per key packed 3,002)
    assert out.states == {k: ((i + 1, {"i": i}) if i % 3 == 0 else (0, None)) for i, k in enumerate(keys)}
    assert out.versions == {k: (i * 3 + 1 if i < 1000 else 0) for i, k in enumerate(check)}
