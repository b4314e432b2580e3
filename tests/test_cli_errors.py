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
