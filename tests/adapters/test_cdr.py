"""Golden tests of the CDR mapping, written from cdr_csv's documented columns (docs/adapters.md)."""

from __future__ import annotations

from pathlib import Path

from stream.adapters.cdr import CdrLines, CdrMapper
from stream.adapters.config import parse_adapter_config
from stream.adapters.core import BadRecord, Builder

DATA = Path(__file__).parent / "data"
CONFIG = """instance = "pbx1"
timezone = "UTC"
dest_region_digits = 3
[agents]
map = { "1001" = "alice", "1002" = "bob" }
[campaigns]
default = "outbound"
[cdr]
columns = ["uniqueid"]
"""


def run(text: str, config: str = CONFIG) -> tuple[list[dict], list[str], dict[str, int]]:
    cfg = parse_adapter_config(config)
    h = CdrLines(CdrMapper(cfg, Builder("cdr", cfg.instance, 0, cfg.tz)))
    events: list[dict] = []
    bad: list[str] = []
    results: dict[str, int] = {}
    for raw in text.encode().splitlines():
        try:
            m = h.handle(raw)
        except BadRecord as e:
            bad.append(e.reason)
            continue
        results[m.result] = results.get(m.result, 0) + 1
        events += [e.event for e in m.events]
    events += [e.event for e in h.flush()]
    return events, bad, results


def brief(e: dict) -> tuple:
    return tuple([e["type"], e["ts"][11:19]] + [f"{k}={v}" for k, v in e.items()
                                                if k not in ("event_id", "type", "ts", "campaign_id")])


def test_master_csv_maps_to_exactly_these_events() -> None:
    events, bad, results = run((DATA / "Master.csv").read_text())
    assert bad == ["wrong_column_count"]
    assert results == {"mapped": 7, "excluded": 2}  # the extension call and the conference
    assert [brief(e) for e in events] == [
        ("call.dialed", "09:00:00", "call_id=1795424400.1", "agent_id=alice", "mode=manual",
         "dest_region=555"),
        ("call.answered", "09:00:10", "call_id=1795424400.1", "answered_by=unknown",
         "ring_ms=10000"),
        ("call.connected", "09:00:10", "call_id=1795424400.1", "agent_id=alice", "wait_ms=0"),
        ("call.ended", "09:02:10", "call_id=1795424400.1", "agent_id=alice", "talk_ms=120000"),
        ("call.dialed", "09:05:00", "call_id=1795424700.3", "agent_id=alice", "mode=manual",
         "dest_region=555"),
        ("call.unanswered", "09:05:25", "call_id=1795424700.3", "reason=no_answer",
         "ring_ms=25000"),
        # two failover legs with one uniqueid: one attempt, answered on the second trunk
        ("call.dialed", "09:06:00", "call_id=1795424760.5", "agent_id=bob", "mode=manual",
         "dest_region=555"),
        ("call.answered", "09:06:12", "call_id=1795424760.5", "answered_by=unknown",
         "ring_ms=12000"),
        ("call.connected", "09:06:12", "call_id=1795424760.5", "agent_id=bob", "wait_ms=0"),
        ("call.ended", "09:07:12", "call_id=1795424760.5", "agent_id=bob", "talk_ms=60000"),
        ("call.dialed", "09:08:00", "call_id=1795424880.8", "agent_id=bob", "mode=manual",
         "dest_region=555"),
        ("call.unanswered", "09:08:01", "call_id=1795424880.8", "reason=congestion",
         "ring_ms=1000"),
        ("call.offered", "09:12:00", "call_id=1795425120.12"),
        ("call.connected", "09:12:20", "call_id=1795425120.12", "agent_id=alice",
         "wait_ms=20000"),
        ("call.ended", "09:15:20", "call_id=1795425120.12", "agent_id=alice", "talk_ms=180000"),
        ("call.dialed", "09:16:00", "call_id=1795425360.14", "agent_id=alice", "mode=manual",
         "dest_region=555"),
        ("call.unanswered", "09:16:09", "call_id=1795425360.14", "reason=busy", "ring_ms=9000"),
    ]


def test_no_called_number_leaves_the_adapter() -> None:
    """Nothing of a called (or calling) party's number but the configured prefix is emitted."""
    events, _, _ = run((DATA / "Master.csv").read_text())
    text = repr(events)
    for number in ("5551234567", "5559876543", "5550001111", "5550002222", "5553334444",
                   "5557778888", "1234567", "9876543"):
        assert number not in text
    import re
    for e in events:  # no run of 7+ digits outside the ids and the time
        for k, v in e.items():
            assert k in ("event_id", "call_id", "ts") or not re.search(r"\d{7,}", str(v)), (k, v)


def test_header_export_with_freepbx_calldate() -> None:
    text = ("calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,"
            "disposition,amaflags,accountcode,uniqueid,userfield\n"
            '2026-11-23 10:00:00,"""A"" <1001>",1001,5551230000,from-internal,PJSIP/1001-01,'
            "PJSIP/trunk-02,Dial,x,40,30,ANSWERED,3,solar,1795428000.1,\n")
    events, bad, _ = run(text, CONFIG + '\n')
    assert bad == []
    assert [brief(e) for e in events] == [
        ("call.dialed", "10:00:00", "call_id=1795428000.1", "agent_id=alice", "mode=manual",
         "dest_region=555"),
        ("call.answered", "10:00:10", "call_id=1795428000.1", "answered_by=unknown",
         "ring_ms=10000"),
        ("call.connected", "10:00:10", "call_id=1795428000.1", "agent_id=alice", "wait_ms=0"),
        ("call.ended", "10:00:40", "call_id=1795428000.1", "agent_id=alice", "talk_ms=30000")]
    assert events[0]["campaign_id"] == "solar"  # accountcode


def test_direction_rules_from_config() -> None:
    cfg = CONFIG + """direction_rules = [
  { column = "dcontext", match = "^from-internal$", direction = "outbound" },
]
internal_max_digits = 0
"""
    events, _, results = run((DATA / "Master.csv").read_text(), cfg)
    assert results["mapped"] == 9 - 1  # only the conference is excluded now
    # the rules replace the defaults: the ext-queues call is outbound now too
    assert sum(e["type"] == "call.dialed" for e in events) == 7
