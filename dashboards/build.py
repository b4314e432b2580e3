#!/usr/bin/env python3
"""Observability as code for callkpi: Grafana dashboards and Prometheus rules.

    python dashboards/build.py           regenerate dashboards/grafana/*.json and
                                         dashboards/prometheus/rules.yml
    python dashboards/build.py --check   exit 1 (and name the files) if a committed file differs
                                         from what this generator makes

Everything here is generated from the tables and functions below, so a dashboard, a recording rule
and an alert can never disagree about a metric name. Edit this file, then regenerate.

Dashboards are built with the official ``grafana-foundation-sdk``; the build pinned in pyproject.toml
(the ``test`` extra) must match the Grafana image in docker-compose.yml (same major.minor, checked by
tests/ops/test_compose.py).

Helpers for other tests (import this file with importlib, it is not a package):

* ``all_panel_queries()``: every PromQL expression of every panel, with where it comes from and
  whether it may legitimately return nothing on a healthy system;
* ``substitute_variables(expr, values)``: replace Grafana template variables with literal values;
* ``rule_groups()``: the rule groups written to rules.yml, as data;
* ``prometheus_config(...)``: the Prometheus configuration, with another scrape target (for a test
  that scrapes a locally started ``callkpi serve``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import textwrap
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import gauge as gauge_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"
PROMETHEUS_DIR = HERE / "prometheus"
RULES_PATH = PROMETHEUS_DIR / "rules.yml"
PROMETHEUS_CONFIG_PATH = PROMETHEUS_DIR / "prometheus.yml"

#: uid of the Prometheus datasource, as provisioned in grafana/provisioning/datasources/.
DATASOURCE_UID = "callkpi-prometheus"
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

#: Scrape job of the exporter (``callkpi serve``); ``up{job="callkpi"}`` says whether it is up.
SCRAPE_JOB = "callkpi"

#: Default compliance abandon limit (the exporter exports the configured one per campaign).
DEFAULT_ABANDON_LIMIT = 0.03
#: Warn when an abandon rate passes this share of the campaign's limit.
ABANDON_WARN_SHARE = 0.8


# ---------------------------------------------------------------------------------------------
# Recording rules
# ---------------------------------------------------------------------------------------------

#: Windows recorded for every count and ratio.
WINDOWS = ("5m", "15m", "1h")
#: Extra window recorded only for the connect-rate baseline of the ConnectRateDrop alert.
BASELINE_WINDOW = "2h"

#: Recorded counts: name -> exporter counters summed (all per campaign, exported from 0).
COUNTS: dict[str, tuple[str, ...]] = {
    "dialed": ("callcenter_dialed_total",),
    "attempts_completed": ("callcenter_attempts_completed_total",),
    "answered": ("callcenter_answered_total",),
    "connected": ("callcenter_connected_total",),
    "abandoned": ("callcenter_abandoned_total",),
    "conversations": ("callcenter_conversations_total",),
    "conversions": ("callcenter_conversions_total",),
    "qualified_leads": ("callcenter_qualified_leads_total",),
    "handled": ("callcenter_handled_total",),
    # aht numerator: talk + hold of handled calls + wrap-up time (catalog: aht_seconds)
    "handle_seconds": (
        "callcenter_talk_seconds_total",
        "callcenter_hold_seconds_total",
        "callcenter_wrapup_seconds_total",
    ),
    # occupancy numerator and denominator (catalog: occupancy, productive_seconds)
    "busy_seconds": ("callcenter_on_call_seconds_total", "callcenter_wrap_up_seconds_total"),
    "productive_seconds": (
        "callcenter_available_seconds_total",
        "callcenter_on_call_seconds_total",
        "callcenter_wrap_up_seconds_total",
    ),
    "staffed_seconds": ("callcenter_staffed_seconds_total",),
}

#: Recorded ratios (catalog formulas): name -> (numerator count, denominator count).
RATIOS: dict[str, tuple[str, str]] = {
    "connect_rate": ("connected", "attempts_completed"),
    "answer_rate": ("answered", "attempts_completed"),
    "abandon_rate": ("abandoned", "connected"),
    "conversation_rate": ("conversations", "connected"),
    "conversion_rate": ("conversions", "connected"),
    "lead_rate": ("qualified_leads", "connected"),
    "occupancy": ("busy_seconds", "productive_seconds"),
}

#: Recorded averages: name -> (numerator count, denominator count, factor).
AVERAGES: dict[str, tuple[str, str, int]] = {
    "aht_seconds": ("handle_seconds", "handled", 1),
    "calls_per_agent_hour": ("handled", "staffed_seconds", 3600),
}


#: What late events took back, per exported counter (label `counter`: the counter's name without
#: `callcenter_` and `_total`): the `_total` counters only grow (additions), so a late
#: `agent.state` that shortens a closed interval, or a call re-attributed to another caller ID,
#: never looks like a counter reset (docs/observability.md).
RETRACTED = "callcenter_retracted_total"
CALLER_ID_RETRACTED = "callcenter_caller_id_retracted_total"


def net_increase(metric: str, window: str, by: str) -> str:
    """increase() of an exported counter minus what was retracted from it in the window.

    A series without its retraction series (an older exporter, a counter never retracted)
    counts as nothing retracted."""
    if metric.startswith("callcenter_caller_id_"):
        retracted, counter = CALLER_ID_RETRACTED, metric.removeprefix("callcenter_caller_id_")
    else:
        retracted, counter = RETRACTED, metric.removeprefix("callcenter_")
    counter = counter.removesuffix("_total")
    added = f"sum by ({by}) (increase({metric}[{window}]))"
    back = f'sum by ({by}) (increase({retracted}{{counter="{counter}"}}[{window}]))'
    return f"({added} - ({back} or {added} * 0))"


def count_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:increase{window}"


def ratio_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:ratio_rate{window}"


def avg_record(level: str, name: str, window: str) -> str:
    return f"{level}:callcenter_{name}:avg{window}"


def _rule(record: str, expr: str) -> dict:
    return {"record": record, "expr": expr}


def _window_rules(window: str, counts, ratios, averages) -> list[dict]:
    rules: list[dict] = []
    # 1. per-campaign increases, then 2. the center as the sum of the campaigns,
    # 3. ratios = summed numerator / summed denominator (absent when the denominator is 0).
    for name in counts:
        terms = [net_increase(m, window, "campaign") for m in COUNTS[name]]
        rules.append(_rule(count_record("campaign", name, window), "\n+ ".join(terms)))
    for name in counts:
        rules.append(
            _rule(count_record("center", name, window), f"sum({count_record('campaign', name, window)})")
        )
    for level in ("campaign", "center"):
        for name in ratios:
            num, den = RATIOS[name]
            rules.append(
                _rule(
                    ratio_record(level, name, window),
                    f"{count_record(level, num, window)} / ({count_record(level, den, window)} > 0)",
                )
            )
        for name in averages:
            num, den, factor = AVERAGES[name]
            scale = f"{factor} * " if factor != 1 else ""
            rules.append(
                _rule(
                    avg_record(level, name, window),
                    f"{scale}{count_record(level, num, window)} / ({count_record(level, den, window)} > 0)",
                )
            )
    return rules


def _caller_id_rules(window: str) -> list[dict]:
    """Per caller ID connect rate, and the rate of the campaign's *other* caller IDs."""
    rules = []
    for name in ("dialed", "attempts_completed", "connected"):
        rules.append(
            _rule(
                f"campaign_caller_id:callcenter_caller_id_{name}:increase{window}",
                net_increase(f"callcenter_caller_id_{name}_total", window, "campaign, caller_id"),
            )
        )
    for name in ("attempts_completed", "connected"):
        rules.append(
            _rule(
                f"campaign:callcenter_caller_id_{name}:increase{window}",
                f"sum by (campaign) (campaign_caller_id:callcenter_caller_id_{name}:increase{window})",
            )
        )
    for name in ("attempts_completed", "connected"):
        # campaign total minus this caller ID, kept with the caller ID's labels
        rules.append(
            _rule(
                f"campaign_caller_id:callcenter_caller_id_others_{name}:increase{window}",
                f"campaign_caller_id:callcenter_caller_id_{name}:increase{window} * -1"
                f" + on (campaign) group_left () campaign:callcenter_caller_id_{name}:increase{window}",
            )
        )
    rules.append(
        _rule(
            f"campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate{window}",
            f"campaign_caller_id:callcenter_caller_id_connected:increase{window}"
            f" / (campaign_caller_id:callcenter_caller_id_attempts_completed:increase{window} > 0)",
        )
    )
    rules.append(
        _rule(
            f"campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate{window}",
            f"campaign_caller_id:callcenter_caller_id_others_connected:increase{window}"
            f" / (campaign_caller_id:callcenter_caller_id_others_attempts_completed:increase{window} > 0)",
        )
    )
    return rules


