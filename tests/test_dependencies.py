"""Every third-party package the service imports is declared in pyproject.toml (not merely
installed because another dependency pulls it in). The adapters (`stream/adapters/`) may also
import what their optional `adapters` extra declares: a center that only runs the service need
not install database drivers or Twilio's SDK."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return {_normal(re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0]) for spec in specs}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level(package: Path, skip: Path | None = None) -> set[str]:
    names: set[str] = set()
    for path in package.rglob("*.py"):
        if skip is not None and path.is_relative_to(skip):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"stream", "__future__"}


def _undeclared(modules: set[str], declared: set[str]) -> dict[str, list[str]]:
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in sorted(modules):
        dists = {_normal(d) for d in distributions.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    return undeclared


def test_every_imported_distribution_is_declared() -> None:
    service = _imported_top_level(REPO / "stream", skip=REPO / "stream" / "adapters")
    assert _undeclared(service, _declared()) == {}, "imported by stream/ but not in [project] dependencies"
    adapters = _imported_top_level(REPO / "stream" / "adapters")
    assert _undeclared(adapters, _declared("adapters")) == {}, \
        "imported by stream/adapters/ but neither a dependency nor in the adapters extra"
