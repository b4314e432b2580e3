"""Compile the pipeline process's hot modules with mypyc, in place (the optional native build).

    scripts/build-native [--root DIR] [--modules a,b,...] [--clean]

The modules are `stream.native.NATIVE_MODULES` (the one list). Each extension lands beside its
`.py` and takes precedence on import; `stream/native-build.json` records the sha256 of every
source compiled, so that a later edit is caught (`stream.native.require_fresh`) instead of
silently shadowed. `--clean` removes the extensions and the manifest: the package runs pure.

mypyc ships with mypy (the `native` extra); it needs a C compiler and the Python headers. It is
driven from here with setuptools' `build_ext` directly, not through `setup.py`/pyproject.toml
(setuptools would read our hatchling project table and reject its license string).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def native_module(root: Path) -> ModuleType:
    """`stream/native.py` of the tree being built, loaded by path (not whichever `stream` is importable)."""
    spec = importlib.util.spec_from_file_location("_callkpi_native", root / "stream" / "native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def clean(root: Path) -> list[Path]:
    """Remove every extension under stream/ (the package has no native code but this build's)
    and the manifest."""
    package = root / "stream"
    removed = [p for p in package.rglob("*.so") if p.is_file()]
    removed += [p for p in package.rglob("*.pyd") if p.is_file()]
    manifest = package / native_module(root).MANIFEST
    if manifest.exists():
        removed.append(manifest)
    for path in removed:
        path.unlink()
    return removed


def build(root: Path, modules: list[str]) -> dict[str, str]:
    """Compile `modules` of the tree at `root` in place; return module → sha256 of its source."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    native = native_module(root)
    clean(root)  # a module dropped from the list must not keep running compiled
    sources = {m: native.source_of(m, root / "stream") for m in modules}
    # hashed before compiling: an edit made during the build shows as stale, never as fresh
    digests = {m: hashlib.sha256(p.read_bytes()).hexdigest() for m, p in sources.items()}
    build_dir = root / "build" / "native"
    cwd = os.getcwd()
    os.chdir(root)  # mypyc and build_ext work with paths relative to the tree
    try:
        paths = [str(p.relative_to(root)) for p in sources.values()]
        # mypy's settings: the project's when the tree has them (a checkout), else what an
        # installed package needs (Dockerfile: site-packages, where some libraries ship no types)
        config = ["--config-file", "pyproject.toml"] if (root / "pyproject.toml").exists() else ["--ignore-missing-imports"]
        options = ["--cache-dir", str((build_dir / "mypy-cache").relative_to(root)), *config]
        extensions = mypycify([*options, *paths], target_dir=str(build_dir.relative_to(root)),
                              group_name=native.SHARED_LIBRARY)
        dist = Distribution({"name": "callkpi-native", "ext_modules": extensions,
                             "script_name": "build-native"})
        command = dist.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = str(build_dir / "temp")
        dist.run_command("build_ext")
    finally:
        os.chdir(cwd)
    manifest = {"sources": digests, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "python": platform.python_version(), "mypy": _mypy_version()}
    (root / "stream" / native.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    missing = [m for m in modules if native.extension_of(m, root / "stream") is None]
    if missing:
        raise SystemExit(f"build-native: no extension produced for {', '.join(missing)}")
    return digests


def _mypy_version() -> str:
    from mypy.version import __version__
    return __version__


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=REPO, help="the tree holding stream/ (default: this repository)")
    ap.add_argument("--modules", help="comma-separated modules instead of stream.native.NATIVE_MODULES "
                                      "(for measuring which set pays)")
    ap.add_argument("--clean", action="store_true", help="remove the native build: run pure Python")
    args = ap.parse_args()
    root = args.root.resolve()
    if args.clean:
        removed = clean(root)
        shutil.rmtree(root / "build" / "native", ignore_errors=True)
        print(f"build-native: removed {len(removed)} files; the package runs pure Python")
        return 0
    native = native_module(root)
    modules = args.modules.split(",") if args.modules else list(native.NATIVE_MODULES)
    started = time.monotonic()
    build(root, modules)
    status = native.native_status(root / "stream")
    print(f"build-native: {len(modules)} modules compiled in {time.monotonic() - started:.0f} s; {status.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