def _pipeline_rules() -> list[dict]:
    rules = []
    for window in ("10m", "6h"):
        rules += [
            _rule(
                f"center:callcenter_pipeline_events_consumed:increase{window}",
                f"sum(increase(callcenter_pipeline_events_consumed_total[{window}]))",
            ),
            _rule(
                f"center:callcenter_pipeline_events_rejected:increase{window}",
                f"sum(increase(callcenter_pipeline_events_rejected_total[{window}]))",
            ),
            _rule(
                f"center:callcenter_pipeline_rejected:ratio_rate{window}",
                f"center:callcenter_pipeline_events_rejected:increase{window}"
                f" / (center:callcenter_pipeline_events_consumed:increase{window} > 0)",
            ),
        ]
    for q in ("0.5", "0.99"):
        pct = q.split(".")[1].ljust(2, "0")
        rules.append(
            _rule(
                f"center:callcenter_pipeline_event_to_store_seconds:p{pct}_5m",
                f"histogram_quantile({q}, sum by (le) (rate(callcenter_pipeline_event_to_store_seconds_bucket[5m])))",
            )
        )
    rules.append(
        _rule(
            "center:callcenter_pipeline_event_to_store:increase5m",
            "sum(increase(callcenter_pipeline_event_to_store_seconds_count[5m]))",
        )
    )
    return rules


