"""Names shared by the rules, the alerts and the dashboards (so they can never disagree)."""

from __future__ import annotations

from pathlib import Path
from typing import Generic, NotRequired, TypedDict, TypeVar

#: The dashboards/ folder: generated files go below it.
HERE = Path(__file__).resolve().parent

#: uid of the Prometheus datasource, as provisioned in grafana/provisioning/datasources/.
DATASOURCE_UID = "callkpi-prometheus"

#: Scrape job of the exporter (``callkpi serve``); ``up{job="callkpi"}`` says whether it is up.
SCRAPE_JOB = "callkpi"

#: The runbook every alert links to (annotation `runbook_url`: this document, #<alert name in lower case>).
RUNBOOK_DOCUMENT = "docs/operations.md"

#: Default compliance abandon limit (the exporter exports the configured one per campaign).
DEFAULT_ABANDON_LIMIT = 0.03
#: Warn when an abandon rate passes this share of the campaign's limit.
ABANDON_WARN_SHARE = 0.8


class RecordingRule(TypedDict):
    """One Prometheus recording rule, as written to rules.yml."""

    record: str
    expr: str


#: One Prometheus alerting rule, as written to rules.yml (functional form: `for` is a keyword).
AlertRule = TypedDict(
    "AlertRule",
    {"alert": str, "expr": str, "for": str, "labels": dict[str, str], "annotations": dict[str, str]},
)


Rule = TypeVar("Rule", RecordingRule, AlertRule)


class RuleGroup(TypedDict, Generic[Rule]):
    """One group of rules.yml; `interval` only where it differs from the global one."""

    name: str
    rules: list[Rule]
    interval: NotRequired[str]
