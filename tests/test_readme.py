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
    out = {}
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
