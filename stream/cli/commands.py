"""The production commands: `worker`, `serve`, `replay`, `kpis`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stream.native import require_fresh
from stream.settings import Settings

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


def check_native_build() -> str:
    """Refuse to start on a stale native build (`stream.native.StaleNativeBuild`, printed by
    `main` as one line naming the module and the fix); log whether the pipeline runs native."""
    status = require_fresh()
    log.info("pipeline code: %s", status.describe())
    return status.mode


def load_service_config(settings: Settings) -> Any:
    """The business configuration (thresholds, targets, costs, compliance) from CALLKPI_CONFIG."""
    from stream.kpi.catalog import KPI_BY_NAME
    from stream.kpi.config_file import ConfigError, load_config
    from stream.kpi.experiments import experiment_kpis
    from stream.readers.business import COST_KPIS
    names = {*KPI_BY_NAME, *COST_KPIS}
    cumulative = {k.name for k in KPI_BY_NAME.values() if not k.denominator}
    try:
        return load_config(settings.config or None, kpi_names=names, cumulative_kpis=cumulative,
                           experiment_kpis=experiment_kpis())
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def thresholds_of(config: Any, settings: Settings | None = None) -> Any:
    """What decides counters at write time; the zone (for the retention sets' local weeks and
    months) is the one `serve` reads with: CALLKPI_TIMEZONE, else the file's `timezone`."""
    from stream.kpi.contributions import Thresholds
    return Thresholds(
        conversation_threshold_ms=config.conversation_threshold_ms,
        qualification_score=config.qualification_score,
        connect_threshold_ms=config.connect_threshold_ms,
        service_level_threshold_ms=config.service_level_threshold_ms,
        max_call_gap_ms=config.max_call_gap_seconds * 1000,
        success_dispositions=frozenset(config.success_dispositions),
        goal_dispositions=frozenset(config.goal_dispositions),
        timezone=timezone_of(settings, config).key if settings is not None else config.timezone,
    )


def timezone_of(settings: Settings, config: Any) -> ZoneInfo:
    return ZoneInfo(settings.timezone or getattr(config, "timezone", "UTC") or "UTC")


# -- worker ------------------------------------------------------------------------------------

def run_worker(args: argparse.Namespace) -> int:
    """Run one Faust worker until SIGTERM/SIGINT."""
    import faust

    check_native_build()  # before the compiled modules are imported
    from stream.processing.app import create_app
    settings = Settings.from_env()
    config = load_service_config(settings)
    # day buckets are local days of the center's zone: the worker writes them in that zone
    settings = dataclasses.replace(settings, timezone=str(timezone_of(settings, config)))
    app = create_app(settings, thresholds_of(config, settings))
    app.conf.callkpi_call_expiry_ms = config.live.call_expiry_seconds * 1000
    worker = bounded_stop(faust.Worker)(app, loglevel=args.log_level.lower(), quiet=True,
                                         override_logging=False,
                                         stop_timeout_s=settings.stop_timeout_s)
    worker.execute_from_commandline()
    return 0


STOP_TIMED_OUT_EXIT = 75
"""The worker's exit code when its stop gave up waiting for batches to commit (EX_TEMPFAIL)."""


