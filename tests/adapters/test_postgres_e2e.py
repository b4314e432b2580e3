"""The database sources on PostgreSQL (Asterisk's realtime queue_log and cdr tables are often
there): a real server, polled into the real pipeline, exact KPIs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.adapters.conftest import Postgres, adapt_into
from tests.adapters.scenario import INSERT_QUEUE_LOG, outbound_queue_log, queue_log_row
from tests.adapters.test_queue_log_e2e import assert_exact, config, kpis, wait_for
from tests.harness import Service, wait_until

pytestmark = pytest.mark.integration
QUEUE_LOG = """CREATE TABLE queue_log (id BIGSERIAL PRIMARY KEY, time VARCHAR(26),
 callid VARCHAR(80), queuename VARCHAR(256), agent VARCHAR(80), event VARCHAR(32),
 data1 VARCHAR(100), data2 VARCHAR(100), data3 VARCHAR(100), data4 VARCHAR(100),
 data5 VARCHAR(100))"""
CDR = """CREATE TABLE cdr (accountcode VARCHAR(80), src VARCHAR(80), dst VARCHAR(80),
 dcontext VARCHAR(80), clid VARCHAR(80), channel VARCHAR(80), dstchannel VARCHAR(80),
 lastapp VARCHAR(80), lastdata VARCHAR(80), start TIMESTAMP, answer TIMESTAMP, "end" TIMESTAMP,
 duration INTEGER, billsec INTEGER, disposition VARCHAR(45), amaflags VARCHAR(20),
 userfield VARCHAR(256), uniqueid VARCHAR(150), linkedid VARCHAR(150), peeraccount VARCHAR(80),
 sequence INTEGER)"""


def test_realtime_queue_log_on_postgres(pipeline: Service, postgres: Postgres, tmp_path: Path) -> None:
    base = int(time.time()) - 4 * 3600
    lines, e = outbound_queue_log(base, 40, "q-pg", ["5001", "5002"], "p")
    postgres.create_database("asterisk_pg", QUEUE_LOG)
    with postgres.connect("asterisk_pg") as conn:
        for ln in lines:
            conn.execute(INSERT_QUEUE_LOG, queue_log_row(ln, UTC))
    (tmp_path / "a.toml").write_text(config("e2e-pg", "q-pg", "pg1"))
    summary = adapt_into(pipeline, ["queue-log", "--dsn", postgres.dsn("asterisk_pg"), "--config",
                               "a.toml"], tmp_path)
    assert sum(summary["records"].values()) == len(lines)
    assert_exact(wait_for(pipeline, "e2e-pg", base, base + 20 * 40 + 60, e), e)


def test_cdr_table_on_postgres(pipeline: Service, postgres: Postgres, tmp_path: Path) -> None:
    postgres.create_database("cdr_pg", CDR)
    base = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(hours=3)
    with postgres.connect("cdr_pg") as conn:
        for i in range(6):
            t = base + timedelta(minutes=i)
            billsec = 50 if i % 2 == 0 else 0
            conn.execute(
                'INSERT INTO cdr (accountcode, src, dst, dcontext, channel, dstchannel, lastapp, '
                'start, answer, "end", duration, billsec, disposition, uniqueid) VALUES '
                "(%s, '4101', %s, 'from-internal', 'PJSIP/4101-01', 'PJSIP/trunk-02', 'Dial', "
                "%s, %s, %s, %s, %s, %s, %s)",
                ("e2e-cdr-pg", f"555700{i:04d}", t,
                 t + timedelta(seconds=10) if billsec else None,
                 t + timedelta(seconds=10 + billsec), 10 + billsec, billsec,
                 "ANSWERED" if billsec else "BUSY", f"pg{i}"))
    (tmp_path / "a.toml").write_text('instance = "cdr-pg"\ntimezone = "UTC"\n')
    adapt_into(pipeline, ["cdr", "--dsn", postgres.dsn("cdr_pg"), "--config", "a.toml"], tmp_path)
    start_s = int(base.replace(tzinfo=UTC).timestamp())
    wait_until(lambda: kpis(pipeline, "e2e-cdr-pg", start_s, start_s + 600)["attempts_completed"] >= 6,
               180, pipeline.logs)
    time.sleep(1)
    k = kpis(pipeline, "e2e-cdr-pg", start_s, start_s + 600)
    assert (k["dialed"], k["answered"], k["handled"], k["avg_talk_seconds"]) == (6, 3, 3, 50)
