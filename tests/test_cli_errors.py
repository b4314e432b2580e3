"""The `callkpi` command reports a user's mistake in one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stream.cli.main import main
from stream.settings import Settings, SettingsError


@pytest.mark.parametrize("variable, value", [("CALLKPI_PARTITIONS", "four"), ("CALLKPI_HTTP_PORT", "80.5"),
                                             ("CALLKPI_STATE_CACHE_MB", "lots")])
def test_a_bad_setting_is_one_line_naming_the_variable(variable, value, monkeypatch, capsys):
    monkeypatch.setenv(variable, value)
    assert main(["kpis", "--scope", "center"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{variable}={value!r}" in err, err


def test_the_error_is_a_settings_error_for_callers_that_catch_it():
    with pytest.raises(SettingsError, match="CALLKPI_PARTITIONS='x': expected an integer"):
        Settings.from_env({"CALLKPI_PARTITIONS": "x"})


def test_from_the_shell_too():
    proc = subprocess.run([sys.executable, "-m", "stream.cli.main", "kpis"], capture_output=True, text=True,
                          env={"CALLKPI_BATCH_MAX": "-", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["callkpi kpis: CALLKPI_BATCH_MAX='-': expected an integer"]


@pytest.mark.parametrize("variable, value, expected", [
    ("CALLKPI_STOP_TIMEOUT_S", "0", "a number above 0"),
    ("CALLKPI_STOP_TIMEOUT_S", "-5", "a number above 0"),
    ("CALLKPI_STOP_TIMEOUT_S", "nan", "a number above 0"),
    ("CALLKPI_SESSION_TIMEOUT_S", "inf", "a number above 0"),
    ("CALLKPI_COMMIT_INTERVAL_S", "0", "a number above 0"),
    ("CALLKPI_STATE_HORIZON_HOURS", "-1", "a number above 0"),
    ("CALLKPI_AGENT_STATE_HOURS", "0", "a number above 0"),
    ("CALLKPI_STATE_CACHE_MB", "-1", "a number of at least 0"),
    ("CALLKPI_PARTITIONS", "0", "an integer of at least 1"),
    ("CALLKPI_BATCH_MAX", "0", "an integer of at least 1"),
    ("CALLKPI_BATCH_HOLD_MS", "-250", "an integer of at least 0"),
    ("CALLKPI_HTTP_PORT", "70000", "an integer from 1 to 65535"),
    ("CALLKPI_PIPELINE_PROCESS", "2", "0 or 1"),
    ("CALLKPI_ALLOW_REDIS_EVICTION", "-1", "0 or 1"),
])
def test_a_setting_out_of_its_range_is_refused_naming_the_range(variable, value, expected):
    # a stop timeout of 0 would end every stop at once, a NaN one never; a hold below 0 or a
    # batch of 0 records would stall the worker: refused where the value is read, not at use
    with pytest.raises(SettingsError) as e:
        Settings.from_env({variable: value})
    assert str(e.value) == f"{variable}={value!r}: expected {expected}"


def test_the_range_holds_for_settings_built_in_code_too():
    with pytest.raises(SettingsError, match="CALLKPI_BATCH_MAX=0: expected an integer of at least 1"):
        Settings(batch_max=0)


def test_values_at_the_ends_of_their_ranges_are_taken():
    s = Settings.from_env({"CALLKPI_BATCH_HOLD_MS": "0", "CALLKPI_HTTP_PORT": "65535", "CALLKPI_STATE_CACHE_MB": "0",
                           "CALLKPI_PIPELINE_PROCESS": "0", "CALLKPI_STOP_TIMEOUT_S": "0.5"})
    assert (s.batch_hold_ms, s.http_port, s.state_cache_mb, s.pipeline_process, s.stop_timeout_s) == (0, 65535, 0.0, 0, 0.5)
