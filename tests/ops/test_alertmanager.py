"""Alertmanager configuration: amtool checks, routing tests, and the inhibition on a real Alertmanager.

Runs amtool and prometheus-alertmanager (Debian package prometheus-alertmanager); a second or two.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stream.cli.embedded import free_port
from tests.processes import StartProcess

from . import DASHBOARDS, load_build, require_binary, run

CONFIG = DASHBOARDS / "alertmanager" / "alertmanager.yml"


def _route(*labels: str) -> str:
    out = run(["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels]).stdout
    return out.strip().splitlines()[-1].strip()


def test_config_passes_amtool_check():
    out = run(["amtool", "check-config", str(CONFIG)]).stdout
    assert "SUCCESS" in out and "2 receivers" in out


@pytest.mark.parametrize(
    "labels, receiver",
    [
        (["severity=critical", "alertname=AbandonRateUS30dOverLimit", "campaign=acme"], "pager"),
        (["severity=critical", "alertname=CallkpiExporterDown", "job=callkpi"], "pager"),
        (["severity=warning", "alertname=ConnectRateDrop", "campaign=acme"], "wallboard-chat"),
        (["severity=warning", "alertname=CallkpiConsumerLagGrowing", "topic=dialer.events"], "wallboard-chat"),
        (["alertname=SomethingWithoutSeverity"], "wallboard-chat"),
    ],
)
def test_routing_by_severity(labels, receiver):
    assert _route(*labels) == receiver


def test_every_alert_routes_by_its_severity():
    build = load_build()
    for group in build.rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                expected = "pager" if rule["labels"]["severity"] == "critical" else "wallboard-chat"
                assert _route(f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}") == expected


def test_grouping_and_placeholder_webhooks():
    text = CONFIG.read_text()
    assert re.search(r"^  group_by: \[alertname, campaign\]$", text, re.M)
    urls = re.findall(r"url: (\S+)", text)
    assert urls and all(u.startswith("http://localhost:") for u in urls), urls


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def _request(url: str, payload: object = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if payload is None else "POST")
    with _NO_PROXY.open(req, timeout=5) as resp:
        body = resp.read()
    if resp.headers.get_content_type() != "application/json":
        return body.decode()
    return json.loads(body) if body else None


def _answers(url: str) -> bool:
    try:
        _request(url)
        return True
    except OSError:
        return False


@pytest.fixture
def alertmanager(start_process: StartProcess, tmp_path: Path) -> str:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start_process(
        "alertmanager",
        [require_binary("prometheus-alertmanager"), f"--config.file={CONFIG}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        ready=lambda: _answers(f"{base}/-/ready"), timeout=20,
    )
    return base


def _alert(name: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def test_exporter_down_inhibits_kpi_compliance_and_pipeline_alerts(alertmanager):
    _request(f"{alertmanager}/api/v2/alerts", [
        _alert("CallkpiExporterDown", severity="critical", category="exporter", job="callkpi"),
        _alert("ConnectRateDrop", severity="warning", category="kpi", campaign="acme"),
        _alert("AbandonRateUS30dOverLimit", severity="critical", category="compliance", campaign="acme", regime="us"),
        _alert("CallkpiConsumerLagGrowing", severity="warning", category="pipeline", topic="dialer.events"),
        _alert("SomeoneElsesAlert", severity="warning"),
    ])
    expected_inhibited = {"ConnectRateDrop", "AbandonRateUS30dOverLimit", "CallkpiConsumerLagGrowing"}
    deadline = time.monotonic() + 15
    while True:
        alerts = {a["labels"]["alertname"]: a for a in _request(f"{alertmanager}/api/v2/alerts")}
        inhibited = {n for n, a in alerts.items() if a["status"]["inhibitedBy"]}
        if inhibited == expected_inhibited or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert inhibited == expected_inhibited, json.dumps(alerts, indent=1)
    source_fp = alerts["CallkpiExporterDown"]["fingerprint"]
    for name in expected_inhibited:
        assert alerts[name]["status"]["inhibitedBy"] == [source_fp]
    assert alerts["CallkpiExporterDown"]["status"]["state"] == "active"


def test_over_limit_inhibits_near_limit_of_the_same_campaign_only(alertmanager):
    _request(f"{alertmanager}/api/v2/alerts", [
        _alert("AbandonRateUS30dOverLimit", severity="critical", category="compliance", campaign="acme", regime="us"),
        _alert("AbandonRateUS30dNearLimit", severity="warning", category="compliance", campaign="acme", regime="us"),
        _alert("AbandonRateUS30dNearLimit", severity="warning", category="compliance", campaign="other", regime="us"),
    ])
    deadline = time.monotonic() + 15
    while True:
        alerts = _request(f"{alertmanager}/api/v2/alerts")
        state = {(a["labels"]["alertname"], a["labels"]["campaign"]): bool(a["status"]["inhibitedBy"]) for a in alerts}
        if state.get(("AbandonRateUS30dNearLimit", "acme")) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert state == {
        ("AbandonRateUS30dOverLimit", "acme"): False,
        ("AbandonRateUS30dNearLimit", "acme"): True,
        ("AbandonRateUS30dNearLimit", "other"): False,
    }
