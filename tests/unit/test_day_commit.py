"""What the commit writes for the day level: the local day's hash and the month index, and for an
imported old event only the buckets still kept."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.kpi.windows import DAY_MS
from stream.store.commit import CommitBatch, encode
from stream.store.layout import Layout

BERLIN = ZoneInfo("Europe/Berlin")
NOW = int(datetime.fromisoformat("2026-12-01T10:00:00+01:00").timestamp() * 1000)


def payload(batch: CommitBatch) -> dict:
    return json.loads(encode(batch, Layout("ck:", BERLIN), NOW)[0])


def test_a_minute_goes_to_its_local_day_of_its_local_month() -> None:
    minute = int(datetime.fromisoformat("2026-10-31T23:30:00+00:00").timestamp() * 1000)  # 00:30 Nov 1 local
    p = payload(CommitBatch(counters={("campaign:c1", minute): {"dialed": 2}}))
    (c,) = p["counters"]
    assert c[0] is False and c[1].startswith("ck:h:campaign:c1:")  # 31 days back: minutes gone
    assert (c[7], c[8]) == ("ck:d:campaign:c1:2026-11-01", "1:")
    assert p["months"] == [["ck:ix:campaign:2026-11", "c1"]]
    expire = dict(p["expire"])
    assert expire["ck:d:campaign:c1:2026-11-01"] == minute + DAY_MS - 30 * 60_000 + 401 * DAY_MS
    assert expire["ck:ix:campaign:2026-11"] == expire["ck:d:campaign:c1:2026-11-01"] + 29 * DAY_MS


def test_an_imported_old_event_writes_only_its_day_bucket() -> None:
    old = NOW - 100 * DAY_MS
    old -= old % 60_000
    p = payload(CommitBatch(counters={("center", old): {"dialed": 1}}))
    (c,) = p["counters"]
    assert c[0] is False and c[1] is False and c[7].startswith("ck:d:center:")
    assert all(not k.startswith(("ck:m:", "ck:h:")) for k, _ in p["expire"])


def test_a_team_move_moves_the_day_buckets_and_indexes_the_new_team() -> None:
    p = payload(CommitBatch(team_moves=[("a1", "t1", "t2")]))
    days = [m for m in p["moves"] if ":d:" in m[0]]
    assert len(days) >= 400
    assert days[-2][0] == "ck:d:agent:a1:2026-12-01" and days[-2][3:5] == ["ck:ix:team:2026-12", "t2"]
