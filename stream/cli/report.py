"""`callkpi report`: one period's report from the running store, as HTML, CSV, XLSX or Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stream.cli.commands import UsageError, answer_in_process


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="a period's report: KPIs against the previous period and the "
                       "targets, rankings, hourly profile, compliance, experiments",
                       description="The report of a local day, week (Monday to Sunday) or month "
                                   "(GET /api/v1/report; docs/reports.md).")
    p.add_argument("--period", default="day", choices=("day", "week", "month"))
    p.add_argument("--date", default=None, help="a local date in the period, YYYY-MM-DD (default: "
                   "the last finished period)")
    p.add_argument("--scope", action="append", default=[], help="center (default), campaign:<id>, "
                   "team:<id>, ... (repeat for several)")
    p.add_argument("--format", default="html", choices=("html", "csv", "xlsx", "md", "json"))
    p.add_argument("--out", default=None, help="the file to write (default: standard output; "
                   "xlsx needs a file)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    import json

    from stream.kpi.scopes import ScopeError
    from stream.kpi.windows import WindowError
    from stream.readers.api import BadRequest, Forbidden
    from stream.readers.reports import build_report, requested_span
    from stream.readers.reports.render import render

    if args.format == "xlsx" and not args.out:
        raise UsageError("--format xlsx writes a binary file: give --out PATH")

    async def make(ctx: Any) -> dict[str, Any]:
        span = requested_span(args.period, args.date, ctx.now_ms(), ctx.tz)
        return await build_report(ctx, span, args.scope or None)
    report = answer_in_process(make, BadRequest, ScopeError, WindowError, Forbidden)
    body = (json.dumps(report, indent=2).encode() + b"\n" if args.format == "json"
            else render(report, args.format))
    if args.out:
        Path(args.out).write_bytes(body)
        print(f"callkpi report: {report['title']} → {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body)
    return 0
