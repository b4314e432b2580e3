"""`callkpi simulate`: run the call-center simulator into Kafka or a JSONL file."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from typing import BinaryIO

from stream.contract import parse_ts
from stream.settings import Settings
from stream.sim import SCENARIOS, Delivery, FaultConfig, SimConfig, generate
from stream.sim.kafka_out import paced, publish, with_progress

HOUR_MS = 3_600_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="generate dialer events from a model outbound call center",
        description="Generate v1 dialer events from a simulated outbound call center and produce "
                    "them to Kafka (default) or write them to a JSONL file (--out).")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same events)")
    p.add_argument("--agents", type=int, default=50, help="agents (default 50)")
    p.add_argument("--hours", type=float, default=8.0, help="simulated hours (default 8)")
    p.add_argument("--teams-of", type=int, default=12, help="agents per team (default 12)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--fast", action="store_true", help="as fast as possible (default: real time)")
    pace.add_argument("--speed", type=float, default=1.0,
                      help="simulated seconds per wall second in real-time mode (default 1)")
    p.add_argument("--start", default=None,
                   help="simulated start, RFC 3339 or 'now' (default: with --fast, now - hours, so "
                        "the day ends now; in real time, now - hours*(1 - 1/speed), so simulated "
                        "time never runs ahead of the clock: 'now' at speed 1)")
    p.add_argument("--backfill", type=float, default=None, metavar="HOURS",
                   help="real-time mode: the run began HOURS ago; send that part at once, then "
                        "go on in real time (how `callkpi demo` fills today's windows at start)")
    p.add_argument("--scenario", default=None, help="a named scenario (see --list-scenarios)")
    p.add_argument("--scenario-at", type=float, default=0.4,
                   help="when the scenario starts, as a fraction of the run (default 0.4)")
    p.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    p.add_argument("--faults", choices=("all", "none"), default="none",
                   help="delivery faults preset: 'all' = modest duplicates, reordering, late and "
                        "invalid events (individual rates below override it)")
    p.add_argument("--duplicate-rate", type=float, default=None, help="share of events sent twice")
    p.add_argument("--late-rate", type=float, default=None, help="share of events delivered late")
    p.add_argument("--late-max", type=float, default=None,
                   help="latest late delivery, seconds after ts (default 7200 with late events)")
    p.add_argument("--invalid-rate", type=float, default=None,
                   help="invalid messages per valid event (every rejection reason)")
    p.add_argument("--reorder-window", type=float, default=None,
                   help="shuffle delivery order within this many simulated seconds")
    p.add_argument("--repeat-lead-rate", type=float, default=0.0,
                   help="share of dials re-calling a lead dialed earlier in the run (0..1)")
    p.add_argument("--ts-style", choices=("rfc3339", "mixed"), default="rfc3339",
                   help="'mixed' also sends +08:00 offsets and integer epoch ms")
    p.add_argument("--bootstrap", default=None,
                   help="Kafka bootstrap HOST:PORT (default CALLKPI_BOOTSTRAP or 127.0.0.1:19092)")
    p.add_argument("--topic", default=None,
                   help="topic (default CALLKPI_INPUT_TOPIC or dialer.events)")
    p.add_argument("--out", default=None,
                   help="write one message per line to this file ('-' = stdout) instead of Kafka")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=run)


def faults_from(args: argparse.Namespace) -> FaultConfig:
    f = FaultConfig.all_on() if args.faults == "all" else FaultConfig()
    for name, attr in (("duplicate_rate", "duplicate_rate"), ("late_rate", "late_rate"),
                       ("invalid_rate", "invalid_rate"), ("reorder_window", "reorder_window_s"),
                       ("late_max", "late_max_s")):
        value = getattr(args, name)
        if value is not None:
            if value < 0 or (name.endswith("_rate") and value > 1):
                raise ValueError(f"--{name.replace('_', '-')} must be 0..1 for rates, >= 0 otherwise")
            setattr(f, attr, value)
    if f.late_rate and not f.late_max_s:
        f.late_max_s = 7200.0
    return f


def start_ms_from(args: argparse.Namespace, now_ms: int) -> int:
    hours_ms = int(args.hours * HOUR_MS)
    if args.backfill is not None:
        if args.fast or args.start is not None or args.speed != 1 \
                or not 0 <= args.backfill <= args.hours:
            raise ValueError("--backfill goes with real time at speed 1 (not --fast, --start or "
                             "--speed) and must lie within 0..--hours")
        return now_ms - int(args.backfill * HOUR_MS)
    if args.start is None:
        if args.fast:
            return now_ms - hours_ms
        return now_ms - int(hours_ms * (1 - 1 / args.speed)) if args.speed > 1 else now_ms
    if args.start.strip().lower() == "now":
        return now_ms
    return parse_ts(args.start)


def run(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        for name, text in SCENARIOS.items():
            print(f"{name:16} {text}")
        return 0
    if args.speed <= 0:
        print("callkpi simulate: --speed must be positive", file=sys.stderr)
        return 2
    now_ms = int(time.time() * 1000)
    try:
        cfg = SimConfig(seed=args.seed, agents=args.agents, hours=args.hours,
                        start_ms=start_ms_from(args, now_ms),
                        scenario=args.scenario, scenario_at=args.scenario_at,
                        faults=faults_from(args), teams_of=args.teams_of, ts_style=args.ts_style,
                        repeat_lead_rate=args.repeat_lead_rate)
    except ValueError as exc:
        print(f"callkpi simulate: {exc}", file=sys.stderr)
        return 2
    speed = None if args.fast else args.speed
    # The simulated time that maps to the wall clock's now: with --backfill, what lies before it
    # is sent at once.
    pace_from = now_ms if args.backfill is not None else cfg.start_ms
    deliveries = generate(cfg)
    if not args.quiet:
        deliveries = with_progress(deliveries)
    if args.out:
        if args.out == "-":
            return _write(paced(deliveries, speed, pace_from), sys.stdout.buffer)
        with open(args.out, "wb") as fh:
            return _write(paced(deliveries, speed, pace_from), fh)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection retries: we report failure
    settings = Settings.from_env()
    bootstrap = args.bootstrap or settings.bootstrap
    topic = args.topic or settings.input_topic
    try:
        publish(deliveries, bootstrap, topic, realtime_speed=speed, start_ms=pace_from)
    except RuntimeError as exc:
        print(f"callkpi simulate: {exc}", file=sys.stderr)
        return 1
    return 0


def _write(deliveries: Iterable[Delivery], fh: BinaryIO) -> int:
    """One raw message value per line (values never contain a newline: the simulator's invalid
    messages are single-line by construction)."""
    for d in deliveries:
        fh.write(d.value)
        fh.write(b"\n")
    fh.flush()
    return 0
