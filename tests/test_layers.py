"""The package's layers depend in one direction only (docs/architecture.md): nothing imports
from a layer above it, and the pure layers (contract, KPI arithmetic, state machines) do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "stream"
LAYER = {"settings": 0, "native": 0, "contract": 1, "kpi": 2, "sim": 2, "adapters": 2, "state": 3,
         "store": 4, "processing": 5, "readers": 6, "cli": 7}
IO_MODULES = {"redis", "faust", "aiokafka", "kafka", "aiohttp", "socket", "subprocess",
              "prometheus_client", "httpx", "requests", "urllib", "pymysql", "psycopg",
              "twilio", "signal"}
ADAPTER_IMPORTS = ("stream.adapters", "stream.contract", "stream.settings",
                   # pure kpi modules: the config file's error machinery, the event age limit
                   "stream.kpi.config_file", "stream.kpi.windows")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def test_no_import_from_a_higher_layer() -> None:
    problems = []
    for path in ROOT.rglob("*.py"):
        own = layer_of(path)
        if own not in LAYER:
            continue
        for mod in imports(path):
            parts = mod.split(".")
            if parts[0] != "stream" or len(parts) < 2:
                continue
            other = parts[1]
            if other in LAYER and LAYER[other] > LAYER[own]:
                problems.append(f"{path.relative_to(ROOT.parent)} imports {mod}")
            if own == "sim" and other not in ("sim", "contract", "settings"):
                problems.append(f"{path.relative_to(ROOT.parent)} (simulator) imports {mod}")
    assert not problems, "\n".join(problems)


def test_contract_kpi_and_state_are_pure() -> None:
    problems = []
    for layer in ("contract", "kpi", "state"):
        for path in (ROOT / layer).rglob("*.py"):
            for mod in imports(path):
                if mod.split(".")[0] in IO_MODULES:
                    problems.append(f"{path.relative_to(ROOT.parent)} imports {mod}")
    assert not problems, "\n".join(problems)


def test_contract_is_stdlib_only() -> None:
    for path in (ROOT / "contract").rglob("*.py"):
        for mod in imports(path):
            assert mod.split(".")[0] not in ("stream",) or mod.startswith("stream.contract"), (path, mod)


def test_adapters_import_only_contract_settings_and_themselves() -> None:
    problems = []
    for path in (ROOT / "adapters").rglob("*.py"):
        for mod in imports(path):
            if mod.split(".")[0] == "stream" and not any(
                    mod == a or mod.startswith(a + ".") for a in ADAPTER_IMPORTS):
                problems.append(f"{path.relative_to(ROOT.parent)} imports {mod}")
    assert not problems, "\n".join(problems)


def test_adapter_mappings_are_pure() -> None:
    """Everything in stream/adapters/ outside io/ maps records to events: no I/O, and no
    import of the readers and sinks."""
    problems = []
    for path in (ROOT / "adapters").rglob("*.py"):
        if "io" in path.relative_to(ROOT / "adapters").parts:
            continue
        for mod in imports(path):
            if mod.split(".")[0] in IO_MODULES or mod.startswith("stream.adapters.io"):
                problems.append(f"{path.relative_to(ROOT.parent)} imports {mod}")
    assert not problems, "\n".join(problems)
