"""VICIdial: the status mapping (golden, from VICIDIAL_statuses as documented in
docs/adapters.md) and the poller against a real MariaDB whose rows change in place, into the real
pipeline with exact KPIs; a re-poll emits nothing new."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.config import parse_adapter_config
from stream.adapters.core import Builder
from stream.adapters.vicidial import VicidialMapper, disposition_of
from tests.adapters.conftest import MariaDB, adapt_into
from tests.adapters.golden import event_line
from tests.adapters.test_queue_log_e2e import kpis
from tests.adapters.vicidial_schema import DDL
from tests.harness import Service, wait_until

CONFIG = parse_adapter_config('instance = "vici1"\n[pause_codes]\nLUNCH = "lunch"\n')


def dt(s: int) -> str:
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def brief(e: dict) -> str:
    return event_line(e, without=("ts", "campaign_id", "call_id"))


@pytest.mark.parametrize("status,expected", [
    ("NA", ["call.dialed mode=predictive", "call.unanswered reason=no_answer"]),
    ("B", ["call.dialed mode=predictive", "call.unanswered reason=busy"]),
    ("DC", ["call.dialed mode=predictive", "call.unanswered reason=invalid_number"]),
    ("CPDREJ", ["call.dialed mode=predictive", "call.unanswered reason=rejected"]),
    ("AA", ["call.dialed mode=predictive", "call.answered answered_by=machine"]),
    ("AFAX", ["call.dialed mode=predictive", "call.answered answered_by=fax"]),
    ("DROP", ["call.dialed mode=predictive", "call.answered answered_by=human",
              "call.abandoned wait_ms=5000 reason=no_agent"]),
    ("DNCL", []),
])
def test_outbound_statuses(status: str, expected: list[str]) -> None:
    m = VicidialMapper(CONFIG, Builder("vici", "vici1"))
    row = {"uniqueid": "1.1", "call_date": dt(1795424400), "start_epoch": 1795424400,
           "end_epoch": 1795424405, "length_in_sec": 5, "status": status, "user": "VDAD",
           "campaign_id": "SOLAR"}
    assert [brief(e.event) for e in m.map("vicidial_log", row).mapped.events] == expected


def test_dispositions_by_system_status_then_flags() -> None:
    flags = {"PAID": {"sale": "Y"}, "LATER": {"scheduled_callback": "Y", "customer_contact": "Y"},
             "CHAT": {"customer_contact": "Y"}, "ODD": {}}
    got = {s: disposition_of(s, flags, CONFIG) for s in ("SALE", "NI", "DEC", "CALLBK", "A",
                                                          "PAID", "LATER", "CHAT", "ODD")}
    assert got == {"SALE": "sale", "NI": "not_interested", "DEC": "refused",
                   "CALLBK": "callback_requested", "A": "answering_machine", "PAID": "sale",
                   "LATER": "callback_requested", "CHAT": "no_decision", "ODD": "other"}


def test_agent_cycle_phases_once_each_as_the_row_changes() -> None:
    m = VicidialMapper(CONFIG, Builder("vici", "vici1"))
    t = 1795424400
    row = {"agent_log_id": 7, "user": "6001", "campaign_id": "SOLAR", "pause_epoch": t,
           "sub_status": "LUNCH"}
    seen = [brief(e.event) for e in m.map("vicidial_agent_log", row).mapped.events]
    row.update(wait_epoch=t + 60)
    seen += [brief(e.event) for e in m.map("vicidial_agent_log", row).mapped.events]
    row.update(talk_epoch=t + 90, uniqueid="9.9", lead_id=5)
    seen += [brief(e.event) for e in m.map("vicidial_agent_log", row).mapped.events]
    seen += [brief(e.event) for e in m.map("vicidial_agent_log", row).mapped.events]  # re-poll
    row.update(dispo_epoch=t + 150, talk_sec=60, dead_sec=5, dispo_sec=20, status="SALE")
    seen += [brief(e.event) for e in m.map("vicidial_agent_log", row).mapped.events]
    assert seen == [
        "agent.state agent_id=6001 state=paused reason=lunch",
        "agent.state agent_id=6001 state=available",
        "call.connected agent_id=6001 wait_ms=0",
        "agent.state agent_id=6001 state=on_call",
        "call.ended agent_id=6001 talk_ms=55000",
        "agent.state agent_id=6001 state=wrap_up",
        "call.wrapup agent_id=6001 wrapup_ms=20000 disposition=sale disposition_code=SALE"]



def insert(cur: Any, table: str, **row: Any) -> None:
    """One row by column name (the other columns keep their defaults)."""
    cur.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                tuple(row.values()))


def kpis_once(pipeline: Service, campaign: str, start: int, end: int,
              arrived: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The campaign's KPIs once `arrived` says the adapter's events are in, read again a second
    later (nothing still in flight)."""
    wait_until(lambda: arrived(kpis(pipeline, campaign, start, end)), 180, pipeline.logs)
    time.sleep(1)
    return kpis(pipeline, campaign, start, end)

