"""bench/results.json: each bench script merges its own key and keeps what others wrote
(a throughput run over some of the systems used to replace the table of all of them)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from results import save_result  # noqa: E402
from run import PEERS, WORKER, result_key  # noqa: E402


def test_a_key_is_merged_beside_the_others(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"throughput": {"systems": "all"}, "scrape": {"s": 1}}))
    save_result("conflicts", {"runs": [1]}, path=path)
    assert json.loads(path.read_text()) == {"throughput": {"systems": "all"}, "scrape": {"s": 1},
                                            "conflicts": {"runs": [1]}}


def test_a_sitting_measured_again_keeps_the_earlier_ones(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    save_result("conflicts", {"runs": [1]}, keep_earlier=True, path=path)
    save_result("conflicts", {"runs": [2]}, keep_earlier=True, path=path)
    save_result("conflicts", {"runs": [3]}, keep_earlier=True, path=path)
    assert json.loads(path.read_text())["conflicts"] == {
        "runs": [3], "earlier": [{"runs": [1]}, {"runs": [2]}]}


def test_an_entry_under_a_key(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    save_result("commit_cost", {"us": 1}, under="abc", path=path)
    save_result("commit_cost", {"us": 2}, under="def", path=path)
    assert json.loads(path.read_text()) == {"commit_cost": {"abc": {"us": 1}, "def": {"us": 2}}}


def test_a_throughput_run_over_some_systems_does_not_replace_the_full_table() -> None:
    def key(what: str, systems: list[str], rate: float = 2000) -> str:
        return result_key(argparse.Namespace(what=what, systems=systems, rate=rate))

    assert key("throughput", [*PEERS, WORKER]) == "throughput"
    assert key("throughput", [WORKER, "quix"]) == "throughput_quix_callkpi"
    assert key("latency", [*PEERS, WORKER], 5000) == "latency_5000"
    assert key("day", [*PEERS, WORKER]) == "day"
