"""Configuration-file text for tests, built from Python values: a test names only the keys it is
about, and an error test marks the line the error must name (`# <-`, see
tests/unit/test_config_file.py::marked_line)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

Value = str | int | float | bool | datetime | list[str] | None


def toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the ASCII and escapes tests use
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def toml_table(header: str, mark: str | None = None, **fields: Value) -> str:
    """One `[[header]]` table; a None value leaves its key out. `mark` is the key (or the header)
    whose line carries `# <-`."""
    lines = [f"[[{header}]]" + ("  # <-" if mark == header else "")]
    lines += [f"{key} = {toml_value(value)}" + ("  # <-" if mark == key else "")
              for key, value in fields.items() if value is not None]
    return "\n".join(lines) + "\n"


def sha256_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token(name: str, token: str, scopes: list[str] | None = None) -> str:
    """The `[[api.tokens]]` entry of a bearer token (stored as its hash, as in production)."""
    return toml_table("api.tokens", name=name, sha256=sha256_of(token), scopes=scopes)


def config_text(*tables: str, timezone: str = "UTC") -> str:
    return "\n".join([f'timezone = "{timezone}"\n', *tables])