@pytest.mark.integration
def test_vicidial_tables_into_exact_kpis(pipeline: Service, mariadb: MariaDB, tmp_path: Path) -> None:
    mariadb.create_database("asterisk", DDL)
    conn = mariadb.connect("asterisk")
    cur = conn.cursor()
    t0 = int(time.time()) - 2 * 3600
    cur.execute("INSERT INTO vicidial_campaigns VALUES ('E2EVICI', 'solar', 'RATIO')")
    cur.execute("INSERT INTO vicidial_statuses (status, sale, customer_contact) VALUES "
                "('PAID', 'Y', 'Y'), ('CHAT', 'N', 'Y')")

    def log(uid: str, t: int, status: str, user: str = "VDAD", length: int = 0) -> None:
        cur.execute("INSERT INTO vicidial_log (uniqueid, lead_id, list_id, campaign_id, call_date,"
                    " start_epoch, end_epoch, length_in_sec, status, phone_number, user) VALUES "
                    "(%s, 1, 101, 'E2EVICI', %s, %s, %s, %s, %s, '5551234567', %s)",
                    (uid, dt(t), t, t + length, length, status, user))
        cur.execute("INSERT INTO vicidial_dial_log (caller_code, lead_id, call_date, outbound_cid,"
                    " uniqueid) VALUES (%s, 1, %s, %s, %s)",
                    (f"V{uid}", dt(t), '"SOLAR" <2125550100>', uid))

    # agents log in (paused), become available
    for user in ("6001", "6002"):
        cur.execute("INSERT INTO vicidial_agent_log (user, event_time, campaign_id, pause_epoch,"
                    " wait_epoch, sub_status) VALUES (%s, %s, 'E2EVICI', %s, %s, 'LOGIN')",
                    (user, dt(t0 - 300), t0 - 300, t0 - 240))
    log("9001.1", t0, "PU")              # answered, at an agent (below), dispositioned later
    log("9001.2", t0 + 60, "NA", length=25)
    cur.execute("INSERT INTO vicidial_carrier_log (uniqueid, call_date, dialstatus, dial_time) "
                "VALUES ('9001.2', %s, 'BUSY', 25)", (dt(t0 + 60),))
    log("9001.3", t0 + 120, "AA", length=12)
    log("9001.4", t0 + 180, "DROP", length=6)
    log("9001.5", t0 + 240, "PU")
    for user, uid, talk in (("6001", "9001.1", t0 + 2), ("6002", "9001.5", t0 + 243)):
        insert(cur, "vicidial_agent_log", user=user, event_time=dt(t0 - 100), campaign_id="E2EVICI",
               wait_epoch=t0 - 100, talk_epoch=talk, uniqueid=uid, lead_id=1)
    (tmp_path / "a.toml").write_text('instance = "vici-e2e"\ntimezone = "UTC"\n')
    argv = ["vicidial", "--dsn", mariadb.dsn("asterisk"), "--config", "a.toml"]
    summary = adapt_into(pipeline, argv, tmp_path)
    # the calls end and are dispositioned: rows updated in place
    cur.execute("UPDATE vicidial_log SET status='PAID', user='6001', end_epoch=%s, length_in_sec=62"
                " WHERE uniqueid='9001.1'", (t0 + 62,))
    cur.execute("UPDATE vicidial_agent_log SET dispo_epoch=%s, talk_sec=60, dispo_sec=15,"
                " status='PAID' WHERE uniqueid='9001.1'", (t0 + 62,))
    cur.execute("UPDATE vicidial_log SET status='CHAT', user='6002' WHERE uniqueid='9001.5'")
    cur.execute("UPDATE vicidial_agent_log SET dispo_epoch=%s, talk_sec=40, dead_sec=4,"
                " dispo_sec=25, status='CHAT' WHERE uniqueid='9001.5'", (t0 + 283,))
    cur.execute("INSERT INTO vicidial_user_log (user, event, campaign_id, event_date, event_epoch)"
                " VALUES ('6002', 'LOGOUT', 'E2EVICI', %s, %s)", (dt(t0 + 400), t0 + 400))
    summary = adapt_into(pipeline, argv, tmp_path)
    second = summary["events"]
    assert second == {"call.ended": 2, "call.wrapup": 2, "agent.state": 3}
    summary = adapt_into(pipeline, argv, tmp_path)  # nothing changed: nothing new
    assert summary["events"] == {}
    conn.close()
    k = kpis_once(pipeline, "E2EVICI", t0 - 300, t0 + 600, lambda k: k["wrapups"] >= 2)
    assert (k["dialed"], k["answered"], k["connected"], k["machine_answered"], k["abandoned"],
            k["agent_connected"], k["handled"], k["conversions"], k["wrapups"]) == (
        5, 4, 3, 1, 1, 2, 2, 1, 2)
    assert k["avg_talk_seconds"] == pytest.approx((60 + 36) / 2)
    assert k["avg_wrapup_seconds"] == pytest.approx((15 + 25) / 2)
    assert k["abandon_rate"] == pytest.approx(1 / 3)
    d = pipeline.get("/api/v1/kpis", scope="caller_id:2125550100", window="24h")["kpis"]
    assert d["dialed"] == 5


