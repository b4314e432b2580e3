"""Observability as code for callkpi: Grafana dashboards, Prometheus rules and configuration.

    python dashboards/build.py           regenerate dashboards/grafana/*.json and
                                         dashboards/prometheus/{rules,prometheus}.yml
    python dashboards/build.py --check   exit 1 (and name the files) if a committed file differs
                                         from what this generator makes

Everything is generated from this package, so a dashboard, a recording rule and an alert can never
disagree about a metric name. Edit the package, then regenerate. Where each concern lives:

* ``common``: names shared by all (datasource, scrape job, the default abandon limit);
* ``recording``: recording rules; ``alerts``: alerting rules (each with a ``runbook_url``);
  ``rules``: both as rules.yml;
* ``prometheus_config``: prometheus.yml;
* ``panels``: shared Grafana panel builders; ``boards/``: one module per dashboard;
* ``render``: writes or checks every generated file.

Dashboards are built with the official ``grafana-foundation-sdk``; the build pinned in
pyproject.toml (the ``test`` extra) must match the Grafana image in docker-compose.yml (same
major.minor, checked by tests/ops/test_compose.py).

For tests: ``all_panel_queries()`` (every PromQL expression of every panel, with where it comes
from and whether it may legitimately return nothing on a healthy system),
``substitute_variables(expr, values)``, ``rule_groups()`` and ``prometheus_config(...)`` (with
another scrape target, for a test that scrapes a locally started ``callkpi serve``).
"""

from __future__ import annotations

from .boards import BOARDS, DEFAULT_VARIABLES, all_panel_queries, dashboards, substitute_variables
from .panels import PanelQuery
from .prometheus_config import prometheus_config
from .render import main, outputs
from .rules import alert_names, recording_rule_names, render_rules, rule_groups

__all__ = [
    "BOARDS",
    "DEFAULT_VARIABLES",
    "PanelQuery",
    "alert_names",
    "all_panel_queries",
    "dashboards",
    "main",
    "outputs",
    "prometheus_config",
    "recording_rule_names",
    "render_rules",
    "rule_groups",
    "substitute_variables",
]
