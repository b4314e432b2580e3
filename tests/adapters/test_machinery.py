"""The common machinery: config errors, the time shift, the adapter's /metrics, and bad input
dead-lettered to Kafka's dialer.adapter.dlq with its raw bytes (real broker)."""

from __future__ import annotations

import base64
import signal
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from stream.adapters.config import ConfigError, parse_adapter_config
from stream.adapters.core import parse_shift, shift_ms
from stream.cli.embedded import free_port
from tests.adapters.conftest import run_adapter, spawn_adapter
from tests.harness import Service, topic_records, wait_until


@pytest.mark.parametrize("text,message", [
    ('timezone = "Mars/Olympus"\n', "a.toml:1: timezone: unknown time zone 'Mars/Olympus'"),
    ('answered_by_default = "machine"\n', "a.toml:1: answered_by_default: must be one of human, unknown"),
    ('[campaigns]\ndefault = "x"\nmapp = {}\n', "a.toml:3: campaigns.mapp: unknown key 'mapp' (did you mean 'map'?)"),
    ('[dispositions]\nmap = { SALE = "sold" }\n', "a.toml:2: dispositions.map.SALE: unknown value 'sold'"),
    ('[cdr]\ncolumns = ["uniqueid", "linkid"]\n', "a.toml:2: cdr.columns: unknown optional column 'linkid'"),
    ('dest_region_digits = 10\n', "a.toml:1: dest_region_digits: at most 6 digits"),
    ('instance = "a b"\n', "a.toml:1: instance: must be at most 40 letters"),
    ('[queue_log\n', "a.toml:1:"),
])
def test_config_errors_name_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_adapter_config(text, source="a.toml")
    assert str(e.value).startswith(message), str(e.value)


def test_cli_reports_a_config_error_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[agents]\nmap = { "1001" = 5 }\n')
    (tmp_path / "q").write_text("")
    r = run_adapter(None, ["queue-log", "--file", "q", "--config", "a.toml", "--out", "x"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == ("callkpi adapt: a.toml:2: agents.map.1001: must be a non-empty "
                                "string, got int 5")


def test_time_shift_keeps_local_wall_clock_across_dst() -> None:
    ny = ZoneInfo("America/New_York")
    assert (parse_shift("2w"), parse_shift("7d"), parse_shift("-1 week")) == (14, 7, -7)
    with pytest.raises(ValueError):
        parse_shift("36h")
    # 2026-10-30 09:00 EDT (13:00Z) + 7 days = 2026-11-06 09:00 EST (14:00Z): same wall clock
    before = 1793365200_000
    assert shift_ms(before, 7, ny) == before + 7 * 86400_000 + 3600_000


@pytest.mark.integration
def test_metrics_and_dead_letters(pipeline: Service, tmp_path: Path) -> None:
    now = int(time.time())
    lines = [f"{now - 100}|NONE|NONE|PJSIP/8001|AGENTLOGIN|PJSIP/8001",
             "garbage without fields",
             f"{now - 90}|m.1|mq|NONE|ENTERQUEUE||5550001|1",
             f"{now - 80}|NONE|NONE|PJSIP/8001|QUEUESTART|"]
    (tmp_path / "queue_log").write_text("\n".join(lines) + "\n")
    port = free_port()
    proc = spawn_adapter(pipeline, ["queue-log", "--file", "queue_log", "--follow",
                                    "--metrics-port", str(port), "--poll-interval", "0.2"],
                         tmp_path)
    try:
        def scraped() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return ""
        wait_until(lambda: "callkpi_adapter_checkpoint_saved" in scraped()
                   and 'result="bad"' in scraped(), 60, lambda: (tmp_path / "adapter.err").read_text())
        text = scraped()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    for line in ('callkpi_adapter_records_total{result="mapped",source="queue-log"} 2.0',
                 'callkpi_adapter_records_total{result="ignored",source="queue-log"} 1.0',
                 'callkpi_adapter_records_total{result="bad",source="queue-log"} 1.0',
                 'callkpi_adapter_events_emitted_total{source="queue-log",type="agent.state"} 1.0',
                 'callkpi_adapter_events_emitted_total{source="queue-log",type="call.offered"} 1.0',
                 'callkpi_adapter_bad_input_total{reason="short_line",source="queue-log"} 1.0'):
        assert line in text, line
    lag = next(float(x.split()[-1]) for x in text.splitlines()
               if x.startswith("callkpi_adapter_source_lag_seconds"))
    assert 85 <= lag < 600
    assert any(x.startswith("callkpi_adapter_checkpoint_age_seconds") for x in text.splitlines())
    records = [r for r in topic_records(pipeline.infra.bootstrap, "dialer.adapter.dlq")
               if r["reason"] == "short_line"
               and r["source"]["adapter"] == "ql" and r["source"]["instance"] == "default"]
    assert records and base64.b64decode(records[-1]["original_b64"]) == b"garbage without fields"
    assert records[-1]["source"]["position"]["offset"] > 0


def test_the_example_config_is_valid() -> None:
    from stream.adapters.config import load_adapter_config
    root = Path(__file__).resolve().parents[2]
    c = load_adapter_config(root / "examples" / "adapter.toml")
    assert (c.instance, c.campaign("sales-q"), c.agent("PJSIP/1001"), c.team("alice")) == (
        "pbx1", "solar", "alice", "north")
