"""`callkpi series` output: a readable table and CSV, one row per point (and with a comparison,
the value before and the change next to each KPI)."""

from __future__ import annotations

import csv
import io

import pytest

from stream.cli.commands import UsageError
from stream.cli.main import build_parser
from stream.cli.series import params_of, to_csv, to_table

DATA = {
    "scope": "center", "window": "week", "from": "2026-11-30T00:00:00.000+01:00",
    "to": "2026-12-01T10:00:00.000+01:00", "step": "1d", "compare": "previous_week",
    "timezone": "Europe/Berlin", "kpis": ["handled", "connect_rate"],
    "points": [
        {"from": "2026-11-30T00:00:00.000+01:00", "to": "2026-12-01T00:00:00.000+01:00",
         "kpis": {"handled": 120, "connect_rate": 0.25},
         "compare": {"from": "a", "to": "b", "exact": True, "kpis": {"handled": 100, "connect_rate": None},
                     "change": {"handled": 20, "connect_rate": None},
                     "change_ratio": {"handled": 0.2, "connect_rate": None}}},
    ],
}


def test_csv_has_a_row_per_point_with_before_and_change() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(DATA))))
    assert rows[0] == ["from", "to", "handled", "handled before", "handled change",
                       "connect_rate", "connect_rate before", "connect_rate change"]
    assert rows[1][2:] == ["120", "100", "20", "0.25", "", ""]


def test_table_is_aligned_and_says_what_it_shows() -> None:
    text = to_table(DATA)
    lines = text.splitlines()
    assert "step 1d" in lines[0] and "Europe/Berlin" in lines[0] and "previous_week" in lines[0]
    assert len({len(line) for line in lines[1:]}) == 1  # every row as wide as the header
    assert "–" in lines[-1]  # null shown as a dash


def test_arguments() -> None:
    args = build_parser().parse_args(["series", "--scope", "campaign:c1", "--step", "1w",
                                      "--window", "quarter", "--csv"])
    assert params_of(args) == {"scope": "campaign:c1", "step": "1w", "window": "quarter"}
    with pytest.raises(UsageError):
        params_of(build_parser().parse_args(["series", "--window", "month", "--from", "x"]))
