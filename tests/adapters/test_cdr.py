"""Golden tests of the CDR mapping, written from cdr_csv's documented columns (docs/adapters.md)."""

from __future__ import annotations

from pathlib import Path

from stream.adapters.cdr import CdrLines, CdrMapper
from stream.adapters.config import parse_adapter_config
from stream.adapters.core import BadRecord, Builder
from tests.adapters.golden import event_line

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


def brief(e: dict) -> str:
    return event_line(e, without=("campaign_id",))


def dialed(call_id: str, at: str, agent: str) -> str:
    """A manual dial as `brief` shows it (the configured 3-digit region of 555...)."""
    return f"call.dialed {at} call_id={call_id} agent_id={agent} mode=manual dest_region=555"


def talked(call_id: str, agent: str, answered_at: str, ended_at: str, ring_ms: int,
           talk_ms: int) -> list[str]:
    """An answered outbound call: answered (who answered unknown to a CDR), bridged at once,
    ended."""
    return [f"call.answered {answered_at} call_id={call_id} answered_by=unknown ring_ms={ring_ms}",
            f"call.connected {answered_at} call_id={call_id} agent_id={agent} wait_ms=0",
            f"call.ended {ended_at} call_id={call_id} agent_id={agent} talk_ms={talk_ms}"]


def unanswered(call_id: str, at: str, reason: str, ring_ms: int) -> str:
    return f"call.unanswered {at} call_id={call_id} reason={reason} ring_ms={ring_ms}"


def test_master_csv_maps_to_exactly_these_events() -> None:
    events, bad, results = run((DATA / "Master.csv").read_text())
    assert bad == ["wrong_column_count"]
    assert results == {"mapped": 7, "excluded": 2}  # the extension call and the conference
    assert [brief(e) for e in events] == [
        dialed("1795424400.1", "09:00:00", "alice"),
        *talked("1795424400.1", "alice", "09:00:10", "09:02:10", ring_ms=10000, talk_ms=120000),
        dialed("1795424700.3", "09:05:00", "alice"),
        unanswered("1795424700.3", "09:05:25", "no_answer", ring_ms=25000),
        # two failover legs with one uniqueid: one attempt, answered on the second trunk
        dialed("1795424760.5", "09:06:00", "bob"),
        *talked("1795424760.5", "bob", "09:06:12", "09:07:12", ring_ms=12000, talk_ms=60000),
        dialed("1795424880.8", "09:08:00", "bob"),
        unanswered("1795424880.8", "09:08:01", "congestion", ring_ms=1000),
        "call.offered 09:12:00 call_id=1795425120.12",
        "call.connected 09:12:20 call_id=1795425120.12 agent_id=alice wait_ms=20000",
        "call.ended 09:15:20 call_id=1795425120.12 agent_id=alice talk_ms=180000",
        dialed("1795425360.14", "09:16:00", "alice"),
        unanswered("1795425360.14", "09:16:09", "busy", ring_ms=9000),
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
        dialed("1795428000.1", "10:00:00", "alice"),
        *talked("1795428000.1", "alice", "10:00:10", "10:00:40", ring_ms=10000, talk_ms=30000)]
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
