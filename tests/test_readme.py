"""The README restates a few facts the code defines: they must agree (a test, not a hope)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from stream.settings import PREFIX, Settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _env_table() -> dict[str, str]:
    """variable -> its default cell, from the README's table of environment variables.

    A row may name several variables (`A` / `B`) with their defaults in the same order.
    """
    rows = re.findall(r"^\| (`CALLKPI_[^|]+) \| ([^|]+) \|", README, re.M)
    assert rows, "the README has no table of CALLKPI_* variables"
    out: dict[str, str] = {}
    for names, defaults in rows:
        variables = re.findall(r"`(CALLKPI_\w+)`", names)
        values = [d.strip() for d in defaults.split(" / ")] if len(variables) > 1 else [defaults.strip()]
        assert len(values) == len(variables), f"row {names}: {len(variables)} variables, {len(values)} defaults"
        out.update(zip(variables, values, strict=True))
    return out


def test_the_readme_documents_every_setting_and_only_settings():
    documented = set(_env_table())
    defined = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    assert defined - documented == set(), "settings missing from the README's table of environment variables"
    assert documented - defined == set(), "README documents variables stream/settings.py does not read"


def test_the_readmes_literal_defaults_are_the_settings_defaults():
    defaults = {PREFIX + f.name.upper(): f.default for f in dataclasses.fields(Settings)}
    for variable, cell in _env_table().items():
        literal = re.fullmatch(r"`([^`]*)`", cell)
        if literal is None:
            continue  # described in words (e.g. "host:pid", "–" for unset)
        default = defaults[variable]
        text = literal.group(1)
        if isinstance(default, (int, float)):
            assert float(text) == default, f"{variable}: README says {text}, settings say {default}"
        else:
            assert text == default, f"{variable}: README says {text!r}, settings say {default!r}"


def _shell_commands(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_readmes_test_command_is_the_one_ci_runs():
    block = re.search(r"^## Run the tests.*?\n```bash\n(.*?)```", README, re.M | re.S)
    assert block, "the README has no 'Run the tests' section with a bash block"
    assert block.group(1).strip() == "scripts/test"
    assert _shell_commands(REPO / ".ci" / "run")[-1] == "exec scripts/test", ".ci/run must end by running scripts/test"


def test_the_test_command_runs_ruff_then_mypy_then_pytest():
    lines = _shell_commands(REPO / "scripts" / "test")
    order = [next(i for i, line in enumerate(lines) if line.startswith(f".venv/bin/{tool}"))
             for tool in ("ruff", "mypy", "pytest")]
    assert order == sorted(order), "static checks run before pytest"
    assert "chromium-driver" not in (REPO / "scripts" / "test").read_text(), "nothing uses chromium-driver"
