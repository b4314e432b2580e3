"""Customer retention end to end: sales of known leads in this and the previous local week and
month (America/New_York), through the real broker, worker, Redis and `callkpi serve`, equal the
reference calculator's distinct sets; a lead that becomes known late (its `call.dialed` after
the wrap-up, in a later commit), a call whose earliest `call.dialed` names another lead,
duplicates and non-sale wrap-ups included. No lead_id appears in any answer."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from tests.harness import jsonl, running_service
from tests.reference.calculator import Reference

pytestmark = pytest.mark.integration
ZONE = ZoneInfo("America/New_York")
HOUR = 3_600_000


def _starts(now_ms: int) -> dict[str, tuple[int, int]]:
    """(start of the current, start of the previous) local week and month, epoch ms."""
    local = datetime.fromtimestamp(now_ms / 1000, ZONE).date()
    week = local - timedelta(days=local.weekday())
    month = local.replace(day=1)

    def ms(d: Any) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=ZONE).timestamp() * 1000)
    return {"week": (ms(week), ms(week - timedelta(days=7))),
            "month": (ms(month), ms((month - timedelta(days=1)).replace(day=1)))}


def _last_read_ms(period: str, period_id: str) -> int:
    """The local end of the second period after the given one (a week id is its Monday, a
    month id `YYYY-MM`): the last moment a read can ask for its set."""
    first = date.fromisoformat(period_id if period == "week" else period_id + "-01")
    if period == "week":
        end = first + timedelta(days=21)
    else:
        months = first.year * 12 + first.month - 1 + 3
        end = date(months // 12, months % 12 + 1, 1)
    return int(datetime(end.year, end.month, end.day, tzinfo=ZONE).timestamp() * 1000)


def _call(cid: str, ts: int, campaign: str, lead: str | None, disposition: str = "sale",
          dialed: bool = True) -> list[dict[str, Any]]:
    base = {"call_id": cid, "campaign_id": campaign}
    out = []
    if dialed:
        out.append({"event_id": f"{cid}-d", "type": "call.dialed", "ts": ts - 60_000,
                    "lead_id": lead, **base})
    out.append({"event_id": f"{cid}-w", "type": "call.wrapup", "ts": ts, "agent_id": "a1",
                "wrapup_ms": 5000, "disposition": disposition, **base})
    return out


def test_retention_equals_the_reference(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    starts = _starts(now)
    cur = max(starts["week"][0], starts["month"][0])
    t_cur = cur + max(120_000, (now - cur) // 2)  # in both current periods, in the past
    t_cur = min(t_cur, now - 60_000) if now - cur > 180_000 else now - 30_000
    t_prev_week = starts["week"][0] - 3 * HOUR
    t_prev_month = starts["month"][0] - 2 * HOUR
    first: list[dict[str, Any]] = [
        *_call("c1", t_prev_week, "camp-a", "L1"), *_call("c2", t_cur, "camp-a", "L1"),
        *_call("c3", t_prev_week, "camp-a", "L2"),
        *_call("c4", t_prev_week, "camp-a", "L3"),
        *_call("c5", t_cur, "camp-a", "L3", dialed=False),  # its lead comes later
        *_call("c6", t_prev_month, "camp-b", "L4"), *_call("c7", t_cur, "camp-b", "L4"),
        *_call("c8", t_cur, "camp-b", "L5"), *_call("c9", t_cur + 1000, "camp-b", "L5"),
        *_call("c10", t_cur, "camp-a", "L6"),
        *_call("c11", t_cur, "camp-b", "L7"),  # an earlier call.dialed names L8 (below)
        *_call("c12", t_prev_week, "camp-b", "L8"),
        *_call("c13", t_cur, "camp-a", "L9", disposition="appointment"),
        *_call("c14", t_prev_week, "camp-a", "L9"),
    ]
    first.append(dict(first[-1]))  # a duplicate sale wrap-up
    late = [{"event_id": "c5-d", "type": "call.dialed", "ts": t_cur - 60_000, "call_id": "c5",
             "campaign_id": "camp-a", "lead_id": "L3"},
            {"event_id": "c11-d0", "type": "call.dialed", "ts": t_cur - 120_000, "call_id": "c11",
             "campaign_id": "camp-b", "lead_id": "L8"}]
    config = tmp_path / "callkpi.toml"
    config.write_text('timezone = "America/New_York"\n')
    with running_service(tmp_path / "run", {"CALLKPI_CONFIG": str(config)}) as svc:
        svc.publish(jsonl(first))
        svc.wait_consumed(len(first), timeout=180)
        svc.publish(jsonl(late))
        svc.wait_consumed(len(first) + len(late), timeout=180)
        ref = Reference(jsonl(first + late), now_ms=int(time.time() * 1000))
        at = int(time.time() * 1000)
        checked = 0
        for scope in ("center", "campaign:camp-a", "campaign:camp-b"):
            for period in ("week", "month"):
                body = svc.get("/api/v1/retention", scope=scope, period=period)
                assert body["timezone"] == "America/New_York"
                assert "L1" not in json.dumps(body)
                prev_at = starts[period][1]
                for key, t in (("current", at), ("previous", prev_at)):
                    want = ref.retention(scope, period, t, ZONE)
                    got = {k: body[key][k] for k in want}
                    assert got == want, (scope, period, key)
                    checked += want["buying_customers"]
        assert checked > 10
        week = svc.get("/api/v1/retention", scope="campaign:camp-a")["current"]
        assert week["repeat_customers"] >= 2  # L1 and L3 (its lead known only later)
        out = svc.run_cli(["retention", "--scope", "campaign:camp-b", "--period", "month"])
        assert out.returncode == 0 and "retention rate" in out.stdout, out.stderr
        # Each set is read while its period is the current, the previous or the one before:
        # it must outlive the local end of the second period after its own.
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        keys = list(r.scan_iter("ck:ret:*"))
        assert keys
        for k in keys:
            _, period, pid = k.rsplit(":", 2)
            assert int(time.time() * 1000) + r.pttl(k) >= _last_read_ms(period, pid), k
        r.close()
