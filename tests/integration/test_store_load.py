"""`Store.load`: a batch's reads (applied offsets, entity states, versions of states held) in one
command, whatever the number of keys (a pipeline of one HMGET per key cost the pipeline process
a command object and a reply callback per key)."""

from __future__ import annotations

import asyncio

import redis

from stream.store.redis_store import Store, StoreLoad

PREFIX = "ck:load:"


def _load(url: str, tps: list[str], keys: list[str], check: list[str]) -> tuple[StoreLoad, int]:
    """The load, and the number of scripts Redis ran for it (its reads inside them)."""
    async def run() -> StoreLoad:
        store = Store(url, prefix=PREFIX)
        try:
            return await store.load(tps, keys, check)
        finally:
            await store.close()
    sync = redis.Redis.from_url(url)
    before = _scripts(sync)
    out = asyncio.run(run())
    return out, _scripts(sync) - before


def _scripts(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


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
    assert _load(redis_url, [], [], []) == (StoreLoad({}, {}, {}), 0)  # no round trip at all


def test_thousands_of_keys_in_one_script(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    for i in range(0, 3000, 3):
        r.hset(f"{PREFIX}st:call:n{i}", mapping={"v": i + 1, "s": f'{{"i": {i}}}'})
    keys = [f"{PREFIX}st:call:n{i}" for i in range(3000)]
    check = [f"{PREFIX}st:call:n{i}" for i in range(0, 9000, 3)]
    asyncio.run(_warm(redis_url))  # the script loaded once (EVALSHA, then SCRIPT LOAD on NOSCRIPT)
    out, commands = _load(redis_url, ["t:0"], keys, check)
    assert commands == 1
    assert out.states == {k: ((i + 1, {"i": i}) if i % 3 == 0 else (0, None)) for i, k in enumerate(keys)}
    assert out.versions == {k: (i * 3 + 1 if i < 1000 else 0) for i, k in enumerate(check)}


async def _warm(url: str) -> None:
    store = Store(url, prefix=PREFIX)
    await store.load(["t:0"], [], [])
    await store.close()
