"""The worker's advice on Redis's compact-hash setting: day hashes must stay compact (memory),
hour hashes must not stay compact past Redis 7's default (CPU per commit)."""

from __future__ import annotations

from stream.store.redis_store import hash_setting_advice


def test_redis_7s_default_and_what_the_stack_sets_need_no_advice() -> None:
    assert hash_setting_advice({"hash-max-listpack-entries": "128", "hash-max-listpack-value": "64"}) is None
    assert hash_setting_advice({"hash-max-ziplist-entries": "64"}) is None


def test_a_setting_below_the_day_hash_size_is_a_memory_warning() -> None:
    advice = hash_setting_advice({"hash-max-listpack-entries": "32"})
    assert advice and "day hashes" in advice and "memory" in advice and "128" in advice


def test_redis_6s_default_is_a_cpu_warning() -> None:
    advice = hash_setting_advice({"hash-max-ziplist-entries": "512", "hash-max-ziplist-value": "64"})
    assert advice and "hour hashes" in advice and "CPU" in advice


def test_an_unreadable_setting_gives_no_advice() -> None:
    assert hash_setting_advice({}) is None
