"""Fixtures of the adapter tests: a throw-away MariaDB server (Debian's mariadb-server) and one
real pipeline (broker, worker, Redis, API) shared by the end-to-end tests (each uses its own
campaigns and agents, so their KPIs do not mix)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.cli.embedded import free_port
from tests.harness import Service, running_service


class MariaDB:
    def __init__(self, port: int, proc: subprocess.Popen, datadir: Path) -> None:
        self.port, self.proc, self.datadir = port, proc, datadir

    def dsn(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None):  # type: ignore[no-untyped-def]
        import pymysql
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=database,
                               autocommit=True)

    def create_database(self, name: str, ddl: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}`")
                cur.execute(f"USE `{name}`")
                for stmt in filter(str.strip, ddl.split(";")):
                    cur.execute(stmt)
        finally:
            conn.close()


def _binary(name: str) -> str:
    for d in (None, "/usr/sbin", "/usr/bin"):
        found = shutil.which(name, path=d)
        if found:
            return found
    raise RuntimeError(f"{name} not found: install Debian's mariadb-server (.ci/run does)")


@contextlib.contextmanager
def _server(proc: subprocess.Popen[bytes], d: Path, connect: Callable[[], Any],
            failure: Callable[[], str]) -> Iterator[None]:
    """A database server started as `proc` (data in `d`): once it takes connections (60 s at
    most), until the block ends; then stopped and its data removed."""
    deadline = time.monotonic() + 60
    while True:
        try:
            connect().close()
            break
        except Exception as err:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(failure()) from err
            time.sleep(0.2)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    d = tmp_path_factory.mktemp("mariadb")
    subprocess.run([_binary("mariadb-install-db"), "--no-defaults", f"--datadir={d}/data",
                    "--auth-root-authentication-method=normal", "--user=root"],
                   check=True, capture_output=True)
    port = free_port()
    log = open(d / "mariadbd.log", "ab")
    proc = subprocess.Popen([_binary("mariadbd"), "--no-defaults", f"--datadir={d}/data",
                             f"--port={port}", f"--socket={d}/sock", "--bind-address=127.0.0.1",
                             "--user=root", "--skip-grant-tables", "--skip-log-bin"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    db = MariaDB(port, proc, d)
    with _server(proc, d, db.connect, lambda: f"mariadbd did not start: {(d / 'mariadbd.log').read_text()[-2000:]}"):
        yield db


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("adapters-e2e")) as svc:
        yield svc


def run_adapter(svc: Service | None, argv: list[str], cwd: Path, timeout: float = 120,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`callkpi adapt ...` as a user runs it (against `svc`'s broker when given)."""
    import sys
    full_env = {**os.environ, **(svc.env if svc else {}), **(env or {})}
    return subprocess.run([sys.executable, "-m", "stream.cli.main", "adapt", *argv],
                          env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def spawn_adapter(svc: Service | None, argv: list[str], cwd: Path,
                  env: dict[str, str] | None = None) -> subprocess.Popen:
    import sys
    full_env = {**os.environ, **(svc.env if svc else {}), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "stream.cli.main", "adapt", *argv],
                            env=full_env, cwd=cwd, stdout=open(cwd / "adapter.out", "ab"),
                            stderr=open(cwd / "adapter.err", "ab"), start_new_session=True)


class Postgres:
    def __init__(self, port: int, datadir: Path, run_as: list[str]) -> None:
        self.port, self.datadir, self.run_as = port, datadir, run_as

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               dbname=database, autocommit=True)

    def create_database(self, name: str, ddl: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        with self.connect(name) as conn:
            for stmt in filter(str.strip, ddl.split(";")):
                conn.execute(stmt)


def _pg_binary(name: str) -> str:
    import glob
    for candidate in (shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))):
        if candidate:
            return candidate
    raise RuntimeError(f"{name} not found: install Debian's postgresql (.ci/run does)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throw-away PostgreSQL server (Debian's postgresql); as root it runs as `postgres`,
    since the server refuses to run as root."""
    import tempfile
    # outside pytest's own temporary directory: as root that one is closed to `postgres`
    d = Path(tempfile.mkdtemp(prefix="callkpi-postgres-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(d, "postgres")
    data = d / "data"
    subprocess.run([*run_as, _pg_binary("initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*run_as, _pg_binary("postgres"), "-D", str(data), "-p", str(port),
                             "-k", str(d), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                            stdout=open(os.devnull, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    db = Postgres(port, d, run_as)
    with _server(proc, d, db.connect, lambda: "postgres did not start"):
        yield db


def adapt_into(svc: Service, argv: list[str], cwd: Path,
               env: dict[str, str] | None = None) -> dict:
    """Run an adapter into `svc` and wait until the workers committed every event it sent (so
    KPIs read afterwards are final); return its summary line."""
    import json
    before = svc.pipeline_counter("consumed")
    r = run_adapter(svc, argv, cwd, env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    svc.wait_consumed(int(before) + sum(summary["events"].values()), timeout=180)
    return summary
