"""What the commit writes for the day level: the local day's hash and the month index, and for an
imported old event only the buckets still kept."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.kpi.windows import DAY_MS
from stream.state.batch import TeamMove
from stream.store.commit import CommitBatch, encode
from stream.store.layout import Layout, agent_history_suffixes, day_key_expiry, history_buckets

BERLIN = ZoneInfo("Europe/Berlin")
NOW = int(datetime.fromisoformat("2026-12-01T10:00:00+01:00").timestamp() * 1000)


def payload(batch: CommitBatch) -> dict:
    return json.loads(encode(batch, Layout("ck:", BERLIN), NOW)[0])


def test_a_minute_goes_to_its_local_day_of_its_local_month() -> None:
    minute = int(datetime.fromisoformat("2026-10-31T23:30:00+00:00").timestamp() * 1000)  # 00:30 Nov 1 local
    p = payload(CommitBatch(counters={("campaign:c1", minute): {"dialed": 2}}))
    incr = {key: ints for key, ints, _ in p["incr"]}
    assert incr["ck:d:campaign:c1:2026-11-01"] == ["1:dialed", "2"]  # day 1 of November, local
    assert [k for k in incr if k.startswith("ck:h:")]  # hour buckets still kept (31 days back)
    assert not [k for k in incr if k.startswith("ck:m:")]  # minute buckets gone
    assert p["months"] == [["ck:ix:campaign:2026-11", "c1"]]
    expire = dict(p["expire"])
    assert expire["ck:d:campaign:c1:2026-11-01"] == minute + DAY_MS - 30 * 60_000 + 401 * DAY_MS
    assert expire["ck:ix:campaign:2026-11"] == expire["ck:d:campaign:c1:2026-11-01"] + 29 * DAY_MS


def test_an_imported_old_event_writes_only_its_day_bucket() -> None:
    old = NOW - 100 * DAY_MS
    old -= old % 60_000
    p = payload(CommitBatch(counters={("center", old): {"dialed": 1}}))
    keys = [key for key, _, _ in p["incr"]]
    assert sorted(k.split(":")[1] for k in keys) == ["d", "t"]
    assert all(not k.startswith(("ck:m:", "ck:h:")) for k, _ in p["expire"])


def test_a_team_move_moves_the_day_buckets_and_indexes_the_new_team() -> None:
    p = payload(CommitBatch(team_moves=[TeamMove("a1", "t1", "t2")]))
    assert p["moves"] == [["agent:a1", "team:t1", "team:t2", "t2"]]
    days = [h for h in p["history"] if h[0] == "ck:d:"]
    assert len(days) >= 400
    assert days[-2][:4] == ["ck:d:", ":2026-12-01", "ck:ix:team:2026-12", days[-2][3]]
    assert days[-2][3] == day_key_expiry("2026-12-31", BERLIN)  # the month index lives as its last day
    assert p["history"][-1] == ["ck:t:", "", False, False]  # the totals
    minutes = [h for h in p["history"] if h[0] == "ck:m:"]
    assert len(minutes) == 51  # 49 h back, this hour and the next (an event stamped ahead)
    assert len(minutes[0]) == 4  # expired right now (NOW is on the hour): no mark to raise
    assert all(h[4:6] == ["ck:mx:", h[1]] and h[6] > NOW for h in minutes[1:])


def test_no_move_names_no_bucket() -> None:
    p = payload(CommitBatch(counters={("agent:a1", NOW - NOW % 60_000): {"dialed": 1}}))
    assert p["moves"] == [] and p["history"] == []


def test_the_kept_bucket_templates_are_the_agents_history_at_every_clock() -> None:
    """`history_buckets` is kept per set of bounds: at clocks on and around hour and local-day
    boundaries (a zone half an hour off UTC, across a DST change) it names what
    `agent_history_suffixes` does at that very clock."""
    for tz in (BERLIN, ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")):
        layout = Layout("ck:", tz)
        # Kolkata's midnight 18:30, Berlin's 22:00 (summer time), UTC's, Berlin's DST end 01:00
        start = int(datetime.fromisoformat("2026-10-24T17:00:00+00:00").timestamp() * 1000)
        for step in range(0, 10 * 4):
            for clock in (start + step * 900_000 + d for d in (-1, 0, 1)):
                want = [layout.key(f"{kind}:agent:a1:{bucket}") for kind, bucket in agent_history_suffixes(clock, tz)]
                got = [b.before + "agent:a1" + b.after for b in history_buckets(layout, clock)]
                assert got[:-1] == want and got[-1] == "ck:t:agent:a1", (tz, clock)
