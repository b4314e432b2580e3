"""The roll-pointer prototype (`bench/roll_pointer.py`, docs/scaling.md) is exact: replaying the
same commits with hour, day and total fields rolled up from minutes ends with the same hashes
as today's commits (the script exits non-zero when a field differs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("every_minutes", [1, 5])
def test_rolled_up_hashes_equal_todays(tmp_path: Path, every_minutes: int) -> None:
    capture = tmp_path / "c.pkl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "commit_replay.py"), "capture",
                    "--agents", "40", "--hours", "0.5", "--batch", "40", "--out", str(capture)],
                   check=True, capture_output=True, timeout=300)
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "roll_pointer.py"), str(capture),
                          "--rounds", "1", "--every-minutes", str(every_minutes)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["scope_minutes_rolled"] > 0
