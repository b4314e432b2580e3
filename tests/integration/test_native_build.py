"""The native build (scripts/build-native) changes speed, never results: the real pipeline over a
simulated run with faults commits the same bytes, batch for batch, compiled and pure; and a
compiled module older than its `.py` stops the worker and the test session.

Builds into a copy of the package (never the repository's own tree): about a minute of gcc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stream.native import NATIVE_MODULES, source_of

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
RUN = [sys.executable, "-m", "stream.processing.memory_run", "--agents", "20", "--hours", "1",
       "--batch", "200", "--digests"]


def copy_tree(dest: Path, with_tests: bool = False) -> Path:
    """The repository's package (and config) at `dest`, without any native build of its own."""
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "native-build.json", "__pycache__")
    shutil.copytree(REPO / "stream", dest / "stream", ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")  # mypy's settings, for mypyc
    if with_tests:
        shutil.copytree(REPO / "tests", dest / "tests", ignore=ignore)
    return dest


def run_in(tree: Path, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`argv` with `tree`'s package first on the path (and one hash seed for both runs)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def native_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_tree(tmp_path_factory.mktemp("native"), with_tests=True)
    built = subprocess.run([sys.executable, str(REPO / "scripts" / "native_build.py"), "--root", str(tree)],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return tree


def digests(tree: Path) -> dict[str, object]:
    done = run_in(tree, RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_compiled_and_pure_pipelines_commit_the_same_bytes(native_tree: Path, tmp_path: Path) -> None:
    native = digests(native_tree)
    pure = digests(copy_tree(tmp_path / "pure"))
    assert native["native"] == "native" and pure["native"] == "pure"
    assert str(native["pipeline"]).startswith(str(native_tree)) and str(native["pipeline"]).endswith(".so")
    assert str(pure["pipeline"]).endswith("pipeline.py")
    ours, theirs = native["digests"], pure["digests"]
    assert isinstance(ours, list) and isinstance(theirs, list) and len(theirs) > 10
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), None)
    assert first is None and len(ours) == len(theirs), f"commit {first} differs (of {len(theirs)})"


def test_the_worker_s_pipeline_process_runs_compiled(native_tree: Path) -> None:
    """What the worker hands its spawned pipeline process (thresholds, settings, batches as
    columns) survives pickling compiled, and the process commits a batch to Redis. The
    equivalence above runs the pipeline in one process and did not see a frozen dataclass of a
    compiled module fail to unpickle, which stopped every native worker at its first batch."""
    session = run_in(native_tree, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   "tests/unit/test_offload_process.py", "tests/unit/test_offload_columns.py"],
                     timeout=300)
    assert session.returncode == 0, session.stdout[-3000:] + session.stderr[-3000:]
    status = run_in(native_tree, [sys.executable, "-m", "stream.native"])
    assert status.stdout.startswith("native: "), status.stdout + status.stderr


def test_a_stale_build_stops_the_worker_and_the_test_session(native_tree: Path) -> None:
    edited = source_of(NATIVE_MODULES[-1], native_tree / "stream")
    original = edited.read_text()
    edited.write_text(original + "\n# edited after the build\n")
    try:
        worker = run_in(native_tree, [sys.executable, "-m", "stream.cli.main", "worker"], timeout=120)
        assert worker.returncode == 2, worker.stderr[-3000:]
        rel = str(edited.relative_to(native_tree))
        assert f"callkpi worker: stale native build: {rel} changed" in worker.stderr
        assert "scripts/build-native" in worker.stderr
        session = run_in(native_tree, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       "tests/test_layers.py"], timeout=120)
        assert session.returncode == pytest.ExitCode.USAGE_ERROR, session.stdout[-3000:]
        assert f"stale native build: {rel} changed" in session.stdout + session.stderr
    finally:
        edited.write_text(original)
    status = run_in(native_tree, [sys.executable, "-m", "stream.native"])
    assert status.returncode == 0 and status.stdout.startswith("native: "), status.stdout + status.stderr
