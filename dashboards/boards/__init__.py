"""The dashboards (one module each), and every PromQL query they run (for tests)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from ..panels import Board, PanelQuery
from .agents import agents
from .caller_ids import caller_ids
from .campaigns import campaigns
from .history import history
from .pipeline import pipeline
from .wallboard import wallboard

#: file stem -> the function that builds the dashboard.
BOARDS: dict[str, Callable[[], Board]] = {
    "wallboard": wallboard,
    "campaigns": campaigns,
    "agents": agents,
    "caller-ids": caller_ids,
    "pipeline": pipeline,
    "history": history,
}


def dashboards() -> dict[str, dict[str, Any]]:
    """file stem -> dashboard JSON model."""
    return {name: make().build() for name, make in BOARDS.items()}


def _iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _iter_panels(p.get("panels") or [])


def all_panel_queries() -> list[PanelQuery]:
    """Every PromQL expression of every dashboard panel (for parse checks and live-data tests)."""
    out: list[PanelQuery] = []
    for make in BOARDS.values():
        board = make()
        model = board.build()
        for p in _iter_panels(model.get("panels", [])):
            for t in p.get("targets") or []:
                out.append(PanelQuery(
                    dashboard=model["uid"],
                    panel_id=p["id"],
                    panel=p.get("title", ""),
                    ref_id=t["refId"],
                    expr=t["expr"],
                    instant=bool(t.get("instant")),
                    optional=p.get("title", "") in board.optional,
                ))
    return out


#: Values a test can put in place of the dashboards' template variables.
DEFAULT_VARIABLES = {
    "campaign": ".+",
    "team": ".+",
    "window": "15m",
    "utc_offset": "0",
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval": "1m",
    "period": "1d",
}


def substitute_variables(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var / ${var} / ${var:fmt} with literal values (default: DEFAULT_VARIABLES)."""
    vals = dict(DEFAULT_VARIABLES)
    vals.update(values or {})

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in vals:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return vals[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$([A-Za-z_]\w*)", repl, expr)
