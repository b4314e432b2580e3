"""`callkpi adapt SOURCE ...`: run one dialer adapter (docs/adapters.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stream.cli.commands import UsageError
from stream.settings import Settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="adapter configuration (TOML): maps, time zone, "
                   "defaults, exclusions (docs/adapters.md)")
    p.add_argument("--out", default=None, metavar="FILE.jsonl",
                   help="write events to this file (for `callkpi replay`) instead of Kafka")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="where to keep the position (default: callkpi-adapt-SOURCE-INSTANCE."
                        "checkpoint.json in the current directory)")
    p.add_argument("--no-checkpoint", action="store_true", help="neither read nor save one")
    p.add_argument("--from-start", action="store_true",
                   help="ignore the checkpoint and read the source from its start")
    p.add_argument("--force", action="store_true",
                   help="resume even from a checkpoint older than the dedupe horizon")
    p.add_argument("--time-shift", default="0d", metavar="DURATION",
                   help="move every event time by whole days or weeks in the source's local "
                        "wall clock (7d, 2w): replays a historical log as recent days")
    p.add_argument("--metrics-port", type=int, default=0,
                   help="serve the adapter's /metrics on this port (default: none)")
    p.add_argument("--bootstrap", default=None, help="Kafka (default CALLKPI_BOOTSTRAP)")
    p.add_argument("--topic", default=None, help="topic (default CALLKPI_INPUT_TOPIC)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="turn a real dialer's records into v1 events "
                                     "(queue-log, cdr, vicidial, call-records)")
    srcs = p.add_subparsers(dest="source", required=True, metavar="SOURCE")

    q = srcs.add_parser("queue-log", help="Asterisk queue_log: the file, or the realtime table")
    q.add_argument("--dialect", default="asterisk", choices=("asterisk", "vicidial-qm", "pbxware"),
                   help="asterisk (stock app_queue), vicidial-qm (VICIdial's QueueMetrics log), "
                        "pbxware (its queue log table's CSV export, --file only)")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="the queue_log file (/var/log/asterisk/queue_log)")
    where.add_argument("--dsn", help="the realtime table's database: mysql://user:pw@host:port/db")
    q.add_argument("--table", default="queue_log", help="realtime table name (default queue_log)")
    q.add_argument("--follow", action="store_true",
                   help="keep reading as the source grows (across logrotate)")
    q.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    _common(q)
    q.set_defaults(run=run_adapt)

    c = srcs.add_parser("cdr", help="Asterisk CDR: Master.csv, a CSV export, or the cdr table")
    where = c.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="Master.csv (no header) or a CSV export with a header row")
    where.add_argument("--dsn", help="the cdr table's database: mysql://user:pw@host:port/db")
    c.add_argument("--table", default="cdr", help="CDR table name (default cdr)")
    c.add_argument("--follow", action="store_true", help="keep reading as the source grows")
    c.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    c.add_argument("--lookback-hours", type=float, default=4.0,
                   help="the table's rows are written when a call ends, with its start time: "
                        "re-read this much behind the newest (longer than your longest call)")
    _common(c)
    c.set_defaults(run=run_adapt)

    v = srcs.add_parser("vicidial", help="VICIdial: poll its log tables (MySQL/MariaDB)")
    v.add_argument("--dsn", required=True, help="VICIdial's database: mysql://user:pw@host:port/asterisk")
    v.add_argument("--dial-mode", default="predictive",
                   choices=("predictive", "progressive", "preview", "manual"),
                   help="dial mode when vicidial_campaigns.dial_method does not tell")
    v.add_argument("--follow", action="store_true", help="keep polling")
    v.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    _common(v)
    v.set_defaults(run=run_adapt)

    r = srcs.add_parser("call-records", help="per-call exports (CSV with a header, or JSON lines) "
                                             "by the column map in the config's [call_records]")
    r.add_argument("--file", required=True, help="the export (.csv, or .jsonl/.json lines)")
    r.add_argument("--format", choices=("csv", "jsonl"), default=None,
                   help="default: from the file name (.jsonl/.ndjson: jsonl, else csv)")
    r.add_argument("--follow", action="store_true", help="keep reading as the file grows")
    r.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    _common(r)
    r.set_defaults(run=run_adapt)


def _config(args: argparse.Namespace) -> Any:
    from stream.adapters.config import ConfigError, load_adapter_config
    try:
        return load_adapter_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _handler_and_reader(args: argparse.Namespace, config: Any, builder: Any,
                        saved: dict[str, Any] | None) -> tuple[Any, Any]:
    from stream.adapters.core import LineKeys, datetime_to_ms
    state = (saved or {}).get("state", {})
    position = (saved or {}).get("position")
    tz = config.tz
    if args.source == "queue-log":
        from stream.adapters.queue_log import PbxwareLines, QueueLogLines, QueueLogMapper, QueueLogRows
        mapper = QueueLogMapper(config, builder, args.dialect, state.get("mapper"))
        if args.dialect == "pbxware":
            if not args.file:
                raise UsageError("--dialect pbxware reads the CSV export: give --file")
            return PbxwareLines(mapper, state.get("header")), _tail(args, position)
        if args.file:
            return QueueLogLines(mapper, LineKeys(state.get("keys"))), _tail(args, position)
        return (QueueLogRows(mapper, lambda v: datetime_to_ms(v, tz)),
                _poll(args, args.table, "id", position))
    if args.source == "call-records":
        from stream.adapters.call_records import CallRecordLines, CallRecordMapper
        if "call_id" not in config.call_records.columns:
            raise UsageError("call-records needs a [call_records] section with columns.call_id "
                             "in --config (docs/adapters.md)")
        fmt = args.format or ("jsonl" if args.file.endswith((".jsonl", ".ndjson", ".json"))
                              else "csv")
        return (CallRecordLines(CallRecordMapper(config, builder), fmt, state.get("header")),
                _tail(args, position))
    if args.source == "vicidial":
        from stream.adapters.io.vicidial_poll import VicidialPoll
        from stream.adapters.vicidial import VicidialMapper, VicidialRows
        rows = VicidialRows(VicidialMapper(config, builder, args.dial_mode,
                                           (state.get("mapper") or {})), state)
        return rows, VicidialPoll(args.dsn, low_of=rows.low_of, position=position,
                                  poll_s=args.poll_interval, follow=args.follow)
    from stream.adapters.cdr import CdrLines, CdrMapper, CdrRows
    cdr_mapper = CdrMapper(config, builder, state.get("mapper"))
    if args.file:
        return CdrLines(cdr_mapper, state.get("header")), _tail(args, position)
    from stream.adapters.io.dbpoll import DsnError, WindowPoll
    try:
        return CdrRows(cdr_mapper), WindowPoll(args.dsn, args.table, position=position,
                                           lookback_s=args.lookback_hours * 3600,
                                           poll_s=args.poll_interval, follow=args.follow)
    except DsnError as exc:
        raise UsageError(str(exc)) from exc


def _tail(args: argparse.Namespace, position: Any) -> Any:
    from stream.adapters.io.filetail import FileTail
    if not args.follow and not Path(args.file).is_file():
        raise UsageError(f"no such file: {args.file}")
    return FileTail(args.file, follow=args.follow, position=position, poll_s=min(args.poll_interval, 0.5),
                    progress=sys.stderr.isatty())


def _poll(args: argparse.Namespace, table: str, key: str, position: Any) -> Any:
    from stream.adapters.io.dbpoll import DsnError, TablePoll
    try:
        return TablePoll(args.dsn, table, key=key, position=position, poll_s=args.poll_interval,
                         follow=args.follow)
    except DsnError as exc:
        raise UsageError(str(exc)) from exc


def run_adapt(args: argparse.Namespace) -> int:
    from stream.adapters.core import Builder, parse_shift
    from stream.adapters.io import checkpoint
    from stream.adapters.io.dbpoll import DsnError
    from stream.adapters.io.metrics import AdapterMetrics
    from stream.adapters.io.runner import Runner
    from stream.adapters.io.sink import FileSink, KafkaSink, SinkError

    settings = Settings.from_env(bootstrap=args.bootstrap, input_topic=args.topic)
    config = _config(args)
    try:
        shift = parse_shift(args.time_shift)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    source = {"queue-log": "ql", "cdr": "cdr", "vicidial": "vici",
              "call-records": "cr"}[args.source]
    cp_path = None if args.no_checkpoint else Path(
        args.checkpoint or f"callkpi-adapt-{args.source}-{config.instance}.checkpoint.json")
    saved = None
    if cp_path is not None and not args.from_start:
        try:
            saved = checkpoint.load(cp_path, source=source, instance=config.instance,
                                    horizon_hours=settings.state_horizon_hours, force=args.force)
        except checkpoint.CheckpointError as exc:
            raise UsageError(str(exc)) from exc
    builder = Builder(source, config.instance, shift, config.tz)
    handler, reader = _handler_and_reader(args, config, builder, saved)
    metrics = AdapterMetrics(args.source)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    try:
        sink = FileSink(args.out) if args.out else KafkaSink(settings.bootstrap, settings.input_topic)
        runner = Runner(source=source, instance=config.instance, reader=reader, handler=handler,
                        sink=sink, checkpoint_path=cp_path, metrics=metrics)
        summary = runner.run()
    except (SinkError, DsnError) as exc:
        print(f"callkpi adapt {args.source}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a database that went away, a file that vanished
        if type(exc).__module__.startswith(("pymysql", "psycopg")):
            print(f"callkpi adapt {args.source}: database error: {exc}", file=sys.stderr)
            return 1
        raise
    print(json.dumps(summary, sort_keys=True))
    return 0


# -- ingest ------------------------------------------------------------------------------------

def add_ingest_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="HTTP receiver: v1 events, Twilio and Amazon Connect webhooks")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1; put "
                   "a TLS-terminating proxy in front)")
    p.add_argument("--port", type=int, default=8078, help="listen port (default 8078)")
    p.add_argument("--config", default=None, help="adapter configuration (TOML)")
    p.add_argument("--public-url", default="", help="the https://host the proxy serves (Twilio "
                   "signs the URL it calls; default: the request's own scheme and host)")
    p.add_argument("--amd-timeout", type=float, default=30.0,
                   help="seconds to wait for an asynchronous AMD verdict before the answer "
                        "counts as unknown (default 30)")
    p.add_argument("--bootstrap", default=None, help="Kafka (default CALLKPI_BOOTSTRAP)")
    p.add_argument("--topic", default=None, help="topic (default CALLKPI_INPUT_TOPIC)")
    p.set_defaults(run=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    import os

    from aiohttp import web

    from stream.adapters.connect import ConnectMapper
    from stream.adapters.core import Builder
    from stream.adapters.io.badinput import BadInput
    from stream.adapters.io.ingest import IngestContext, KafkaOut, create_ingest_app
    from stream.adapters.io.metrics import AdapterMetrics
    from stream.adapters.io.sink import DLQ_TOPIC
    from stream.adapters.twilio import TaskRouter, TwilioVoice

    settings = Settings.from_env(bootstrap=args.bootstrap, input_topic=args.topic)
    config = _config(args)
    twilio_token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    ctx = IngestContext(
        out=KafkaOut(settings.bootstrap, settings.input_topic, DLQ_TOPIC),
        token=settings.api_token, twilio_token=twilio_token, public_url=args.public_url,
        voice=TwilioVoice(config, Builder("tw", config.instance, 0, config.tz)),
        taskrouter=TaskRouter(config, Builder("twtr", config.instance, 0, config.tz)),
        connect=ConnectMapper(config, Builder("ac", config.instance, 0, config.tz)),
        metrics=AdapterMetrics("ingest"), bad=BadInput("ingest", config.instance),
        amd_timeout_s=args.amd_timeout)
    if not twilio_token:
        print("callkpi ingest: TWILIO_AUTH_TOKEN is not set: the Twilio routes answer 403",
              file=sys.stderr)
    print(f"callkpi ingest: http://{args.host}:{args.port}/ingest/ (v1/events, twilio/voice, "
          f"twilio/taskrouter, amazon-connect; /metrics)", flush=True)
    web.run_app(create_ingest_app(ctx), host=args.host, port=args.port, print=None,
                access_log=None)
    ctx.out.close()
    return 0