@pytest.mark.integration
def test_vicidial_in_groups_are_inbound(pipeline: Service, mariadb: MariaDB, tmp_path: Path) -> None:
    """vicidial_closer_log rows are inbound calls (call.offered): a handled one and a drop
    count as offered / answered / abandoned inbound, never as outbound abandons."""
    mariadb.create_database("asterisk_in", DDL)
    conn = mariadb.connect("asterisk_in")
    cur = conn.cursor()
    t0 = int(time.time()) - 3 * 3600
    for uid, start, end, seconds, status, term in (("7001.1", t0, None, 0, "INBND", None),
                                                   ("7001.2", t0 + 60, t0 + 90, 30, "DROP", "CALLER")):
        insert(cur, "vicidial_closer_log", campaign_id="E2EINGRP", call_date=dt(start),
               start_epoch=start, end_epoch=end, length_in_sec=seconds, status=status, user="VDCL",
               queue_seconds=seconds, term_reason=term, uniqueid=uid)
    insert(cur, "vicidial_agent_log", user="6101", event_time=dt(t0 - 60), campaign_id="E2EINGRP",
           wait_epoch=t0 - 60, talk_epoch=t0 + 12, dispo_epoch=t0 + 112, talk_sec=100, dispo_sec=10,
           status="SALE", uniqueid="7001.1")
    (tmp_path / "a.toml").write_text('instance = "vici-in"\ntimezone = "UTC"\n')
    argv = ["vicidial", "--dsn", mariadb.dsn("asterisk_in"), "--config", "a.toml"]
    adapt_into(pipeline, argv, tmp_path)
    cur.execute("UPDATE vicidial_closer_log SET status='SALE', user='6101', end_epoch=%s,"
                " queue_seconds=12 WHERE uniqueid='7001.1'", (t0 + 112,))
    summary = adapt_into(pipeline, argv, tmp_path)
    assert summary["events"] == {}
    conn.close()
    k = kpis_once(pipeline, "E2EINGRP", t0 - 60, t0 + 300, lambda k: k["offered"] >= 2)
    assert (k["offered"], k["inbound_answered"], k["inbound_abandoned"], k["abandoned"],
            k["handled"], k["conversions"]) == (2, 1, 1, 0, 1, 1)
    assert k["avg_speed_of_answer_seconds"] == pytest.approx(12)
    assert k["service_level"] == pytest.approx(0.5)
    assert k["wrapups_by_code"] == {"SALE": 1}