def _compliance_rules() -> list[dict]:
    return [
        _rule(
            "campaign:callcenter_compliance_abandon_limit:ratio",
            # the configured limit, or the default for a campaign the exporter gives no limit for
            "max by (campaign) (callcenter_compliance_abandon_limit_ratio)"
            f" or on (campaign) ({DEFAULT_ABANDON_LIMIT} + 0 * max by (campaign)"
            " ({__name__=~\"callcenter_compliance_(us_abandon_rate_30d|uk_abandon_rate_today)_ratio\"}))",
        ),
        _rule(
            "campaign:callcenter_compliance_us_abandon_rate_30d:ratio",
            "max by (campaign) (callcenter_compliance_us_abandon_rate_30d_ratio)",
        ),
        _rule(
            "campaign:callcenter_compliance_uk_abandon_rate_today:ratio",
            "max by (campaign) (callcenter_compliance_uk_abandon_rate_today_ratio)",
        ),
        _rule(
            "campaign:callcenter_connected:today",
            'max by (campaign) (label_replace(callcenter_window_connected{window="today", scope_kind="campaign"},'
            ' "campaign", "$1", "scope_id", "(.*)"))',
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------

def _expr(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _alert(name, expr, for_, severity, category, summary, description, runbook, extra_labels=None):
    labels = {"severity": severity, "category": category}
    labels.update(extra_labels or {})
    return {
        "alert": name,
        "expr": _expr(expr),
        "for": for_,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": " ".join(textwrap.dedent(description).split()),
            "runbook": " ".join(textwrap.dedent(runbook).split()),
        },
    }


#: The exporter's caller-ID counters carry no campaign label (the store counts per caller ID across
#: campaigns), so the caller-ID rules compare a number with all other numbers of the center; a
#: source that adds `campaign` gets the comparison per campaign from the same rules.
_OF_CAMPAIGN = "{{ with $labels.campaign }} of campaign {{ . }}{{ end }}"
_OF_CAMPAIGN_OR_CENTER = "{{ with $labels.campaign }} of campaign {{ . }}{{ else }} of the center{{ end }}"


def _kpi_alerts() -> list[dict]:
    return [
        _alert(
            "ConnectRateDrop",
            """
            campaign:callcenter_connect_rate:ratio_rate15m
              < 0.7 * (campaign:callcenter_connect_rate:ratio_rate2h offset 15m)
            and
            campaign:callcenter_connect_rate:ratio_rate15m
              < 0.7 * (
                  sum by (campaign) (increase(callcenter_connected_total[15m] offset 1w))
                /
                  (sum by (campaign) (increase(callcenter_attempts_completed_total[15m] offset 1w)) >= 100)
              )
            and
            campaign:callcenter_attempts_completed:increase15m >= 100
            """,
            "15m",
            "warning",
            "kpi",
            "Connect rate of campaign {{ $labels.campaign }} dropped",
            """
            The 15-minute connect rate (human answers / completed attempts) of campaign
            {{ $labels.campaign }} is below 70% of both its level over the 2 hours before and its
            level at the same time a week ago, with at least 100 completed attempts in 15 minutes
            (and a week ago). A drop against both baselines is not the normal time-of-day pattern.
            """,
            """
            Open the Campaigns and Caller-ID health dashboards. If one caller ID collapsed, see
            CallerIdConnectRateCollapse. If all caller IDs dropped, check the dialing list (a new or
            exhausted list, wrong time zone), the carrier/trunk status and answering-machine
            detection settings; lower the dialing ratio if agents sit idle.
            """,
        ),
        _alert(
            "CallerIdConnectRateCollapse",
            """
            campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate1h
              < 0.5 * campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h
            and
            campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h
              >= 0.8 * (campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h offset 1h)
            and
            campaign_caller_id:callcenter_caller_id_attempts_completed:increase1h >= 50
            and
            campaign_caller_id:callcenter_caller_id_others_attempts_completed:increase1h >= 100
            """,
            "15m",
            "warning",
            "kpi",
            "Caller ID {{ $labels.caller_id }}" + _OF_CAMPAIGN + " may be flagged as spam",
            """
            Over the last hour caller ID {{ $labels.caller_id }} connected less than half as often as
            the other caller IDs""" + _OF_CAMPAIGN_OR_CENTER + """, while those held at least 80% of
            their rate of an hour earlier (at least 50 attempts on this number, 100 on the others).
            A number that collapses alone is typically labelled "spam likely" by carriers.
            """,
            """
            Take the caller ID out of rotation in the dialer, check its reputation with the carriers'
            registration/remediation portals, and rest it before reuse. Check the Caller-ID health
            dashboard for other numbers trending the same way.
            """,
        ),
    ]


def _compliance_alerts() -> list[dict]:
    alerts = []
    regimes = (
        (
            "US30d",
            "us",
            "campaign:callcenter_compliance_us_abandon_rate_30d:ratio",
            "campaign:callcenter_connected:increase30d >= 100",
            "30-day abandon rate (FCC/FTC TSR)",
            "at least 100 live answers in 30 days",
        ),
        (
            "UKToday",
            "uk",
            "campaign:callcenter_compliance_uk_abandon_rate_today:ratio",
            "campaign:callcenter_connected:today >= 50",
            "abandon rate of the day (Ofcom)",
            "at least 50 live answers today",
        ),
    )
    limit = "campaign:callcenter_compliance_abandon_limit:ratio"
    for suffix, regime, rate, volume, what, volume_text in regimes:
        alerts.append(
            _alert(
                f"AbandonRate{suffix}NearLimit",
                f"""
                {rate}
                  > on (campaign) ({ABANDON_WARN_SHARE} * {limit})
                and
                {rate}
                  <= on (campaign) {limit}
                and on (campaign)
                {volume}
                """,
                "15m",
                "warning",
                "compliance",
                f"Campaign {{{{ $labels.campaign }}}} {what} is near its limit",
                f"""
                The {what} of campaign {{{{ $labels.campaign }}}} is above {int(ABANDON_WARN_SHARE * 100)}% of
                the campaign's configured limit (default {DEFAULT_ABANDON_LIMIT:.0%}), with {volume_text}.
                """,
                """
                Slow the campaign down before it breaches: lower the predictive dialing ratio or the
                pacing target, or switch it to progressive/preview. Watch the abandon headroom on the
                Campaigns dashboard.
                """,
                {"regime": regime},
            )
        )
        alerts.append(
            _alert(
                f"AbandonRate{suffix}OverLimit",
                f"""
                {rate}
                  > on (campaign) {limit}
                and on (campaign)
                {volume}
                """,
                "5m",
                "critical",
                "compliance",
                f"Campaign {{{{ $labels.campaign }}}} {what} is over its limit",
                f"""
                The {what} of campaign {{{{ $labels.campaign }}}} is above the campaign's configured
                limit (default {DEFAULT_ABANDON_LIMIT:.0%}), with {volume_text}. The campaign is out of
                compliance while it keeps dialing at this rate.
                """,
                """
                Stop predictive dialing for the campaign now (pause it or switch to preview/progressive),
                then tell the compliance owner. Resume predictive mode only when the headroom on the
                Campaigns dashboard is positive again.
                """,
                {"regime": regime},
            )
        )
    return alerts


def _pipeline_alerts() -> list[dict]:
    return [
        _alert(
            "CallkpiPipelineStalled",
            """
            sum(increase(callcenter_pipeline_events_consumed_total[5m])) == 0
            and on ()
            sum(callcenter_agents{scope_kind="center", state=~"available|on_call|wrap_up"}) >= 1
            """,
            "5m",
            "critical",
            "pipeline",
            "callkpi consumed no dialer event for 10 minutes while agents are working",
            """
            No event was consumed from Kafka for at least 10 minutes while at least one agent is
            available, on a call or in wrap-up (by the last known live state). Wallboards and KPIs are
            frozen.
            """,
            """
            Check the workers (`callcenter_pipeline_worker_up`, their logs), Kafka reachability and
            the consumer group, and Redis (`callcenter_pipeline_redis_errors_total`). Then check that
            the dialer still produces to the input topic. Restarting a worker is safe: commits are
            offset-guarded, a replay changes nothing.
            """,
        ),
        _alert(
            "CallkpiConsumerLagGrowing",
            """
            sum by (topic) (callcenter_pipeline_consumer_lag) > 1000
            and
            sum by (topic) (deriv(callcenter_pipeline_consumer_lag[10m])) > 0
            """,
            "10m",
            "warning",
            "pipeline",
            "Consumer lag on {{ $labels.topic }} keeps growing",
            """
            More than 1000 events are waiting on topic {{ $labels.topic }} and the backlog has kept
            growing for 10 minutes: the workers process slower than the dialer produces, so the
            wallboard falls behind.
            """,
            """
            Look at the Pipeline dashboard: lag per partition (one stuck partition means one stuck
            worker), batch rate, Redis errors and event-to-store latency. Add a worker (up to the
            partition count) or fix the slow dependency (usually Redis).
            """,
        ),
        _alert(
            "CallkpiEventToStoreLatencyHigh",
            """
            center:callcenter_pipeline_event_to_store_seconds:p99_5m > 10
            and on ()
            center:callcenter_pipeline_event_to_store:increase5m >= 100
            """,
            "10m",
            "warning",
            "pipeline",
            "99th percentile of event-to-store latency is over 10 s",
            """
            The 99th percentile of the time from an event's timestamp to its commit in Redis has been
            above 10 seconds for 10 minutes (at least 100 events per 5 minutes). KPIs and wallboards
            show the past, not now.
            """,
            """
            If `callcenter_pipeline_events_late_total` rises too, the dialer delivers late (check the
            dialer and Kafka producer); otherwise check consumer lag, Redis latency and worker CPU on
            the Pipeline dashboard.
            """,
        ),
        _alert(
            "CallkpiRejectedEventsSurge",
            """
            center:callcenter_pipeline_rejected:ratio_rate10m > 0.05
            and
            center:callcenter_pipeline_rejected:ratio_rate10m
              > 2 * (center:callcenter_pipeline_rejected:ratio_rate6h offset 10m or vector(0))
            and
            center:callcenter_pipeline_events_rejected:increase10m >= 50
            """,
            "5m",
            "warning",
            "pipeline",
            "More than 5% of dialer events are rejected",
            """
            Over the last 10 minutes more than 5% of consumed events were rejected to the dead-letter
            topic (at least 50 events), more than twice the share of the 6 hours before. Rejected
            events are missing from the KPIs.
            """,
            """
            See "Rejected events by reason" on the Pipeline dashboard and read a few records of the
            dead-letter topic (`dialer.events.dlq`): a schema change or new dialer release is the usual
            cause. Fix the producer; rejected events can be replayed from the DLQ once fixed.
            """,
        ),
        _alert(
            "CallkpiWorkerDown",
            """
            callcenter_pipeline_worker_up == 0
            """,
            "5m",
            "warning",
            "pipeline",
            "callkpi worker {{ $labels.worker }} has no fresh heartbeat",
            """
            Worker {{ $labels.worker }} has not refreshed its heartbeat for 5 minutes. Its partitions
            move to the other workers after the consumer-group session times out; if it was the last
            worker, CallkpiPipelineStalled follows.
            """,
            """
            Check the worker's container/process and logs (crash loop, Kafka or Redis connection
            errors) and restart it.
            """,
        ),
        _alert(
            "CallkpiExporterDown",
            f"""
            up{{job="{SCRAPE_JOB}"}} == 0
            or
            absent(up{{job="{SCRAPE_JOB}"}})
            """,
            "2m",
            "critical",
            "exporter",
            "callkpi exporter (callkpi serve) is down or not scraped",
            f"""
            Prometheus could not scrape job "{SCRAPE_JOB}" for 2 minutes (or has no such target). All
            call-center KPI, compliance and pipeline alerts are blind meanwhile and are inhibited in
            Alertmanager.
            """,
            """
            Check the `api` service (`callkpi serve`): process, port 8077, `/metrics` answering, and
            its Redis connection. Then check Prometheus' target page for the scrape error.
            """,
        ),
    ]


def rule_groups() -> list[dict]:
    """All rule groups of rules.yml, as data."""
    groups = []
    for window in WINDOWS:
        groups.append(
            {
                "name": f"callkpi.kpi.{window}",
                "rules": _window_rules(window, list(COUNTS), list(RATIOS), list(AVERAGES)),
            }
        )
    groups.append(
        {
            "name": f"callkpi.kpi.{BASELINE_WINDOW}",
            "rules": _window_rules(BASELINE_WINDOW, ["connected", "attempts_completed"], ["connect_rate"], []),
        }
    )
    groups.append({"name": "callkpi.caller_id.1h", "rules": _caller_id_rules("1h")})
    groups.append({"name": "callkpi.pipeline", "rules": _pipeline_rules()})
    groups.append({"name": "callkpi.compliance", "rules": _compliance_rules()})
    groups.append(
        {
            "name": "callkpi.compliance.30d",
            # a 30-day range is heavy: evaluate it every 2 minutes only (still well inside the
            # 5-minute lookback, so the alerts reading it never see a gap)
            "interval": "2m",
            "rules": [
                _rule(
                    "campaign:callcenter_connected:increase30d",
                    "sum by (campaign) (increase(callcenter_connected_total[30d]))",
                )
            ],
        }
    )
    groups.append({"name": "callkpi.alerts.kpi", "rules": _kpi_alerts()})
    groups.append({"name": "callkpi.alerts.compliance", "rules": _compliance_alerts()})
    groups.append({"name": "callkpi.alerts.pipeline", "rules": _pipeline_alerts()})
    return groups


def recording_rule_names() -> list[str]:
    return [r["record"] for g in rule_groups() for r in g["rules"] if "record" in r]


def alert_names() -> list[str]:
    return [r["alert"] for g in rule_groups() for r in g["rules"] if "alert" in r]


# ---------------------------------------------------------------------------------------------
# A minimal YAML writer (enough for rule files; no PyYAML needed)
# ---------------------------------------------------------------------------------------------

_PLAIN_FIRST = re.compile(r"[A-Za-z0-9_($]")
_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _yaml_scalar(value, indent: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    s = str(value)
    if "\n" in s:
        pad = " " * (indent + 2)
        return "|-\n" + "\n".join(pad + line if line else "" for line in s.split("\n"))
    plain = (
        s
        and _PLAIN_FIRST.match(s)
        and s == s.strip()
        and ": " not in s
        and " #" not in s
        and not s.endswith(":")
        and "\t" not in s
        and s.lower() not in _YAML_SPECIAL
        and not re.fullmatch(r"[-+]?[0-9][0-9_.eE+-]*", s)
    )
    return s if plain else json.dumps(s, ensure_ascii=False)


def _yaml_lines(obj, indent: int = 0) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{key}:")
                lines += _yaml_lines(value, indent + 2)
            elif isinstance(value, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(value, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(value, indent)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = _yaml_lines(item, indent + 2)
                sub[0] = f"{pad}- " + sub[0][indent + 2 :]
                lines += sub
            else:
                lines.append(f"{pad}- {_yaml_scalar(item, indent)}")
    else:
        raise TypeError(obj)
    return lines


def render_rules() -> str:
    header = (
        "# GENERATED by dashboards/build.py: edit the generator, then run `python dashboards/build.py`.\n"
        "# Recording rules sum numerators and denominators with increase() before dividing;\n"
        "# alerts compare a short window with a baseline, need a minimum volume and wait with `for:`.\n"
        "# Unit tests: dashboards/prometheus/tests/*.yml (`promtool test rules`).\n"
    )
    return header + "\n".join(_yaml_lines({"groups": rule_groups()})) + "\n"


# ---------------------------------------------------------------------------------------------
# Prometheus configuration (the committed prometheus.yml is rendered from here for compose)
# ---------------------------------------------------------------------------------------------

def prometheus_config(
    scrape_target: str = "api:8077",
    alertmanager_target: str | None = "alertmanager:9093",
    rule_file: str = "rules.yml",
    scrape_interval: str = "15s",
) -> str:
    """The Prometheus configuration; tests render it with a local scrape target."""
    alerting = (
        "alerting:\n"
        "  alertmanagers:\n"
        "    - static_configs:\n"
        f"        - targets: [{json.dumps(alertmanager_target)}]\n"
        if alertmanager_target
        else ""
    )
    return (
        "# GENERATED by dashboards/build.py (prometheus_config()); rule_files is relative to this file.\n"
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "  external_labels:\n"
        "    stack: callkpi\n"
        "rule_files:\n"
        f"  - {json.dumps(rule_file)}\n"
        f"{alerting}"
        "scrape_configs:\n"
        f"  - job_name: {SCRAPE_JOB}\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: [{json.dumps(scrape_target)}]\n"
        "  - job_name: prometheus\n"
        "    static_configs:\n"
        '      - targets: ["localhost:9090"]\n'
    )


# ---------------------------------------------------------------------------------------------
# Grafana dashboards
# ---------------------------------------------------------------------------------------------

GREEN, AMBER, RED, BLUE, GREY = "green", "orange", "red", "blue", "text"


def thresholds(*steps) -> dash_b.ThresholdsConfig:
    """thresholds(RED, (0.1, AMBER), (0.2, GREEN)): base colour then (value, colour) steps."""
    base, *rest = steps
    return (
        dash_b.ThresholdsConfig()
        .mode(dash_m.ThresholdsMode.ABSOLUTE)
        .steps([dash_m.Threshold(value=None, color=base)] + [dash_m.Threshold(value=v, color=c) for v, c in rest])
    )


def query(expr: str, legend: str | None = None, ref: str = "A", instant: bool = False, table: bool = False,
          interval: str | None = None) -> prom_b.Dataquery:
    q = prom_b.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    q = q.instant() if instant or table else q.range()
    if legend is not None:
        q = q.legend_format(legend)
    if table:
        q = q.format(prom_m.PromQueryFormat.TABLE)
    if interval:
        q = q.interval(interval)
    return q


def _refs():
    return [chr(ord("A") + i) for i in range(26)]


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # dashboard uid
    panel_id: int
    panel: str  # panel title
    ref_id: str
    expr: str
    instant: bool
    #: True when a healthy system may legitimately return no data (nothing configured/happened).
    optional: bool


class Board:
    """A dashboard under construction: numbers panels, remembers which ones may be empty."""

    def __init__(self, uid: str, title: str, description: str, tags: list[str], time_from: str = "now-6h",
                 refresh: str = "30s"):
        self.uid = uid
        self.builder = (
            dash_b.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(["callkpi"] + tags)
            .time(time_from, "now")
            .refresh(refresh)
            .timezone("browser")
            .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
            .readonly()
        )
        self.next_id = 1
        self.optional: set[str] = set()

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def panel(self, panel, optional: bool = False):
        built = panel.id(self._id()).datasource(DATASOURCE)
        self.builder.with_panel(built)
        if optional:
            self.optional.add(built.build().title)
        return self

    def row(self, title: str, repeat: str | None = None):
        r = dash_b.Row(title).id(self._id())
        if repeat:
            r = r.repeat(repeat)
        self.builder.with_row(r)
        return self

    def variable(self, var):
        self.builder.with_variable(var)
        return self

    def build(self) -> dict:
        return json.loads(json.dumps(self.builder.build(), cls=JSONEncoder))


def label_values_var(name: str, metric: str, label: str, label_text: str, multi: bool = True):
    return (
        dash_b.QueryVariable(name)
        .label(label_text)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label})")
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .all_value(".*")
        .current(dash_m.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def custom_var(name: str, label: str, values: list[str], default: str):
    return (
        dash_b.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(dash_m.VariableOption(selected=True, text=default, value=default))
    )


def stat(title: str, expr: str, unit: str, th, *, legend: str | None = None, description: str = "",
         w: int = 4, h: int = 5, text_mode=common_m.BigValueTextMode.AUTO, decimals: float | None = None):
    p = (
        stat_b.Panel()
        .title(title)
        .description(description)
        .with_target(query(expr, legend, instant=True))
        .unit(unit)
        .thresholds(th)
        .color_mode(common_m.BigValueColorMode.BACKGROUND)
        .graph_mode(common_m.BigValueGraphMode.NONE)
        .text_mode(text_mode)
        .justify_mode(common_m.BigValueJustifyMode.CENTER)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("–")
        .span(w)
        .height(h)
    )
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def timeseries(title: str, targets: list[tuple[str, str]], unit: str, *, description: str = "", w: int = 12,
               h: int = 8, stacked: bool = False, bars: bool = False, interval: str | None = None,
               min_val: float | None = 0, max_val: float | None = None, th=None):
    p = (
        timeseries_b.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(20 if stacked else 10)
        .legend(common_b.VizLegendOptions().display_mode(common_m.LegendDisplayMode.LIST)
                .placement(common_m.LegendPlacement.BOTTOM).show_legend(True))
        .tooltip(common_b.VizTooltipOptions().mode(common_m.TooltipDisplayMode.MULTI)
                 .sort(common_m.SortOrder.DESCENDING))
    )
    for ref, (expr, legend) in zip(_refs(), targets):
        p = p.with_target(query(expr, legend, ref=ref, interval=interval))
    if stacked:
        p = p.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
    if bars:
        p = p.draw_style(common_m.GraphDrawStyle.BARS).fill_opacity(60)
    if interval:
        p = p.interval(interval)
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    if th is not None:
        p = p.thresholds(th).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common_m.GraphThresholdsStyleMode.DASHED)
        )
    return p


def bargauge(title: str, targets: list[tuple[str, str]], unit: str, th, *, description: str = "", w: int = 12,
             h: int = 8, vertical: bool = False, min_val: float | None = 0, max_val: float | None = None):
    p = (
        bargauge_b.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .thresholds(th)
        .display_mode(common_m.BarGaugeDisplayMode.GRADIENT)
        .orientation(common_m.VizOrientation.VERTICAL if vertical else common_m.VizOrientation.HORIZONTAL)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .show_unfilled(True)
        .span(w)
        .height(h)
    )
    for ref, (expr, legend) in zip(_refs(), targets):
        p = p.with_target(query(expr, legend, ref=ref, instant=True))
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    return p


def gauge(title: str, expr: str, legend: str, unit: str, th, *, description: str = "", w: int = 8, h: int = 7,
          max_val: float = 0.05):
    return (
        gauge_b.Panel()
        .title(title)
        .description(description)
        .with_target(query(expr, legend, instant=True))
        .unit(unit)
        .min(0)
        .max(max_val)
        .thresholds(th)
        .show_threshold_markers(True)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(w)
        .height(h)
    )


def _rename(field: str, name: str, unit: str | None = None, extra: list | None = None):
    props = [dash_m.DynamicConfigValue(id_val="displayName", value=name)]
    if unit:
        props.append(dash_m.DynamicConfigValue(id_val="unit", value=unit))
    props += extra or []
    return field, props


def table(title: str, targets: list[tuple[str, str]], columns: dict[str, tuple[str, str | None]], *,
          description: str = "", w: int = 24, h: int = 12, sort_by: str | None = None,
          hide: tuple[str, ...] = (), extra_overrides: dict[str, list] | None = None):
    """A table joining instant queries on their labels (transformation `merge`).

    columns: field name in the merged frame ("Value #A" or a label) -> (display name, unit).
    """
    p = (
        table_b.Panel()
        .title(title)
        .description(description)
        .span(w)
        .height(h)
        .cell_height(common_m.TableCellHeight.SM)
        .with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dash_m.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, **{h_: True for h_ in hide}},
                    "indexByName": {},
                    "renameByName": {},
                },
            )
        )
    )
    for ref, (expr, _legend) in zip(_refs(), targets):
        p = p.with_target(query(expr, None, ref=ref, table=True))
    for field, (name, unit) in columns.items():
        fld, props = _rename(field, name, unit, (extra_overrides or {}).get(field))
        p = p.override_by_name(fld, props)
    if sort_by:
        p = p.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(True)])
    return p


