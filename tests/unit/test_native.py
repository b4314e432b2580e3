"""stream.native tells compiled from stale modules by the manifest the build writes (no compiler
needed here: an extension is only looked at, never imported)."""

from __future__ import annotations

import hashlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from stream.native import MANIFEST, NATIVE_MODULES, StaleNativeBuild, native_status, require_fresh, source_of


def package(tmp_path: Path, modules: tuple[str, ...] = NATIVE_MODULES, manifest: bool = True) -> Path:
    """A package tree whose `modules` have a (dummy) extension beside their source."""
    root = tmp_path / "stream"
    digests = {}
    for module in modules:
        source = source_of(module, root)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
        source.with_name(source.stem + EXTENSION_SUFFIXES[0]).write_bytes(b"\x7fELF")
        digests[module] = hashlib.sha256(source.read_bytes()).hexdigest()
    (root / "other.py").write_text("# never compiled\n")
    if manifest:
        (root / MANIFEST).write_text(json.dumps({"sources": digests}))
    return root


def test_no_extensions_is_pure(tmp_path: Path) -> None:
    root = tmp_path / "stream"
    root.mkdir()
    (root / "a.py").write_text("")
    assert native_status(root).mode == "pure" and require_fresh(root).compiled == ()


def test_a_fresh_build_is_native(tmp_path: Path) -> None:
    status = require_fresh(package(tmp_path))
    assert status.mode == "native" and set(status.compiled) == set(NATIVE_MODULES) and status.stale == ()


def test_part_of_the_list_compiled_is_partly_native(tmp_path: Path) -> None:
    assert native_status(package(tmp_path, NATIVE_MODULES[:2])).mode == "partly native"


def test_an_edited_source_is_stale_and_refused_with_the_fix(tmp_path: Path) -> None:
    root = package(tmp_path)
    edited = source_of("stream.state.batch", root)
    edited.write_text(edited.read_text() + "x = 1\n")
    status = native_status(root)
    assert status.stale == ("stream.state.batch",) and "stream.state.batch" not in status.compiled
    with pytest.raises(StaleNativeBuild) as caught:
        require_fresh(root)
    message = str(caught.value)
    assert "stream/state/batch.py changed since it was compiled" in message
    assert "scripts/build-native" in message and "--clean" in message


def test_an_extension_without_a_manifest_is_stale(tmp_path: Path) -> None:
    status = native_status(package(tmp_path, manifest=False))
    assert status.compiled == () and set(status.stale) == set(NATIVE_MODULES)


def test_an_extension_left_from_an_older_list_is_checked_too(tmp_path: Path) -> None:
    root = package(tmp_path, ("stream.state.batch", "stream.processing.offload"))
    source_of("stream.processing.offload", root).write_text("# edited\n")
    assert native_status(root).stale == ("stream.processing.offload",)