def bounded_stop(worker_class: type) -> type:
    """A Faust worker whose stop ends within `stop_timeout_s`. A graceful stop waits until every
    batch in flight is committed and acked, and while Redis does not answer (a partition, a
    frozen primary) its commit retries for ever. After the timeout the process exits as a crash
    would: nothing uncommitted was acked, so the next consumer of its partitions redoes those
    batches exactly (tests/integration/test_crash.py)."""
    class BoundedStopWorker(worker_class):
        def __init__(self, *args: Any, stop_timeout_s: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.stop_timeout_s = stop_timeout_s

        async def on_stop(self) -> None:
            timer = threading.Timer(self.stop_timeout_s, _stop_timed_out, (self.stop_timeout_s,))
            timer.daemon = True
            timer.start()
            await super().on_stop()

    return BoundedStopWorker


def _stop_timed_out(timeout_s: float) -> None:
    log.error("stop timed out after %.0f s: batches still uncommitted (is Redis answering?); "
              "exiting without them, the next worker of these partitions redoes them", timeout_s)
    logging.shutdown()
    os._exit(STOP_TIMED_OUT_EXIT)


# -- serve -------------------------------------------------------------------------------------

def build_api(settings: Settings) -> Any:
    from stream.readers.service import attach_extensions, build_context

    config = load_service_config(settings)
    ctx = build_context(settings, config, timezone_of(settings, config))
    return attach_extensions(ctx, config)


def answer_in_process(payload: Callable[[Any], Awaitable[dict[str, Any]]],
                      *bad_request: type[Exception]) -> dict[str, Any]:
    """What the API would answer, computed in this process from CALLKPI_* (no `serve` needed),
    the store closed after; the errors the API maps to 400 are usage errors here."""
    ctx = build_api(Settings.from_env())

    async def fetch() -> dict[str, Any]:
        try:
            return await payload(ctx)
        finally:
            await ctx.store.close()
    try:
        return asyncio.run(fetch())
    except bad_request as exc:
        raise UsageError(str(exc)) from exc


def run_serve(args: argparse.Namespace) -> int:
    from stream.readers.service import run_service
    settings = Settings.from_env(http_port=args.port, http_host=args.host)
    ctx = build_api(settings)
    print(f"callkpi serve: http://{settings.http_host}:{settings.http_port}/ "
          f"(API /api/v1, metrics /metrics)", flush=True)
    run_service(ctx, settings.http_host, settings.http_port)
    return 0


def run_hash_token(args: argparse.Namespace) -> int:
    """Print the `[[api.tokens]]` entry for a token: read from stdin, or made up (`--new`)."""
    import secrets

    from stream.readers.auth import hash_token
    if args.new:
        token = secrets.token_urlsafe(32)
        print(f"token: {token}")
    else:
        if sys.stdin.isatty():
            print("token (then Enter): ", end="", file=sys.stderr, flush=True)
        token = sys.stdin.readline().strip()
        if not token:
            raise UsageError("no token given on stdin (or use --new to make one)")
    print(f'\n[[api.tokens]]\nname = "{args.name}"\nsha256 = "{hash_token(token)}"\n'
          '# scopes = ["campaign:renewals", "team:north", "campaign:energy-*"]  (none: every scope)')
    return 0


# -- replay ------------------------------------------------------------------------------------

def run_replay(args: argparse.Namespace) -> int:
    """Publish a JSONL file as it is (a malformed line too: the worker rejects it)."""
    from kafka import KafkaProducer

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    settings = Settings.from_env(bootstrap=args.bootstrap, input_topic=args.topic)
    lines = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks=1, linger_ms=20,
                             batch_size=262144, max_request_size=1 << 20)
    started = time.monotonic()
    for i, line in enumerate(lines, 1):
        producer.send(settings.input_topic, value=line, key=_key_of(line))
        if args.rate:
            delay = started + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if i % 1000 == 0 or i == len(lines):
            _progress(i, len(lines), started)
    producer.flush()
    producer.close()
    print(file=sys.stderr)
    print(f"published {len(lines)} events to {settings.input_topic} at {settings.bootstrap}")
    return 0


def _key_of(line: bytes) -> bytes | None:
    """The contract's message key (call_id or agent_id) when the line can be read."""
    try:
        obj = json.loads(line)
        key = obj.get("call_id") or obj.get("agent_id")
        return str(key).encode() if key else None
    except (ValueError, AttributeError):
        return None


def _progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"{rate:,.0f} events/s")
    sys.stderr.flush()


# -- kpis --------------------------------------------------------------------------------------

def run_kpis(args: argparse.Namespace) -> int:
    from stream.kpi.errors import QueryError
    from stream.readers.api import kpis_payload

    if args.window and (args.from_ or args.to):
        raise UsageError("give either --window or --from and --to")
    params = {"scope": args.scope}
    if args.window:
        params["window"] = args.window
    if args.from_ or args.to:
        params["from"], params["to"] = args.from_ or "", args.to or ""
    data = answer_in_process(lambda ctx: kpis_payload(ctx, params), QueryError)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(data))
    return 0


def format_table(data: dict[str, Any]) -> str:
    from stream.kpi.catalog import KPI_BY_NAME
    lines = [f"{data['scope']}  {data['from']} → {data['to']}" +
             (f"  ({data['window']})" if data.get("window") else "")]
    width = max(len(k) for k in data["kpis"])
    for name, value in data["kpis"].items():
        kpi = KPI_BY_NAME.get(name)
        if isinstance(value, dict):  # a breakdown: seconds by pause reason, or wrap-ups by code
            unit = "" if name == "wrapups_by_code" else "s"
            text = ", ".join(f"{k} {v:,.0f}{unit}" for k, v in value.items()) or "-"
        elif value is None:
            text = "-"
        elif kpi is not None and kpi.unit == "ratio":
            text = f"{value * 100:.1f} %"
        elif isinstance(value, float):
            text = f"{value:,.2f}"
        else:
            text = f"{value:,}"
        lines.append(f"  {name:<{width}}  {text}")
    return "\n".join(lines)


# -- experiments -------------------------------------------------------------------------------

def run_experiments(args: argparse.Namespace) -> int:
    from stream.kpi.windows import WindowError
    from stream.readers.api import BadRequest, NotFound
    from stream.readers.experiments import experiments_payload

    params = {"window": args.window} if args.window else {}
    data = answer_in_process(
        lambda ctx: experiments_payload(ctx, ctx.extensions.config.experiments, params,
                                        name=args.name),
        BadRequest, NotFound, WindowError)
    if args.json:
        print(json.dumps(data, indent=2))
    elif not data["experiments"]:
        print("no experiments configured ([[experiments]] in the configuration file)")
    else:
        print("\n\n".join(format_experiment(e) for e in data["experiments"]))
    return 0