def _color_cell(mode: str = "color-background"):
    return dash_m.DynamicConfigValue(id_val="custom.cellOptions", value={"type": mode})


RATE_WINDOWS = ["15m", "5m", "1h", "today"]


def _window_gauge(kpi: str, scope_kind: str, scope_filter: str, window: str = "$window") -> str:
    return f'max(callcenter_window_{kpi}{{scope_kind="{scope_kind}", {scope_filter}window="{window}"}})'


def wallboard() -> Board:
    b = Board(
        "callkpi-wallboard",
        "Call center wallboard",
        "Live wallboard: the whole center on top, one row per selected campaign below. Rates over the "
        "selected window from the exporter's windowed gauges; colours: green on target, amber watch, "
        "red act.",
        ["wallboard"],
        time_from="now-1h",
        refresh="10s",
    )
    b.variable(custom_var("window", "Rate window", RATE_WINDOWS, "15m"))
    b.variable(label_values_var("campaign", "callcenter_dialed_total", "campaign", "Campaign"))

    def kpi_row(scope_kind: str, scope_filter: str, camp_filter: str):
        b.panel(stat("Connect rate", _window_gauge("connect_rate_ratio", scope_kind, scope_filter), "percentunit",
                     thresholds(RED, (0.10, AMBER), (0.20, GREEN)), decimals=1,
                     description="Human answers / completed attempts over the window."))
        b.panel(stat("Abandon rate", _window_gauge("abandon_rate_ratio", scope_kind, scope_filter), "percentunit",
                     thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER),
                                (DEFAULT_ABANDON_LIMIT, RED)), decimals=1,
                     description="Abandoned / human answers over the window (red at the 3% default limit)."))
        b.panel(stat("Calls waiting", f"sum(callcenter_calls_waiting{{{camp_filter}}})", "none",
                     thresholds(GREEN, (3, AMBER), (10, RED)),
                     description="Answered by a person, not yet connected to an agent."))
        b.panel(stat("Longest wait", f"max(callcenter_longest_wait_seconds{{{camp_filter}}})", "s",
                     thresholds(GREEN, (2, AMBER), (5, RED)), decimals=0,
                     description="Longest current wait for an agent (compliance: connect within 2 s)."))
        b.panel(stat("AHT", _window_gauge("aht_seconds", scope_kind, scope_filter), "s",
                     thresholds(GREEN, (360, AMBER), (600, RED)), decimals=0,
                     description="Average handle time: (talk + hold + wrap-up) / handled calls."))
        b.panel(stat("Conversions today", _window_gauge("conversions", scope_kind, scope_filter, "today"), "none",
                     thresholds(RED, (1, AMBER), (10, GREEN)), decimals=0,
                     description="Wrap-ups with a success disposition since local midnight."))

    b.row("Center")
    kpi_row("center", "", "")
    b.panel(stat("Agents by state",
                 'sum by (state) (callcenter_agents{scope_kind="center", state!="logged_out"})', "none",
                 thresholds(BLUE), legend="{{state}}", w=12, text_mode=common_m.BigValueTextMode.VALUE_AND_NAME,
                 description="Agents logged in, by current state.")
            .override_by_name("available", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": GREEN})])
            .override_by_name("on_call", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": BLUE})])
            .override_by_name("wrap_up", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": AMBER})])
            .override_by_name("paused", [dash_m.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": RED})])
            .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS)))
    b.panel(stat("Occupancy", _window_gauge("occupancy_ratio", "center", ""), "percentunit",
                 thresholds(AMBER, (0.70, GREEN), (0.92, RED)), decimals=0,
                 description="(on call + wrap-up) / (available + on call + wrap-up). Red above 92%: burnout risk."))
    b.panel(stat("Calls talking", "sum(callcenter_calls_talking)", "none", thresholds(BLUE)))
    b.panel(stat("Calls ringing", "sum(callcenter_calls_ringing)", "none", thresholds(BLUE)))

    b.row("Campaign $campaign", repeat="campaign")
    kpi_row("campaign", 'scope_id=~"$campaign", ', 'campaign=~"$campaign"')
    return b


def campaigns() -> Board:
    b = Board(
        "callkpi-campaigns",
        "Campaigns",
        "Per-campaign funnel, rates over time, compliance and cost. Counts over the dashboard's time range.",
        ["campaigns"],
        time_from="now-24h",
        refresh="1m",
    )
    b.variable(label_values_var("campaign", "callcenter_dialed_total", "campaign", "Campaign"))
    sel = 'campaign=~"$campaign"'

    def total(metric: str, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} (increase({metric}{{{sel}}}[$__range]))"

    b.row("Funnel (selected time range)")
    b.panel(bargauge(
        "Funnel: dial → connect → conversation → qualified lead → sale",
        [
            (total("callcenter_dialed_total"), "1 dialed"),
            (total("callcenter_connected_total"), "2 connected (person)"),
            (total("callcenter_conversations_total"), "3 conversations"),
            (total("callcenter_qualified_leads_total"), "4 qualified leads"),
            (total("callcenter_orders_total"), "5 sales"),
        ],
        "none", thresholds(BLUE), w=12, h=9,
        description="Counts over the selected time range, for the selected campaigns.",
    ))
    b.panel(table(
        "Campaign scorecard (selected time range)",
        [
            (total("callcenter_dialed_total", "campaign"), "dialed"),
            (f"{total('callcenter_connected_total', 'campaign')} / ({total('callcenter_attempts_completed_total', 'campaign')} > 0)", "connect"),
            (f"{total('callcenter_abandoned_total', 'campaign')} / ({total('callcenter_connected_total', 'campaign')} > 0)", "abandon"),
            (f"{total('callcenter_conversions_total', 'campaign')} / ({total('callcenter_connected_total', 'campaign')} > 0)", "conversion"),
            (total("callcenter_revenue_total", "campaign"), "revenue"),
        ],
        {
            "campaign": ("Campaign", None),
            "Value #A": ("Dialed", "none"),
            "Value #B": ("Connect rate", "percentunit"),
            "Value #C": ("Abandon rate", "percentunit"),
            "Value #D": ("Conversion rate", "percentunit"),
            "Value #E": ("Revenue", "none"),
        },
        w=12, h=9, sort_by="Dialed",
        description="Ratios are sums of numerators over sums of denominators over the range.",
    ))

    b.row("Rates over time")
    b.panel(timeseries("Connect rate (15 min)", [(f"campaign:callcenter_connect_rate:ratio_rate15m{{{sel}}}", "{{campaign}}")],
                       "percentunit", w=8))
    b.panel(timeseries("Abandon rate (15 min)", [(f"campaign:callcenter_abandon_rate:ratio_rate15m{{{sel}}}", "{{campaign}}")],
                       "percentunit", w=8,
                       th=thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED))))
    b.panel(timeseries("Conversion and lead rate (1 h)", [
        (f"campaign:callcenter_conversion_rate:ratio_rate1h{{{sel}}}", "conversion {{campaign}}"),
        (f"campaign:callcenter_lead_rate:ratio_rate1h{{{sel}}}", "lead {{campaign}}"),
    ], "percentunit", w=8))

    b.row("Compliance")
    b.panel(gauge("US abandon rate, rolling 30 days",
                  f"max by (campaign) (callcenter_compliance_us_abandon_rate_30d_ratio{{{sel}}})", "{{campaign}}",
                  "percentunit",
                  thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED)),
                  description="FCC/FTC TSR: compliance abandons / live answers over 30 days. Limit 3% by default "
                              "(see the limit panel for the configured one)."))
    b.panel(gauge("UK abandon rate, today",
                  f"max by (campaign) (callcenter_compliance_uk_abandon_rate_today_ratio{{{sel}}})", "{{campaign}}",
                  "percentunit",
                  thresholds(GREEN, (DEFAULT_ABANDON_LIMIT * ABANDON_WARN_SHARE, AMBER), (DEFAULT_ABANDON_LIMIT, RED)),
                  description="Ofcom: (abandoned − estimated machine abandons) / (agent-connected + abandoned), per day."))
    b.panel(bargauge("Abandon headroom (abandons left)",
                     [(f"max by (campaign) (callcenter_compliance_abandon_headroom{{{sel}}})", "{{campaign}}")],
                     "none", thresholds(RED, (1, AMBER), (20, GREEN)), w=4, h=7,
                     description="How many more compliance abandons the window takes before it breaches the limit."))
    b.panel(stat("Configured abandon limit",
                 f"max by (campaign) (callcenter_compliance_abandon_limit_ratio{{{sel}}})", "percentunit",
                 thresholds(BLUE), legend="{{campaign}}", w=4, h=7, decimals=1,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME))

    b.row("Money and targets")
    b.panel(stat("Cost per lead (today)",
                 'max by (scope_kind, scope_id) (callcenter_window_cost_per_lead{window="today", '
                 'scope_kind=~"center|campaign", scope_id=~"$campaign|"})',
                 "none", thresholds(BLUE), legend="{{scope_kind}} {{scope_id}}", w=6, h=6, decimals=2,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME,
                 description="Cost (agent time + telephony + dials, from the cost configuration) / qualified leads. "
                             "Empty until costs are configured."), optional=True)
    b.panel(stat("Revenue (today)",
                 f'max by (scope_id) (callcenter_window_revenue{{scope_kind="campaign", scope_id=~"$campaign", window="today"}})',
                 "none", thresholds(BLUE), legend="{{scope_id}}", w=6, h=6, decimals=0,
                 text_mode=common_m.BigValueTextMode.VALUE_AND_NAME))
    b.panel(table(
        "Targets",
        [
            ("max by (target, kpi, scope) (callcenter_target_status)", "status"),
            ("max by (target, kpi, scope) (callcenter_target_attainment_ratio)", "attainment"),
        ],
        {
            "target": ("Target", None),
            "kpi": ("KPI", None),
            "scope": ("Scope", None),
            "Value #A": ("Status", None),
            "Value #B": ("Attainment", "percentunit"),
        },
        w=12, h=6,
        extra_overrides={"Value #A": [
            dash_m.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                "0": {"text": "ok", "color": GREEN, "index": 0},
                "1": {"text": "warn", "color": AMBER, "index": 1},
                "2": {"text": "critical", "color": RED, "index": 2},
            }}]),
            _color_cell(),
        ]},
        description="SMART targets from the configuration: status and attainment (value / goal, direction-aware).",
    ), optional=True)
    return b


