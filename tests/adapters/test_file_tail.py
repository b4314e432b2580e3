"""The queue_log file reader on real files: growing, rotated by rename and by copytruncate,
read twice, SIGKILLed mid-file and resumed (events to --out files: the exact event sets)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.adapters.conftest import run_adapter, spawn_adapter
from tests.adapters.scenario import outbound_queue_log
from tests.harness import wait_until

CONFIG = """instance = "t1"
answered_by_default = "human"
[queue_log]
outbound_queues = ["sales"]
"""
BASE = int(time.time()) - 3 * 3600


def events_of(path: Path) -> dict[str, str]:
    """event_id → the event's JSON line; a repeated id must repeat the same bytes."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        eid = json.loads(line)["event_id"]
        assert out.setdefault(eid, line) == line, f"{eid} sent twice with different contents"
    return out


def clean_run(tmp: Path, lines: list[str]) -> dict[str, str]:
    d = tmp / "clean"
    d.mkdir()
    (d / "queue_log").write_text("\n".join(lines) + "\n")
    (d / "a.toml").write_text(CONFIG)
    r = run_adapter(None, ["queue-log", "--file", "queue_log", "--config", "a.toml",
                           "--out", "ev.jsonl"], d)
    assert r.returncode == 0, r.stderr
    return events_of(d / "ev.jsonl")


def checkpoint(d: Path) -> dict:
    p = d / "callkpi-adapt-queue-log-t1.checkpoint.json"
    return json.loads(p.read_text()) if p.exists() else {}


def test_follow_survives_rename_and_copytruncate_rotation(tmp_path: Path) -> None:
    lines, _ = outbound_queue_log(BASE, 60, "sales", ["2001", "2002"])
    expected = clean_run(tmp_path, lines)
    d = tmp_path / "follow"
    d.mkdir()
    (d / "a.toml").write_text(CONFIG)
    log = d / "queue_log"
    q = len(lines) // 4
    parts = [lines[:q], lines[q:2 * q], lines[2 * q:3 * q], lines[3 * q:]]
    log.write_text("\n".join(parts[0]) + "\n")
    proc = spawn_adapter(None, ["queue-log", "--file", "queue_log", "--follow", "--config",
                                "a.toml", "--out", "ev.jsonl", "--poll-interval", "0.1"], d)
    try:
        def caught_up() -> bool:
            pos = checkpoint(d).get("position", {})
            return pos.get("inode") == os.stat(log).st_ino and pos.get("offset") == log.stat().st_size
        wait_until(caught_up, 60, lambda: (d / "adapter.err").read_text()[-2000:])
        with open(log, "a") as f:  # grows, with a partial last line written in two steps
            text = "\n".join(parts[1]) + "\n"
            f.write(text[:-30])
            f.flush()
            time.sleep(0.5)
            f.write(text[-30:])
        wait_until(caught_up, 60)
        os.rename(log, d / "queue_log.1")  # logrotate `create`: rename, then a new file
        with open(d / "queue_log.1", "a") as f:  # Asterisk still writes to the old one a moment
            f.write("\n".join(parts[2][:5]) + "\n")
        log.write_text("\n".join(parts[2][5:]) + "\n")
        wait_until(caught_up, 60)
        # logrotate `copytruncate`: copy away, truncate in place, keep writing
        (d / "queue_log.2").write_bytes(log.read_bytes())
        with open(log, "r+") as f:
            f.truncate(0)
        time.sleep(2.0)  # the follower sees the file shrink (it polls every 0.1 s)
        log.write_text("\n".join(parts[3]) + "\n")
        wait_until(caught_up, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, (d / "adapter.err").read_text()[-2000:]
    got = events_of(d / "ev.jsonl")
    assert got == expected
    assert len((d / "ev.jsonl").read_text().splitlines()) == len(expected)  # nothing twice


def test_reading_twice_gives_the_same_events(tmp_path: Path) -> None:
    lines, _ = outbound_queue_log(BASE, 40, "sales", ["2003"])
    expected = clean_run(tmp_path, lines)
    d = tmp_path / "clean"
    r = run_adapter(None, ["queue-log", "--file", "queue_log", "--config", "a.toml", "--out",
                           "again.jsonl", "--from-start"], d)
    assert r.returncode == 0, r.stderr
    assert (d / "again.jsonl").read_text() == (d / "ev.jsonl").read_text()
    # resuming from the end reads nothing new
    r = run_adapter(None, ["queue-log", "--file", "queue_log", "--config", "a.toml", "--out",
                           "nothing.jsonl"], d)
    assert r.returncode == 0 and (d / "nothing.jsonl").read_text() == ""
    assert len(expected) == len((d / "ev.jsonl").read_text().splitlines())


def test_sigkill_mid_file_then_resume_equals_one_clean_run(tmp_path: Path) -> None:
    # 12,000 calls 20 s apart span 2.8 days: all in the past (the contract refuses the future)
    lines, _ = outbound_queue_log(BASE - 4 * 86400, 12000, "sales", ["2004", "2005", "2006"], "k")
    expected = clean_run(tmp_path, lines)
    d = tmp_path / "killed"
    d.mkdir()
    (d / "a.toml").write_text(CONFIG)
    (d / "queue_log").write_text("\n".join(lines) + "\n")
    size = (d / "queue_log").stat().st_size
    argv = ["queue-log", "--file", "queue_log", "--config", "a.toml", "--out", "ev.jsonl"]
    proc = spawn_adapter(None, argv, d)
    wait_until(lambda: bool(checkpoint(d)) or proc.poll() is not None, 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    killed_at = checkpoint(d)["position"]["offset"]
    assert 0 < killed_at < size, "the adapter finished before it could be killed"
    r = run_adapter(None, argv, d)
    assert r.returncode == 0, r.stderr
    assert events_of(d / "ev.jsonl") == expected


def test_old_checkpoint_is_refused_unless_forced(tmp_path: Path) -> None:
    lines, _ = outbound_queue_log(BASE, 8, "sales", ["2007"])
    clean_run(tmp_path, lines)
    d = tmp_path / "clean"
    cp = d / "callkpi-adapt-queue-log-t1.checkpoint.json"
    data = json.loads(cp.read_text())
    data["saved_at"] -= 80 * 3600
    cp.write_text(json.dumps(data))
    argv = ["queue-log", "--file", "queue_log", "--config", "a.toml", "--out", "x.jsonl"]
    r = run_adapter(None, argv, d)
    assert r.returncode == 2
    assert "80.0 h old" in r.stderr and "CALLKPI_STATE_HORIZON_HOURS=72" in r.stderr
    assert "--force" in r.stderr
    assert run_adapter(None, argv, d, env={"CALLKPI_STATE_HORIZON_HOURS": "100"}).returncode == 0
    assert run_adapter(None, [*argv, "--force"], d).returncode == 0