def format_experiment(e: dict[str, Any]) -> str:
    """One experiment as a table: a row per variant, the verdict on top."""
    def pct(v: float | None, signed: bool = False) -> str:
        return "-" if v is None else (f"{v * 100:+.1f} %" if signed else f"{v * 100:.1f} %")

    span = f"{e['from']} → {e['to']}" if e["started"] else "not started"
    lines = [f"{e['name']}: {e['verdict']}   ({e['primary_kpi']}, {span})"]
    header = ("variant", "calls", "successes", "rate", "95 % CI", "lift", "p", "still needed",
              "verdict")
    rows = [header]
    for v in e["variants"]:
        ci = "-" if v["interval"] is None else (f"{v['interval']['low'] * 100:.1f}–"
                                                f"{v['interval']['high'] * 100:.1f} %")
        p = "-" if v["p_value"] is None else f"{v['p_value']:.3g}"
        need = "-" if v["still_needed"] is None else f"{v['still_needed']:,}"
        rows.append((v["variant"] + (" (control)" if v["control"] else ""), f"{v['trials']:,}",
                     f"{v['successes']:,}", pct(v["rate"]), ci, pct(v["lift"], True), p, need,
                     v["verdict"]))
        for g in v["guardrails"]:
            rows.append((f"  guardrail {g['kpi']}", "", "", "", "", pct(g["change"], True),
                         "-" if g["p_value"] is None else f"{g['p_value']:.3g}", "",
                         "breached" if g["breached"] else "ok"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


# -- retention ---------------------------------------------------------------------------------

def run_retention(args: argparse.Namespace) -> int:
    from stream.kpi.scopes import ScopeError
    from stream.readers.api import BadRequest, Forbidden
    from stream.readers.retention import retention_payload

    data = answer_in_process(
        lambda ctx: retention_payload(ctx, {"scope": args.scope, "period": args.period}),
        BadRequest, ScopeError, Forbidden)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{data['scope']}  customer retention per {data['period']} ({data['timezone']})")
    rows = [("period", "buying customers", "repeat customers", "retention rate")]
    for key in ("previous", "current"):
        r = data[key]
        rate = "-" if r["retention_rate"] is None else f"{r['retention_rate'] * 100:.1f} %"
        rows.append((r["period"] + ("" if r["complete"] else " (so far)"),
                     f"{r['buying_customers']:,}", f"{r['repeat_customers']:,}", rate))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a stream worker (external Kafka and Redis from CALLKPI_*)")
    p.set_defaults(run=run_worker)

    p = sub.add_parser("serve", help="serve the HTTP API, /metrics and the wallboard")
    p.add_argument("--host", default=None, help="listen address (CALLKPI_HTTP_HOST)")
    p.add_argument("--port", type=int, default=None, help="listen port (CALLKPI_HTTP_PORT)")
    p.set_defaults(run=run_serve)

    p = sub.add_parser("hash-token", help="print the configuration entry (sha256) of an API token")
    p.add_argument("--new", action="store_true", help="make up a new random token and print it too")
    p.add_argument("--name", default="wallboard", help="the token's name in the entry")
    p.set_defaults(run=run_hash_token)

    p = sub.add_parser("replay", help="publish a JSONL file of events to the input topic")
    p.add_argument("file")
    p.add_argument("--rate", type=float, default=0, help="events per second (default: as fast as possible)")
    p.add_argument("--bootstrap", default=None, help="broker (default CALLKPI_BOOTSTRAP or the stack's)")
    p.add_argument("--topic", default=None, help="topic (default CALLKPI_INPUT_TOPIC or dialer.events)")
    p.set_defaults(run=run_replay)

    p = sub.add_parser("kpis", help="print the KPIs of a scope and window")
    p.add_argument("--scope", default="center", help="center, campaign:<id>, team:<id>, agent:<id>, caller_id:<did>, list:<id>, variant:<id>")
    p.add_argument("--window", default=None, help="5m, 15m, 1h, 8h, 24h, 30d, today")
    p.add_argument("--from", dest="from_", default=None, help="range start, RFC 3339")
    p.add_argument("--to", default=None, help="range end, RFC 3339")
    p.add_argument("--json", action="store_true", help="print JSON (as the API returns it)")
    p.set_defaults(run=run_kpis)

    p = sub.add_parser("experiments", help="print the configured experiments (A/B tests) and "
                       "their verdicts")
    p.add_argument("name", nargs="?", default=None, help="one experiment (default: all)")
    p.add_argument("--window", default=None, help="override each experiment's window "
                   "(5m, 15m, 1h, 8h, 24h, 30d, today)")
    p.add_argument("--json", action="store_true", help="print JSON (as the API returns it)")
    p.set_defaults(run=run_experiments)

    p = sub.add_parser("retention", help="print buying and repeat customers and the retention "
                       "rate per local week or month")
    p.add_argument("--scope", default="center", help="center or campaign:<id>")
    p.add_argument("--period", default="week", choices=("week", "month"))
    p.add_argument("--json", action="store_true", help="print JSON (as the API returns it)")
    p.set_defaults(run=run_retention)
