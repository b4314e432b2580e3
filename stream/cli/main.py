"""`callkpi`: the one command of the service (worker, serve, rebuild, stack, demo, replay, simulate,
kpis, adapt)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from stream.cli import commands, rebuild, report, series, stack
from stream.native import StaleNativeBuild
from stream.settings import SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callkpi",
        description="Streaming KPIs for live outbound call centers: dialer events in Kafka, "
                    "exact windowed KPIs in Redis, an HTTP API, Prometheus metrics and a wallboard. "
                    "Connection settings come from CALLKPI_* environment variables.")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parsers(sub)
    rebuild.add_parser(sub)
    stack.add_parsers(sub)
    series.add_parser(sub)
    report.add_parser(sub)
    try:
        from stream.cli import simulate
    except ImportError:  # pragma: no cover - the simulator is part of the package
        simulate = None  # type: ignore[assignment]
    if simulate is not None:
        simulate.add_parser(sub)
    from stream.cli import adapt
    adapt.add_parser(sub)
    adapt.add_ingest_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka"):  # client libraries log every connection at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (commands.UsageError, SettingsError, StaleNativeBuild) as exc:
        print(f"callkpi {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
