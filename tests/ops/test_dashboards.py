"""Grafana dashboards as code: regenerating changes nothing, the JSON is sound, every query parses
(promtool) and uses only exporter metrics or recording rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from . import (
    DASHBOARDS,
    EXPORTER_METRICS,
    load_build,
    metric_names,
    promtool_parse_check,
    recording_rule_names,
)

GRAFANA = DASHBOARDS / "grafana"
DASHBOARD_FILES = sorted(GRAFANA.glob("*.json"))
EXPECTED = {
    "wallboard.json": "callkpi-wallboard",
    "campaigns.json": "callkpi-campaigns",
    "agents.json": "callkpi-agents",
    "caller-ids.json": "callkpi-caller-ids",
    "pipeline.json": "callkpi-pipeline",
    "history.json": "callkpi-history",
}


def _panels(panels):
    for p in panels:
        yield p
        yield from _panels(p.get("panels") or [])


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_regenerating_changes_nothing():
    proc = subprocess.run([sys.executable, str(DASHBOARDS / "build.py"), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"committed files differ from the generator:\n{proc.stderr}{proc.stdout}"


def test_check_mode_detects_a_stale_file(tmp_path):
    build = load_build()
    stale = tmp_path / "grafana"
    stale.mkdir()
    assert build.main(["--check"], root=tmp_path) == 1
    assert build.main([], root=tmp_path) == 0
    assert build.main(["--check"], root=tmp_path) == 0
    (stale / "agents.json").write_text("{}")
    assert build.main(["--check"], root=tmp_path) == 1
    (stale / "unknown.json").write_text("{}")
    build.main([], root=tmp_path)
    assert build.main(["--check"], root=tmp_path) == 1, "a JSON file the generator does not make"


def test_the_dashboards_exist():
    assert {p.name for p in DASHBOARD_FILES} == set(EXPECTED)
    for path in DASHBOARD_FILES:
        model = _load(path)
        assert model["uid"] == EXPECTED[path.name]
        assert model["title"] and model["panels"]
        assert model["schemaVersion"] >= 39, "built by an SDK for Grafana 11"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_valid_with_unique_panel_ids(path):
    model = _load(path)  # valid JSON
    ids = [p["id"] for p in _panels(model["panels"])]
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}: {ids}"
    for p in _panels(model["panels"]):
        assert 0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], f"panel {p['title']!r} has no query"
        assert p["datasource"]["uid"] == "callkpi-prometheus"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "callkpi-prometheus"
            assert t["expr"].strip()


def test_every_panel_query_parses(tmp_path):
    build = load_build()
    queries = build.all_panel_queries()
    exprs = {f"{q.dashboard} #{q.panel_id} {q.panel} {q.ref_id}": build.substitute_variables(q.expr) for q in queries}
    for label, expr in exprs.items():
        assert not re.search(r"\$\{?[A-Za-z_]", expr), f"unsubstituted variable in {label}: {expr}"
    promtool_parse_check(exprs, tmp_path)


def test_a_broken_query_is_caught(tmp_path):
    """The parse check itself works: a bad expression fails it."""
    with pytest.raises(pytest.fail.Exception):
        promtool_parse_check({"bad": "sum(rate(callcenter_dialed_total[5m])"}, tmp_path)


def test_queries_use_only_exporter_metrics_and_recording_rules():
    build = load_build()
    allowed = EXPORTER_METRICS | recording_rule_names()
    bad = {}
    for q in build.all_panel_queries():
        unknown = metric_names(build.substitute_variables(q.expr)) - allowed
        if unknown:
            bad[f"{q.dashboard} / {q.panel} / {q.ref_id}"] = sorted(unknown)
    assert not bad, f"panel queries use unknown metrics: {json.dumps(bad, indent=1)}"


def test_all_panel_queries_covers_every_target_in_the_json():
    build = load_build()
    from_json = sorted(
        (model["uid"], p["id"], t["refId"], t["expr"])
        for model in map(_load, DASHBOARD_FILES)
        for p in _panels(model["panels"])
        for t in p.get("targets") or []
    )
    from_helper = sorted((q.dashboard, q.panel_id, q.ref_id, q.expr) for q in build.all_panel_queries())
    assert from_helper == from_json
    optional = {q.panel for q in build.all_panel_queries() if q.optional}
    assert {"Cost per lead (today)", "Targets", "Rejected events by reason"} <= optional


def test_template_variables_come_from_label_values():
    vars_by_board = {
        _load(p)["uid"]: {v["name"]: v for v in _load(p).get("templating", {}).get("list", [])}
        for p in DASHBOARD_FILES
    }
    for uid, name in [("callkpi-wallboard", "campaign"), ("callkpi-campaigns", "campaign"),
                      ("callkpi-caller-ids", "campaign"), ("callkpi-agents", "team")]:
        var = vars_by_board[uid][name]
        assert var["type"] == "query"
        assert re.fullmatch(rf"label_values\(\w+, {name}\)", var["query"]), var["query"]
        assert var["datasource"]["uid"] == "callkpi-prometheus"
        assert var["includeAll"] and var["multi"]


def test_wallboard_has_big_traffic_light_stats():
    model = _load(GRAFANA / "wallboard.json")
    stats = {p["title"]: p for p in _panels(model["panels"]) if p["type"] == "stat"}
    for title in ("Connect rate", "Abandon rate", "Agents by state", "Calls waiting", "AHT", "Conversions today"):
        assert title in stats, title
    for title in ("Connect rate", "Abandon rate", "Calls waiting", "AHT", "Conversions today"):
        steps = stats[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert {s["color"] for s in steps} == {"red", "orange", "green"}, (title, steps)
        assert stats[title]["options"]["colorMode"] == "background"
    rows = [p for p in model["panels"] if p["type"] == "row"]
    assert any(r.get("repeat") == "campaign" for r in rows), "one row per selected campaign"


def test_campaigns_dashboard_has_funnel_compliance_and_cost():
    titles = {p["title"]: p for p in _panels(_load(GRAFANA / "campaigns.json")["panels"])}
    funnel = next(p for t, p in titles.items() if t.startswith("Funnel:"))
    assert [t["legendFormat"][2:] for t in funnel["targets"]] == [
        "dialed", "connected (person)", "conversations", "qualified leads", "sales"]
    assert sum(p["type"] == "gauge" for p in titles.values()) == 2
    assert "Cost per lead (today)" in titles


def test_agents_table_has_every_column():
    table = next(p for p in _load(GRAFANA / "agents.json")["panels"] if p["type"] == "table")
    names = {
        prop["value"]
        for o in table["fieldConfig"]["overrides"]
        for prop in o["properties"]
        if prop["id"] == "displayName"
    }
    assert {"Agent", "State", "Time in state", "Handled", "AHT", "Avg wrap-up", "Calls / agent-hour",
            "Occupancy"} <= names


def test_best_hour_to_call_has_24_hours():
    board = _load(GRAFANA / "caller-ids.json")
    panel = next(p for p in board["panels"] if p["title"].startswith("Connect rate by hour of day"))
    assert [t["legendFormat"] for t in panel["targets"]] == [f"{h:02d}" for h in range(24)]


def test_provisioning_points_at_the_generated_dashboards():
    ds = (GRAFANA / "provisioning" / "datasources" / "callkpi.yml").read_text()
    assert "uid: callkpi-prometheus" in ds and "url: http://prometheus:9090" in ds
    prov = (GRAFANA / "provisioning" / "dashboards" / "callkpi.yml").read_text()
    assert "path: /etc/grafana/dashboards/callkpi" in prov
    compose = (DASHBOARDS.parent / "docker-compose.yml").read_text()
    assert "./dashboards/grafana:/etc/grafana/dashboards/callkpi:ro" in compose
    assert "./dashboards/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro" in compose
    assert "./dashboards/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro" in compose


def test_history_shows_daily_or_weekly_net_increases_per_campaign():
    board = _load(GRAFANA / "history.json")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["period"]["query"] == "1d,1w"
    panels = [p for p in _panels(board["panels"]) if p["type"] == "timeseries"]
    assert {p["title"] for p in panels} >= {"Dialed per $period", "Conversions per $period",
                                           "Connect rate per $period"}
    for p in panels:
        assert p["interval"] == "$period"
        for t in p["targets"]:
            assert "[$period]" in t["expr"] and "callcenter_retracted_total" in t["expr"]
            assert 'campaign=~"$campaign"' in t["expr"]


def _store_health_metrics() -> set[str]:
    """Every series the exporter writes about the pipeline and the store (`_pipeline_families`)."""
    from stream.readers.exporter import _pipeline_families

    families = _pipeline_families({"rejected:bad_json": 1}, {"lag:t:0": 1, "store_ahead:t:0": 1,
                                                              "newest_event:c": 1}, {"w": 0}, 0)
    return {s.name for fam in families for s in fam.samples}


def test_pipeline_board_shows_every_store_health_metric_and_links_the_runbooks():
    """An SRE sees every pipeline/store series on the pipeline board, and a panel showing what an
    alert watches links that alert's runbook."""
    from dashboards.alerts import runbook_url

    build = load_build()
    model = _load(GRAFANA / "pipeline.json")
    panels = [p for p in _panels(model["panels"]) if p.get("targets")]
    shown = {m for p in panels for t in p["targets"] for m in metric_names(t["expr"])}
    assert not _store_health_metrics() - shown - {"callcenter_pipeline_event_to_store_seconds_sum",
                                                  "callcenter_pipeline_event_to_store_seconds_count"}
    store_row = next(i for i, p in enumerate(_panels(model["panels"])) if p.get("title") == "Store health")
    after = list(_panels(model["panels"]))[store_row + 1:]
    store_panels = after[:next((i for i, p in enumerate(after) if p.get("type") == "row"), len(after))]
    assert len(store_panels) >= 8
    assert all(p.get("description") and p["fieldConfig"]["defaults"].get("unit") for p in store_panels)
    pipeline_alerts = [r for g in build.rule_groups() if g["name"] == "callkpi.alerts.pipeline"
                       for r in g["rules"]]
    unlinked = []
    for alert in pipeline_alerts:
        watched = {m for m in metric_names(alert["expr"]) if m.startswith(("callcenter_pipeline_", "callcenter_redis_"))}
        linked = [p for p in panels if runbook_url(alert["alert"]) in p.get("description", "")]
        if watched and not any(watched & {m for t in p["targets"] for m in metric_names(t["expr"])} for p in linked):
            unlinked.append(alert["alert"])
    assert not unlinked, f"no panel of what these alerts watch links their runbook: {unlinked}"


def test_pipeline_board_shows_serve_health():
    """An SRE sees serve's own families (answer cache, wallboard streams) on the pipeline board,
    in a row of their own, each panel described, the refused-stream alert's runbook linked."""
    from dashboards.alerts import runbook_url

    model = _load(GRAFANA / "pipeline.json")
    everything = list(_panels(model["panels"]))
    row = next(i for i, p in enumerate(everything) if p.get("title") == "Serve (API and wallboards)")
    serve_panels = everything[row + 1:]
    shown = {m for p in serve_panels for t in p.get("targets", []) for m in metric_names(t["expr"])}
    assert shown >= {"callcenter_api_response_cache_hits_total", "callcenter_api_response_cache_misses_total",
                     "callcenter_api_stream_clients", "callcenter_api_stream_refused_total",
                     "callcenter_api_stream_dropped_slow_total"}
    assert all(p.get("description") for p in serve_panels)
    assert any(runbook_url("CallkpiStreamClientsRefused") in p["description"] for p in serve_panels)
