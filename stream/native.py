"""Which of the pipeline process's hot modules run compiled (the optional native build), and
whether any compiled one is stale.

`scripts/build-native` compiles the modules of `NATIVE_MODULES` with mypyc, in place: each
module's extension (`batch.cpython-311-x86_64-linux-gnu.so`) sits beside its `.py` and takes
precedence on import. The classic pitfall is an edited `.py` silently shadowed by the extension
built from its old text, so the build records the sha256 of every source it compiled in
`MANIFEST`, and `native_status` compares. The worker, `callkpi stack`/`demo` and the test
session refuse to start on a stale build (`require_fresh`). Pure Python is the default and the
fallback: nothing here needs a compiler, and with no extension present everything runs pure.

Bottom layer (stdlib only, imports nothing of the package): it must be answerable before any
compiled module is imported.
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import NamedTuple

NATIVE_MODULES: tuple[str, ...] = (
    "stream.state.agent_state",
    "stream.state.call_state",
    "stream.state.batch",
    "stream.state.deltas",
    "stream.state.encoding",
    "stream.kpi.contributions",
    "stream.contract.fast",
    "stream.store.commit",
    "stream.store.layout",
    "stream.processing.pipeline",
    "stream.processing.agent_parts",
)
"""The modules the native build compiles: the pipeline process's hot path (validate → load →
process → encode the commit). The one list; `scripts/build-native` reads it from here.
`stream.contract.events` stays pure: `fast.py` builds its `Event`s with `object.__new__`.
A value that may be an int is never annotated `float` in these modules (`commit.Amount`): mypyc
turns a value read through a `float` annotation into a float, and integer counters went out as
HINCRBYFLOAT "60.0" instead of HINCRBY "60" (tests/integration/test_native_build.py)."""

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST = "native-build.json"
"""In the package directory: what the last build compiled, each source's sha256."""
SHARED_LIBRARY = "stream._native"
"""mypyc's group name: its runtime and the compiled code live in `stream/_native__mypyc*.so`."""
BUILD_COMMAND = "scripts/build-native"


class NativeStatus(NamedTuple):
    compiled: tuple[str, ...]
    """modules that import compiled, from the source they were built from"""
    stale: tuple[str, ...]
    """modules with an extension that was not built from their current `.py` (or of unknown origin)"""

    @property
    def mode(self) -> str:
        """`native`, `partly native` or `pure`, as logs and benchmarks print it."""
        if not self.compiled and not self.stale:
            return "pure"
        return "native" if set(self.compiled) >= set(NATIVE_MODULES) else "partly native"

    def describe(self) -> str:
        if self.mode == "pure":
            return "pure Python (no native build)"
        return f"{self.mode}: {len(self.compiled)} modules compiled with mypyc"


class StaleNativeBuild(RuntimeError):
    """A compiled module would shadow a `.py` edited since the build."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_of(module: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The compiled extension of `module` for this interpreter, if one is there."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts[:-1])
    for suffix in EXTENSION_SUFFIXES:
        path = base / (parts[-1] + suffix)
        if path.exists():
            return path
    return None


def source_of(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    parts = module.split(".")[1:]
    return package_dir.joinpath(*parts).with_suffix(".py")


def read_manifest(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """module → sha256 of the source it was compiled from; {} if there is no (readable) manifest."""
    try:
        data = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data["sources"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def compiled_candidates(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every module that has an extension beside its `.py` (listed or left from an older list)."""
    found = []
    for path in package_dir.rglob("*.py"):
        rel = path.relative_to(package_dir).with_suffix("")
        module = ".".join(("stream", *rel.parts))
        if not module.endswith("__init__") and extension_of(module, package_dir) is not None:
            found.append(module)
    return sorted(found)


def native_status(package_dir: Path = PACKAGE_DIR) -> NativeStatus:
    """Which modules run compiled and which compiled ones are stale (source changed since the
    build, or no manifest entry to tell). Cheap: a dozen small files hashed."""
    manifest = read_manifest(package_dir)
    compiled: list[str] = []
    stale: list[str] = []
    for module in compiled_candidates(package_dir):
        source = source_of(module, package_dir)
        (compiled if manifest.get(module) == _sha256(source) else stale).append(module)
    return NativeStatus(tuple(compiled), tuple(stale))


def stale_message(status: NativeStatus, package_dir: Path = PACKAGE_DIR) -> str:
    names = ", ".join(str(source_of(m, package_dir).relative_to(package_dir.parent)) for m in status.stale)
    return (f"stale native build: {names} changed since it was compiled, and the compiled module "
            f"would run instead of the edited source. Rebuild with `{BUILD_COMMAND}`, or remove "
            f"the native build with `{BUILD_COMMAND} --clean` to run pure Python.")


def require_fresh(package_dir: Path = PACKAGE_DIR) -> NativeStatus:
    """The status, or `StaleNativeBuild` naming the stale modules and the fix."""
    status = native_status(package_dir)
    if status.stale:
        raise StaleNativeBuild(stale_message(status, package_dir))
    return status


def main() -> int:
    """`python -m stream.native`: print the status; exit 1 on a stale build."""
    status = native_status()
    print(status.describe())
    for module in status.compiled:
        print(f"  compiled  {module}")
    if status.stale:
        print(stale_message(status), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
