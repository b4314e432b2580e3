"""Shared helpers for the ops tests (dashboards, Prometheus rules, Alertmanager, compose).

The metric names below are the exporter contract of issue #4: dashboards and rules may use only
these (and recording rules defined in dashboards/prometheus/rules.yml).
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"

#: Debian package that ships each binary the ops tests run.
DEBIAN_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "docker-compose": "docker-compose",
}


def require_binary(name: str) -> str:
    """Path of `name`, or FAIL (never skip) naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: run `apt-get install -y {DEBIAN_PACKAGES.get(name, name)}` "
            "(CI must install it too)",
            pytrace=False,
        )
    return path


def run(cmd: list[str], *, cwd: Path = REPO, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; with check, fail with its output when it exits non-zero."""
    require_binary(cmd[0])
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(
            f"`{' '.join(cmd)}` exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def load_build() -> types.ModuleType:
    """The `dashboards` package (the generator behind dashboards/build.py)."""
    return importlib.import_module("dashboards")


_COUNTERS = [
    "dialed", "attempts_completed", "answered", "connected", "offered", "machine_answered", "agent_connected",
    "abandoned", "handled", "conversations", "conversions", "goals_completed", "qualified_leads",
    "refusals", "callbacks", "orders", "revenue", "surveys", "complaints", "compliance_abandons",
    "wrapups", "talk_seconds", "hold_seconds", "wrapup_seconds", "answer_to_agent_wait_seconds",
    "staffed_seconds", "on_call_seconds", "wrap_up_seconds", "available_seconds", "paused_seconds",
]
_WINDOW_GAUGES = [
    "connect_rate_ratio", "abandon_rate_ratio", "conversion_rate_ratio", "occupancy_ratio",
    "answer_rate_ratio", "lead_rate_ratio", "aht_seconds", "avg_wrapup_seconds", "avg_talk_seconds",
    "avg_answer_to_agent_seconds", "dialed", "connected", "conversions", "revenue", "qualified_leads",
    "handled", "calls_per_agent_hour", "cost_per_lead",
]

#: Every metric name the exporter exposes (issue #4), plus Prometheus' own `up`.
EXPORTER_METRICS: frozenset[str] = frozenset(
    [f"callcenter_{c}_total" for c in _COUNTERS]
    + [f"callcenter_caller_id_{c}_total" for c in ("attempts_completed", "connected", "dialed")]
    + ["callcenter_retracted_total", "callcenter_caller_id_retracted_total",
       "callcenter_caller_id_series_dropped"]
    + [f"callcenter_window_{g}" for g in _WINDOW_GAUGES]
    + [
        "callcenter_agents", "callcenter_calls_waiting", "callcenter_calls_ringing",
        "callcenter_calls_talking", "callcenter_longest_wait_seconds",
        "callcenter_agent",
        "callcenter_compliance_us_abandon_rate_30d_ratio", "callcenter_compliance_uk_abandon_rate_today_ratio",
        "callcenter_compliance_abandon_limit_ratio", "callcenter_compliance_abandon_headroom",
        "callcenter_target_status", "callcenter_target_attainment_ratio",
        "callcenter_pipeline_events_consumed_total", "callcenter_pipeline_events_accepted_total",
        "callcenter_pipeline_events_rejected_total", "callcenter_pipeline_events_duplicate_total",
        "callcenter_pipeline_events_late_total",
        "callcenter_pipeline_event_to_store_seconds_bucket", "callcenter_pipeline_event_to_store_seconds_sum",
        "callcenter_pipeline_event_to_store_seconds_count",
        "callcenter_pipeline_consumer_lag", "callcenter_pipeline_newest_event_age_seconds",
        "callcenter_pipeline_redis_errors_total", "callcenter_pipeline_worker_up",
        "callcenter_pipeline_batches_total",
        "callcenter_pipeline_redis_oom_errors_total", "callcenter_pipeline_commit_conflicts_total",
        "callcenter_pipeline_preparations_kept_total", "callcenter_pipeline_preparations_redone_total",
        "callcenter_pipeline_commit_errors_total", "callcenter_pipeline_store_rewinds_total",
        "callcenter_pipeline_offsets_unreadable_total", "callcenter_pipeline_store_ahead_total",
        "callcenter_pipeline_store_offset_resets_total", "callcenter_pipeline_store_offset_ahead",
        "callcenter_redis_memory_used_bytes", "callcenter_redis_memory_max_bytes",
        "callcenter_redis_noeviction",
        "callcenter_pipeline_dead_letters_minimal_total", "callcenter_pipeline_dead_letters_lost_total",
        "callcenter_pipeline_events_replayed_total", "callcenter_pipeline_events_beyond_horizon_total",
        "callcenter_api_response_cache_hits_total", "callcenter_api_response_cache_misses_total",
        "callcenter_api_stream_clients", "callcenter_api_stream_refused_total",
        "callcenter_api_stream_dropped_slow_total",
        "up",
    ]
)

_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "inf", "nan", "atan2",
}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile",
}


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (a small lexer, not a full parser).

    Strings, label matchers, ranges, offsets and grouping label lists are dropped; what is left
    and is not a function call, aggregation or keyword is a metric name. Selectors written as
    {__name__=~"..."} are not resolved.
    """
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\[\]]*\]", " ", s)
    s = re.sub(r"\boffset\s+-?[0-9a-zA-Z]+", " ", s)
    s = re.sub(r"@\s*(?:start\(\)|end\(\)|[0-9.]+)", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?P<num>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))"
                         r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)", s):
        ident = m.group("ident")
        if not ident:
            continue
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # function call or aggregation with its argument list
        low = ident.lower()
        if low in _KEYWORDS or low in _AGGREGATIONS:
            continue
        names.add(ident)
    return names


def recording_rule_names() -> set[str]:
    text = (DASHBOARDS / "prometheus" / "rules.yml").read_text(encoding="utf-8")
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", text, re.M))


def promtool_parse_check(exprs: dict[str, str], tmp_path: Path) -> None:
    """Fail unless every expression parses, by `promtool check rules` on a generated rules file.

    (promtool has no `parse` command; each expression becomes a recording rule.)
    """
    lines = ["groups:", "  - name: parse-check", "    rules:"]
    for i, (label, expr) in enumerate(exprs.items()):
        lines.append(f"      # {label.replace(chr(10), ' ')}")
        lines.append(f"      - record: parse_check:expr_{i}")
        lines.append("        expr: |-")
        lines += [f"          {line}" for line in expr.split("\n")]
    path = tmp_path / "parse-check.rules.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run(["promtool", "check", "rules", str(path)], check=False)
    if proc.returncode != 0:
        pytest.fail(
            "some PromQL expressions do not parse:\n" + proc.stdout + proc.stderr + "\n(file: " + str(path) + ")",
            pytrace=False,
        )
