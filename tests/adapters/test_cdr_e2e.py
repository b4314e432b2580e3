"""The cdr table (stock `start` and FreePBX `calldate` variants) in a real MariaDB, polled into
the real broker, worker, Redis and API: exact KPIs, failover legs as one attempt, exclusions, and
a long call's row inserted late (behind rows already read) still counted once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.adapters.conftest import MariaDB, adapt_into
from tests.adapters.test_queue_log_e2e import kpis
from tests.harness import Service, wait_until

pytestmark = pytest.mark.integration
STOCK = """CREATE TABLE cdr (accountcode VARCHAR(80), src VARCHAR(80), dst VARCHAR(80),
 dcontext VARCHAR(80), clid VARCHAR(80), channel VARCHAR(80), dstchannel VARCHAR(80),
 lastapp VARCHAR(80), lastdata VARCHAR(80), start DATETIME, answer DATETIME, end DATETIME,
 duration INT, billsec INT, disposition VARCHAR(45), amaflags VARCHAR(20), userfield VARCHAR(256),
 uniqueid VARCHAR(150), linkedid VARCHAR(150), peeraccount VARCHAR(80), sequence INT)"""
FREEPBX = """CREATE TABLE cdr (calldate DATETIME NOT NULL, clid VARCHAR(80), src VARCHAR(80),
 dst VARCHAR(80), dcontext VARCHAR(80), channel VARCHAR(80), dstchannel VARCHAR(80),
 lastapp VARCHAR(80), lastdata VARCHAR(80), duration INT, billsec INT, disposition VARCHAR(45),
 amaflags INT, accountcode VARCHAR(20), uniqueid VARCHAR(32), userfield VARCHAR(255),
 did VARCHAR(50), recordingfile VARCHAR(255), cnum VARCHAR(80), cnam VARCHAR(80),
 outbound_cnum VARCHAR(80), outbound_cnam VARCHAR(80), dst_cnam VARCHAR(80),
 linkedid VARCHAR(32), peeraccount VARCHAR(80), sequence INT)"""


def row(variant: str, start: datetime, *, uid: str, ext: str, dst: str, disposition: str,
        duration: int, billsec: int, campaign: str, lastapp: str = "Dial",
        dcontext: str = "from-internal", dstchannel: str = "PJSIP/trunk-01", seq: int = 0) -> dict:
    r = {"src": ext, "dst": dst, "dcontext": dcontext, "clid": f'"Agent" <{ext}>',
         "channel": f"PJSIP/{ext}-0000{seq:04d}", "dstchannel": dstchannel, "lastapp": lastapp,
         "lastdata": "x", "duration": duration, "billsec": billsec, "disposition": disposition,
         "accountcode": campaign, "uniqueid": uid, "sequence": seq}
    if variant == "stock":
        end = start + timedelta(seconds=duration)
        r.update(start=start, end=end, amaflags="DOCUMENTATION",
                 answer=end - timedelta(seconds=billsec) if billsec else None)
    else:
        r.update(calldate=start, amaflags=3)
    return r


def insert(db: MariaDB, database: str, rows: list[dict]) -> None:
    conn = db.connect(database)
    with conn.cursor() as cur:
        for r in rows:
            cols = ", ".join(f"`{k}`" for k in r)
            cur.execute(f"INSERT INTO cdr ({cols}) VALUES ({', '.join(['%s'] * len(r))})",
                        list(r.values()))
    conn.close()


@pytest.mark.parametrize("variant", ["stock", "freepbx"])
def test_cdr_table_to_exact_kpis(pipeline: Service, mariadb: MariaDB, tmp_path: Path,
                                 variant: str) -> None:
    campaign = f"e2e-cdr-{variant}"
    database = f"cdr_{variant}"
    mariadb.create_database(database, STOCK if variant == "stock" else FREEPBX)
    base = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=2)
    rows, answered, unanswered, talk = [], 0, 0, 0
    for i in range(30):
        t = base + timedelta(seconds=60 * i)
        ext = "4001" if i % 2 else "4002"
        kind = i % 3
        if kind == 0:
            rows.append(row(variant, t, uid=f"{variant}{i}", ext=ext, dst=f"55512{i:05d}",
                            disposition="ANSWERED", duration=40 + i % 5, billsec=30 + i % 5,
                            campaign=campaign))
            answered += 1
            talk += 30 + i % 5
        else:
            rows.append(row(variant, t, uid=f"{variant}{i}", ext=ext, dst=f"55512{i:05d}",
                            disposition="NO ANSWER" if kind == 1 else "BUSY", duration=20,
                            billsec=0, campaign=campaign))
            unanswered += 1
    t = base + timedelta(minutes=40)  # failover: the first trunk fails, the second answers
    rows.append(row(variant, t, uid=f"{variant}fo", ext="4001", dst="5559990000",
                    disposition="FAILED", duration=2, billsec=0, campaign=campaign, seq=1))
    rows.append(row(variant, t + timedelta(seconds=2), uid=f"{variant}fo", ext="4001",
                    dst="5559990000", disposition="ANSWERED", duration=70, billsec=60,
                    campaign=campaign, seq=2, dstchannel="PJSIP/trunk2-02"))
    answered += 1
    talk += 60
    rows.append(row(variant, t, uid=f"{variant}int", ext="4001", dst="4002", disposition="ANSWERED",
                    duration=100, billsec=90, campaign=campaign, dstchannel="PJSIP/4002-09"))
    rows.append(row(variant, t, uid=f"{variant}conf", ext="4002", dst="800", lastapp="ConfBridge",
                    disposition="ANSWERED", duration=3000, billsec=3000, campaign=campaign,
                    dstchannel=""))
    insert(mariadb, database, rows)
    (tmp_path / "a.toml").write_text('instance = "cdr-e2e"\ntimezone = "UTC"\n')
    argv = ["cdr", "--dsn", mariadb.dsn(database), "--config", "a.toml"]
    summary = adapt_into(pipeline, argv, tmp_path)
    first = summary
    assert first["records"] == {"mapped": 32, "excluded": 2}
    # a long call that started before the newest row is written when it ends: still read
    late = row(variant, base + timedelta(minutes=35), uid=f"{variant}late", ext="4002",
               dst="5558887777", disposition="ANSWERED", duration=1500, billsec=1490,
               campaign=campaign)
    insert(mariadb, database, [late])
    answered += 1
    talk += 1490
    summary = adapt_into(pipeline, argv, tmp_path)
    assert summary["records"] == {"mapped": 1}
    dialed = answered + unanswered
    start_s = int(base.replace(tzinfo=UTC).timestamp())
    end_s = start_s + 3 * 3600

    def arrived() -> bool:
        return kpis(pipeline, campaign, start_s, end_s)["attempts_completed"] >= dialed
    wait_until(arrived, 180, pipeline.logs)
    time.sleep(1.0)
    k = kpis(pipeline, campaign, start_s, end_s)
    assert (k["dialed"], k["answered"], k["attempts_completed"], k["agent_connected"],
            k["handled"]) == (dialed, answered, dialed, answered, answered)
    assert k["connected"] == 0 and k["connect_rate"] == 0  # CDRs carry no AMD verdict
    assert k["answer_rate"] == pytest.approx(answered / dialed)
    # ... and the API says so, for the wallboard to show the answer rate instead
    from tests.adapters.test_queue_log_e2e import span
    notes = pipeline.get("/api/v1/kpis", scope=f"campaign:{campaign}",
                         **span(start_s, end_s))["notes"]
    assert notes["connect_rate"].startswith("cannot be known: no answer in this scope has an "
                                            "answering-machine verdict")
    assert "abandon_rate" in notes
    assert k["avg_talk_seconds"] == pytest.approx(talk / answered)
