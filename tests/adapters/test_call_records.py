"""The generic per-call importer: a contact-record export mapped by its documented column map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.adapters.config import ConfigError, parse_adapter_config
from tests.adapters.conftest import adapt_into, run_adapter
from tests.adapters.golden import event_line

DATA = Path(__file__).parent / "data"


def brief(e: dict) -> str:
    return event_line(e)


def test_contact_records_csv(tmp_path: Path) -> None:
    r = run_adapter(None, ["call-records", "--file", str(DATA / "contacts.csv"), "--config",
                           str(DATA / "contacts.toml"), "--out", "ev.jsonl", "--no-checkpoint"],
                    tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["records"] == {"ignored": 1, "mapped": 5, "not_a_call": 1, "bad": 1}
    assert summary["bad"] == {"bad_timestamp": 1}
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [brief(e) for e in events] == [
        "call.dialed 09:00:00 call_id=c1 campaign_id=solar agent_id=alice",
        "call.answered 09:00:08 call_id=c1 campaign_id=solar answered_by=human ring_ms=8000",
        "call.connected 09:00:10 call_id=c1 campaign_id=solar agent_id=alice wait_ms=2000",
        "call.ended 09:02:10 call_id=c1 campaign_id=solar agent_id=alice talk_ms=115000 hold_ms=5000",
        ("call.wrapup 09:02:30 call_id=c1 campaign_id=solar agent_id=alice wrapup_ms=20000 disposition=sale "
         "disposition_code=Sold"),
        "call.dialed 09:01:00 call_id=c2 campaign_id=solar",
        "call.unanswered 09:01:30 call_id=c2 campaign_id=solar reason=no_answer",
        "call.dialed 09:02:00 call_id=c3 campaign_id=solar",
        "call.answered 09:02:06 call_id=c3 campaign_id=solar answered_by=machine ring_ms=6000",
        "call.offered 09:03:01 call_id=c4 campaign_id=support queue_id=support",
        "call.connected 09:03:21 call_id=c4 campaign_id=support agent_id=bob wait_ms=20000",
        "call.ended 09:05:21 call_id=c4 campaign_id=support agent_id=bob talk_ms=120000",
        ("call.wrapup 09:05:31 call_id=c4 campaign_id=support agent_id=bob wrapup_ms=10000 "
         "disposition=not_interested disposition_code=NotNow"),
        "call.offered 09:04:01 call_id=c5 campaign_id=support queue_id=support",
        "call.abandoned 09:04:46 call_id=c5 campaign_id=support wait_ms=45000 reason=customer_hangup",
    ]


def test_column_map_errors_name_file_line_and_key() -> None:
    with pytest.raises(ConfigError) as e:
        parse_adapter_config('[call_records.columns]\ncall_id = "Id"\nanswerd_at = "X"\n',
                             source="ctr.toml")
    assert str(e.value).startswith("ctr.toml:3: call_records.columns.answerd_at: unknown key")
    assert "did you mean 'answered_at'" in str(e.value)
    with pytest.raises(ConfigError, match=r"ctr.toml:1: call_records.columns: .*call_id"):
        parse_adapter_config('[call_records.columns]\nagent = "A"\n', source="ctr.toml")


@pytest.mark.integration
def test_contact_records_into_exact_kpis(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import time

    from tests.adapters.test_queue_log_e2e import DAY_S, days_back, kpis
    from tests.harness import wait_until
    first = 1795424400  # 2026-11-23T09:00:00Z, the export's first call
    days = days_back(first, first + 600)
    base = first + days * DAY_S
    config = (DATA / "contacts.toml").read_text().replace('instance = "ctr"', 'instance = "ctr-e2e"')
    (tmp_path / "c.toml").write_text(config.replace(
        'default = "other"', 'default = "other"\nmap = { solar = "e2e-ctr-out", '
                             'support = "e2e-ctr-in" }'))
    adapt_into(pipeline, ["call-records", "--file", str(DATA / "contacts.csv"), "--config",
                               "c.toml", "--time-shift", f"{days}d"], tmp_path)
    wait_until(lambda: kpis(pipeline, "e2e-ctr-in", base, base + 600)["offered"] >= 2, 180,
               pipeline.logs)
    time.sleep(1)
    out = kpis(pipeline, "e2e-ctr-out", base, base + 600)
    assert (out["dialed"], out["answered"], out["connected"], out["machine_answered"],
            out["agent_connected"], out["conversions"], out["abandoned"]) == (3, 2, 1, 1, 1, 1, 0)
    assert out["aht_seconds"] == pytest.approx(115 + 5 + 20)
    inb = kpis(pipeline, "e2e-ctr-in", base, base + 600)
    assert (inb["offered"], inb["inbound_answered"], inb["inbound_abandoned"]) == (2, 1, 1)
    assert inb["avg_speed_of_answer_seconds"] == pytest.approx(20)
