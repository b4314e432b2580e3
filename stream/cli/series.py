"""`callkpi series`: a KPI time series from the running store, as a table or CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

from stream.cli.commands import UsageError, answer_in_process


def add_parser(sub: Any) -> None:
    p = sub.add_parser("series", help="a KPI time series (one row per local step)",
                       description="One row per step of the center's local time, every KPI from "
                                   "that step's own sums (GET /api/v1/series; docs/history.md).")
    p.add_argument("--scope", default="center", help="center, campaign:<id>, team:<id>, ...")
    p.add_argument("--kpis", default="", help="comma-separated KPI names (default connect_rate,"
                                                "conversion_rate,aht_seconds)")
    p.add_argument("--step", default="1d", help="15m, 30m, 1h, 1d, 1w or 1mo (default 1d)")
    p.add_argument("--window", default="", help="a named window (default month)")
    p.add_argument("--from", dest="from_", default="", help="range start (RFC 3339 or epoch ms)")
    p.add_argument("--to", default="", help="range end (exclusive)")
    p.add_argument("--compare", default="", help="previous_period, previous_week or previous_year")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="CSV instead of a table")
    out.add_argument("--json", action="store_true", help="the API's JSON")
    p.set_defaults(run=run_series)


def params_of(args: argparse.Namespace) -> dict[str, str]:
    if args.window and (args.from_ or args.to):
        raise UsageError("give either --window or --from and --to")
    params = {"scope": args.scope, "step": args.step, "kpis": args.kpis, "compare": args.compare}
    if args.window:
        params["window"] = args.window
    if args.from_ or args.to:
        params["from"], params["to"] = args.from_, args.to
    return {k: v for k, v in params.items() if v}


def run_series(args: argparse.Namespace) -> int:
    from stream.kpi.scopes import ScopeError
    from stream.kpi.windows import WindowError
    from stream.readers.api import BadRequest, series_payload

    params = params_of(args)
    data = answer_in_process(lambda ctx: series_payload(ctx, params),
                             BadRequest, ScopeError, WindowError)
    if args.json:
        print(json.dumps(data, indent=2))
    elif args.csv:
        print(to_csv(data), end="")
    else:
        print(to_table(data))
    return 0


def rows_of(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows: from, to, each KPI (and with a comparison: its value and the change)."""
    kpis = data["kpis"]
    compare = bool(data.get("compare"))
    header = ["from", "to"]
    for k in kpis:
        header += [k, f"{k} before", f"{k} change"] if compare else [k]
    rows = []
    for p in data["points"]:
        row: list[Any] = [p["from"], p["to"]]
        for k in kpis:
            row.append(p["kpis"][k])
            if compare:
                row += [p["compare"]["kpis"][k], p["compare"]["change"][k]]
        rows.append(row)
    return header, rows


def to_csv(data: dict[str, Any]) -> str:
    header, rows = rows_of(data)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else v for v in r] for r in rows])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def to_table(data: dict[str, Any]) -> str:
    header, rows = rows_of(data)
    text = [[_cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h)
              for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 1 else c.ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    title = (f"{data['scope']}  {data['from']} .. {data['to']}  step {data['step']}  "
             f"({data['timezone']})" + (f"  compared with {data['compare']}" if data["compare"] else ""))
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, text)])