def agents() -> Board:
    b = Board(
        "callkpi-agents",
        "Agents",
        "One row per agent (state, time in state, today's handled calls, AHT, wrap-up, calls per agent-hour, "
        "occupancy) and team trends.",
        ["agents"],
        time_from="now-8h",
        refresh="15s",
    )
    b.variable(label_values_var("team", "callcenter_agent", "team", "Team"))
    sel = 'team=~"$team"'

    def agent(kpi: str) -> str:
        # every column grouped the same way, so the table's merge joins them on (agent, team)
        return f'max by (agent, team) (callcenter_agent{{{sel}, kpi="{kpi}"}})'

    # callcenter_agent{kpi="state"} is the state's code (a value, so that a state change does not
    # start new series): map it back to the state's name and colour.
    state_names = dash_m.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
        str(code): {"text": state, "color": color, "index": code}
        for code, (state, color) in enumerate([("logged_out", GREY), ("available", GREEN), ("on_call", BLUE),
                                               ("wrap_up", AMBER), ("paused", RED)])
    }}])
    b.panel(table(
        "Agents (today)",
        [
            (agent("state"), "state"),
            (agent("state_seconds"), "state_seconds"),
            (agent("handled"), "handled"),
            (agent("aht_seconds"), "aht"),
            (agent("avg_wrapup_seconds"), "wrapup"),
            (agent("calls_per_agent_hour"), "cph"),
            (agent("occupancy"), "occupancy"),
        ],
        {
            "agent": ("Agent", None),
            "team": ("Team", None),
            "Value #A": ("State", None),
            "Value #B": ("Time in state", "s"),
            "Value #C": ("Handled", "none"),
            "Value #D": ("AHT", "s"),
            "Value #E": ("Avg wrap-up", "s"),
            "Value #F": ("Calls / agent-hour", "none"),
            "Value #G": ("Occupancy", "percentunit"),
        },
        h=14, sort_by="Time in state",
        extra_overrides={"Value #A": [state_names, _color_cell()]},
        description="State and seconds in it are live; the other columns count since local midnight "
                    "(the exporter reads them from hour buckets).",
    ))
    team_sel = 'scope_kind="team", scope_id=~"$team"'
    b.panel(timeseries("Agents by state", [
        (f'sum by (state) (callcenter_agents{{{team_sel}, state!="logged_out"}})', "{{state}}"),
    ], "none", stacked=True, w=12))
    b.panel(timeseries("Paused agents by reason", [
        (f'sum by (reason) (callcenter_agents{{{team_sel}, state="paused"}})', "{{reason}}"),
    ], "none", stacked=True, w=12))
    b.panel(timeseries("Team occupancy (today)", [
        (f'max by (scope_id) (callcenter_window_occupancy_ratio{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "percentunit", w=8))
    b.panel(timeseries("Team AHT (today)", [
        (f'max by (scope_id) (callcenter_window_aht_seconds{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "s", w=8))
    b.panel(timeseries("Team calls per agent-hour (today)", [
        (f'max by (scope_id) (callcenter_window_calls_per_agent_hour{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "none", w=8))
    return b


def hour_of_day_connect_rate(hour: int, sel: str) -> str:
    """Connect rate of local hour-of-day `hour` over the last 7 days (exact: sums, then divide).

    A 1h-step subquery is aligned to whole UTC hours; at step t, increase(...[1h]) covers the hour
    starting at t-1h, whose local hour is (hour(t) - 1 + $utc_offset) mod 24.
    """
    def part(metric: str) -> str:
        return (
            f"sum_over_time((sum(increase({metric}{{{sel}}}[1h])) "
            f"and on () ((hour() + 23 + $utc_offset) % 24 == {hour}))[7d:1h])"
        )

    return f"{part('callcenter_connected_total')} / ({part('callcenter_attempts_completed_total')} > 0)"


def caller_ids() -> Board:
    b = Board(
        "callkpi-caller-ids",
        "Caller-ID health and best hour to call",
        "Connect rate per outbound caller ID against the other caller IDs (spam-flag detection), "
        "and connect rate by hour of day.",
        ["caller-id"],
        time_from="now-24h",
        refresh="1m",
    )
    # Caller-ID counters have no campaign label (see _OF_CAMPAIGN): the campaign selector filters
    # the best-hour panels only, which read the per-campaign counters.
    b.variable(label_values_var("campaign", "callcenter_dialed_total", "campaign", "Campaign"))
    b.variable(
        dash_b.TextBoxVariable("utc_offset")
        .label("UTC offset (h)")
        .description("Whole hours to add to UTC to get the call center's local time (CALLKPI_TIMEZONE).")
        .default_value("0")
    )
    sel = 'campaign=~"$campaign"'

    def by_cid(metric: str, window: str) -> str:
        return net_increase(metric, window, "campaign, caller_id")

    b.panel(table(
        "Caller IDs",
        [
            ("campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate1h", "rate1h"),
            ("campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h", "others1h"),
            ("campaign_caller_id:callcenter_caller_id_attempts_completed:increase1h", "attempts1h"),
            (f"{by_cid('callcenter_caller_id_connected_total', '24h')} / ({by_cid('callcenter_caller_id_attempts_completed_total', '24h')} > 0)", "rate24h"),
            (by_cid("callcenter_caller_id_dialed_total", "24h"), "dialed24h"),
        ],
        {
            "campaign": ("Campaign", None),
            "caller_id": ("Caller ID", None),
            "Value #A": ("Connect rate 1 h", "percentunit"),
            "Value #B": ("Other caller IDs 1 h", "percentunit"),
            "Value #C": ("Attempts 1 h", "none"),
            "Value #D": ("Connect rate 24 h", "percentunit"),
            "Value #E": ("Dialed 24 h", "none"),
        },
        h=10, sort_by="Attempts 1 h",
        description="A caller ID far below the other caller IDs is probably flagged as spam. Caller IDs are "
                    "counted across campaigns (the campaign selector does not apply here).",
    ))
    b.panel(timeseries("Connect rate per caller ID (1 h)", [
        ("campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate1h", "{{caller_id}}"),
    ], "percentunit", w=12))
    b.panel(timeseries("Caller ID vs the other caller IDs (1 h)", [
        ("campaign_caller_id:callcenter_caller_id_connect_rate:ratio_rate1h"
         " / (campaign_caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h > 0)",
         "{{caller_id}}"),
    ], "percentunit", w=12, max_val=None, th=thresholds(RED, (0.5, AMBER), (0.8, GREEN)),
        description="1 = as good as the others; the spam-flag alert fires below 0.5."))
    b.row("Best hour to call")
    b.panel(bargauge(
        "Connect rate by hour of day (last 7 days)",
        [(hour_of_day_connect_rate(h, sel), f"{h:02d}") for h in range(24)],
        "percentunit", thresholds(RED, (0.10, AMBER), (0.20, GREEN)), w=24, h=9, vertical=True,
        description="Human answers / completed attempts in each local hour of the day, summed over 7 days. "
                    "Set the UTC offset variable to the center's time zone.",
    ))
    b.panel(timeseries("Hourly connect rate (last 7 days)", [
        (f"sum(increase(callcenter_connected_total{{{sel}}}[1h])) / (sum(increase(callcenter_attempts_completed_total{{{sel}}}[1h])) > 0)",
         "connect rate"),
    ], "percentunit", w=12, bars=True, interval="1h").time_from("7d"))
    b.panel(timeseries("Hourly completed attempts (last 7 days)", [
        (f"sum(increase(callcenter_attempts_completed_total{{{sel}}}[1h]))", "attempts"),
    ], "none", w=12, bars=True, interval="1h").time_from("7d"))
    return b


def pipeline() -> Board:
    b = Board(
        "callkpi-pipeline",
        "Pipeline health",
        "Kafka → workers → Redis → exporter: throughput, rejections, lag, latency, freshness.",
        ["sre"],
        time_from="now-3h",
        refresh="30s",
    )
    up_mapping = [{"type": "value", "options": {"0": {"text": "DOWN", "color": RED, "index": 0},
                                                 "1": {"text": "UP", "color": GREEN, "index": 1}}}]
    b.panel(stat("Exporter", f'min(up{{job="{SCRAPE_JOB}"}})', "none", thresholds(RED, (1, GREEN)))
            .mappings(up_mapping))
    b.panel(stat("Workers up", "sum(callcenter_pipeline_worker_up)", "none", thresholds(RED, (1, AMBER), (2, GREEN)),
                 description="Workers with a fresh heartbeat (compose runs two)."))
    b.panel(stat("Events / s", "sum(rate(callcenter_pipeline_events_consumed_total[5m]))", "reqps",
                 thresholds(BLUE), decimals=1))
    b.panel(stat("Consumer lag", "sum(callcenter_pipeline_consumer_lag)", "none",
                 thresholds(GREEN, (1000, AMBER), (10000, RED))))
    b.panel(stat("Event → store p99", "center:callcenter_pipeline_event_to_store_seconds:p99_5m", "s",
                 thresholds(GREEN, (5, AMBER), (10, RED)), decimals=1))
    b.panel(stat("Newest event age", "min(callcenter_pipeline_newest_event_age_seconds)", "s",
                 thresholds(GREEN, (60, AMBER), (300, RED)), decimals=0,
                 description="Age of the newest event of the freshest campaign: how far behind the store is."))

    b.panel(timeseries("Events per second", [
        ("sum(rate(callcenter_pipeline_events_consumed_total[$__rate_interval]))", "consumed"),
        ("sum(rate(callcenter_pipeline_events_accepted_total[$__rate_interval]))", "accepted"),
        ("sum(rate(callcenter_pipeline_events_duplicate_total[$__rate_interval]))", "duplicate"),
        ("sum(rate(callcenter_pipeline_events_late_total[$__rate_interval]))", "late (> 5 min)"),
    ], "reqps"))
    b.panel(timeseries("Rejected events by reason", [
        ("sum by (reason) (rate(callcenter_pipeline_events_rejected_total[$__rate_interval]))", "{{reason}}"),
    ], "reqps", stacked=True, description="Rejected to the dead-letter topic, by validation reason."),
        optional=True)
    b.panel(timeseries("Consumer lag by partition", [
        ("sum by (topic, partition) (callcenter_pipeline_consumer_lag)", "{{topic}}/{{partition}}"),
    ], "none"))
    b.panel(timeseries("Event → store latency", [
        ("histogram_quantile(0.5, sum by (le) (rate(callcenter_pipeline_event_to_store_seconds_bucket[$__rate_interval])))", "p50"),
        ("histogram_quantile(0.9, sum by (le) (rate(callcenter_pipeline_event_to_store_seconds_bucket[$__rate_interval])))", "p90"),
        ("histogram_quantile(0.99, sum by (le) (rate(callcenter_pipeline_event_to_store_seconds_bucket[$__rate_interval])))", "p99"),
    ], "s", th=thresholds(GREEN, (10, RED))))
    b.panel(timeseries("Newest event age by campaign", [
        ("max by (campaign) (callcenter_pipeline_newest_event_age_seconds)", "{{campaign}}"),
    ], "s"))
    b.panel(timeseries("Workers", [
        ("max by (worker) (callcenter_pipeline_worker_up)", "{{worker}}"),
    ], "none", max_val=1))
    b.panel(timeseries("Batches and batch size", [
        ("sum(rate(callcenter_pipeline_batches_total[$__rate_interval]))", "batches / s"),
        ("sum(rate(callcenter_pipeline_events_consumed_total[$__rate_interval]))"
         " / (sum(rate(callcenter_pipeline_batches_total[$__rate_interval])) > 0)", "events / batch"),
    ], "none"))
    b.panel(timeseries("Redis errors per second", [
        ("sum(rate(callcenter_pipeline_redis_errors_total[$__rate_interval]))", "errors"),
    ], "reqps", th=thresholds(GREEN, (0.01, RED))))
    return b


BOARDS = {
    "wallboard": wallboard,
    "campaigns": campaigns,
    "agents": agents,
    "caller-ids": caller_ids,
    "pipeline": pipeline,
}


def dashboards() -> dict[str, dict]:
    """file stem -> dashboard JSON model."""
    return {name: make().build() for name, make in BOARDS.items()}


def _iter_panels(panels):
    for p in panels:
        yield p
        yield from _iter_panels(p.get("panels") or [])


def all_panel_queries() -> list[PanelQuery]:
    """Every PromQL expression of every dashboard panel (for parse checks and live-data tests)."""
    out = []
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
}


def substitute_variables(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var / ${var} / ${var:fmt} with literal values (default: DEFAULT_VARIABLES)."""
    vals = dict(DEFAULT_VARIABLES)
    vals.update(values or {})

    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in vals:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return vals[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$([A-Za-z_]\w*)", repl, expr)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def outputs() -> dict[Path, str]:
    files = {
        GRAFANA_DIR / f"{name}.json": json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, model in dashboards().items()
    }
    files[RULES_PATH] = render_rules()
    files[PROMETHEUS_CONFIG_PATH] = prometheus_config()
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the generator")
    args = ap.parse_args(argv)
    files = outputs()
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        expected_json = {p.name for p in files if p.parent == GRAFANA_DIR}
        extra = [p for p in GRAFANA_DIR.glob("*.json") if p.name not in expected_json]
        for p in stale:
            print(f"stale: {p.relative_to(HERE.parent)} (run: python dashboards/build.py)", file=sys.stderr)
        for p in extra:
            print(f"not generated: {p.relative_to(HERE.parent)} (delete it or add it to build.py)", file=sys.stderr)
        return 1 if stale or extra else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
