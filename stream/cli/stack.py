"""`callkpi stack` and `callkpi demo`: the whole service on one machine, in one command.

Starts a local Kafka-protocol broker and Redis (real server processes), creates the topics, runs a
worker and the HTTP server as child processes, prints their addresses, and stops everything on
Ctrl-C or SIGTERM. `demo` adds simulated dialer traffic in real time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from stream.cli.commands import check_native_build
from stream.cli.embedded import LocalInfra, Managed, create_topics, start_infra, wait_for_port
from stream.settings import DEFAULT_BROKER_PORT, DEFAULT_HTTP_PORT, DEFAULT_REDIS_PORT, Settings
from stream.sim import DEMO_CONFIG


def _child(name: str, argv: list[str], env: dict[str, str], port: int, workdir: Path,
           wait: bool = True) -> Managed:
    log_path = workdir / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli.main", *argv],
                            env={**os.environ, **env}, stdout=open(log_path, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    managed = Managed(name, proc, port, workdir, log_path)
    if wait:
        try:
            wait_for_port(port, timeout=60, proc=proc)
        except Exception as exc:
            managed.stop()
            raise RuntimeError(f"{name} did not start; see {log_path}") from exc
    return managed


def start_stack(broker_port: int, redis_port: int, http_port: int,
                workdir: Path | None = None, workers: int = 1,
                config: str | None = None) -> tuple[LocalInfra, dict[str, str]]:
    """Broker, Redis, topics, worker(s) and `serve`; `config` is the CALLKPI_CONFIG they run with
    (None: whatever the environment says)."""
    infra = start_infra(broker_port, redis_port, workdir)
    try:
        settings = Settings.from_env()
        env = {"CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_REDIS_URL": infra.redis_url,
               "CALLKPI_HTTP_PORT": str(http_port), "CALLKPI_HTTP_HOST": "127.0.0.1",
               "CALLKPI_SESSION_TIMEOUT_S": os.environ.get("CALLKPI_SESSION_TIMEOUT_S", "6")}
        if config:
            env["CALLKPI_CONFIG"] = config
        create_topics(infra.bootstrap, {settings.input_topic: settings.partitions,
                                        settings.dlq_topic: 1})
        for i in range(workers):
            infra.children.append(_child(f"worker-{i + 1}", ["worker"],
                                         {**env, "CALLKPI_WORKER_ID": f"worker-{i + 1}",
                                          "CALLKPI_DATA_DIR": str(infra.workdir / f"faust-{i + 1}")},
                                         0, infra.workdir, wait=False))
        infra.children.append(_child("serve", ["serve"], env, http_port, infra.workdir))
        return infra, env
    except BaseException:
        infra.stop()
        raise


def _wait_for_signal(infra: LocalInfra, extra_stop: threading.Event | None = None) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        for child in infra.children:
            if child.proc.poll() is not None and child.name != "simulator":
                print(f"callkpi: {child.name} exited with {child.proc.returncode}; "
                      f"see {child.log_path}", file=sys.stderr)
                stop.set()
        stop.wait(0.5)
        if extra_stop is not None and extra_stop.is_set():
            stop.set()


def demo_config() -> str:
    """The demo's configuration: CALLKPI_CONFIG when set, else the one matched to the simulator."""
    return os.environ.get("CALLKPI_CONFIG") or str(DEMO_CONFIG)


def run_stack(args: argparse.Namespace, demo: bool = False) -> int:
    check_native_build()  # its workers would refuse one by one; say it once, before starting anything
    config = demo_config() if demo else None
    infra, env = start_stack(args.broker_port, args.redis_port, args.http_port,
                             Path(args.workdir) if args.workdir else None, args.workers, config)
    try:
        if demo:
            argv = ["simulate", "--bootstrap", infra.bootstrap, "--agents", str(args.agents),
                    "--hours", str(args.hours), "--backfill", str(args.backfill), "--seed", str(args.seed)]
            if args.scenario:
                argv += ["--scenario", args.scenario, "--scenario-at", str(args.scenario_at)]
            infra.children.append(_child("simulator", argv, env, 0, infra.workdir, wait=False))
        url = f"http://127.0.0.1:{args.http_port}"
        print("callkpi stack is running (Ctrl-C stops everything):", flush=True)
        print(f"  wallboard   {url}/")
        print(f"  API         {url}/api/v1/kpis?scope=center&window=15m")
        print(f"  metrics     {url}/metrics")
        print(f"  Kafka       {infra.bootstrap}  (topic dialer.events, DLQ dialer.events.dlq)")
        print(f"  Redis       {infra.redis_url}")
        print(f"  logs        {infra.workdir}")
        if config:
            print(f"  config      {config}  (targets, costs, compliance; CALLKPI_CONFIG overrides)")
        if demo:
            print(f"  simulator   {args.agents} agents, the shift's first {args.backfill:g} h sent "
                  "at once, then live in real time (see simulator.log)", flush=True)
        print(f"  try: CALLKPI_REDIS_URL={infra.redis_url} callkpi kpis --scope center --window 15m",
              flush=True)
        _wait_for_signal(infra)
    finally:
        print("callkpi: stopping...", file=sys.stderr, flush=True)
        infra.stop()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, demo in (("stack", False), ("demo", True)):
        p = sub.add_parser(name, help="run the whole service locally" if not demo else
                           "run the whole service locally with simulated dialer traffic")
        p.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT)
        p.add_argument("--redis-port", type=int, default=DEFAULT_REDIS_PORT)
        p.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
        p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        p.add_argument("--workdir", default=None, help="where logs and data go (default: a temp dir)")
        if demo:
            p.add_argument("--agents", type=int, default=60)
            p.add_argument("--hours", type=float, default=8.0)
            p.add_argument("--backfill", type=float, default=1.0, metavar="HOURS",
                           help="hours of the shift already behind at start, sent at once so "
                                "today's windows have numbers; then real time (default 1)")
            p.add_argument("--seed", type=int, default=1)
            p.add_argument("--scenario", default=None, help="a simulator scenario (callkpi simulate --list-scenarios)")
            p.add_argument("--scenario-at", type=float, default=0.0, metavar="FRACTION",
                           help="when the scenario starts, as a fraction of the shift (default 0: at once, so "
                                "the backfilled hour shows it)")
        p.set_defaults(run=lambda a, demo=demo: run_stack(a, demo))



