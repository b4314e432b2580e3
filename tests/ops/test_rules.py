"""Prometheus rules and configuration: promtool checks and unit tests (runs promtool, a few seconds)."""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import subprocess

import pytest

from . import DASHBOARDS, EXPORTER_METRICS, REPO, load_build, metric_names, recording_rule_names, require_binary, run

PROM = DASHBOARDS / "prometheus"
RULES = PROM / "rules.yml"
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def _alert_rules() -> list[dict]:
    build = load_build()
    return [r for g in build.rule_groups() for r in g["rules"] if "alert" in r]


def test_rules_file_passes_promtool_check():
    out = run(["promtool", "check", "rules", str(RULES)]).stdout
    assert "SUCCESS" in out


def test_prometheus_config_passes_promtool_check():
    out = run(["promtool", "check", "config", str(PROM / "prometheus.yml")]).stdout
    assert "rules.yml" in out and "SUCCESS" in out


def test_prometheus_config_with_local_target(tmp_path):
    """The variant a live test uses: scrape a locally started `callkpi serve`, no Alertmanager."""
    build = load_build()
    shutil.copy(RULES, tmp_path / "rules.yml")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(build.prometheus_config(scrape_target="127.0.0.1:18077", alertmanager_target=None))
    run(["promtool", "check", "config", str(cfg)])
    text = cfg.read_text()
    assert 'job_name: callkpi' in text and '"127.0.0.1:18077"' in text and "alertmanagers" not in text


def test_committed_prometheus_config_scrapes_the_api_service():
    text = (PROM / "prometheus.yml").read_text()
    assert re.search(r"job_name: callkpi\n", text)
    assert '"api:8077"' in text
    assert '"alertmanager:9093"' in text


def test_promtool_unit_tests_pass():
    """Every file under dashboards/prometheus/tests (run in parallel: the 1-week file takes ~15 s)."""
    require_binary("promtool")
    assert TEST_FILES, "no promtool test files"

    def one(path):
        return path, subprocess.run(
            ["promtool", "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True, timeout=240
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, TEST_FILES))
    failed = [f"{p.name}:\n{r.stdout}{r.stderr}" for p, r in results if r.returncode != 0]
    assert not failed, "promtool test rules failed:\n" + "\n".join(failed)


def _test_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"fires": n, "silent": n} over all alert_rule_test cases of the test files."""
    cases: dict[str, dict[str, int]] = {}
    pattern = re.compile(r"^\s*alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*(\[\])?\s*$", re.M)
    for path in TEST_FILES:
        for name, empty in pattern.findall(path.read_text(encoding="utf-8")):
            c = cases.setdefault(name, {"fires": 0, "silent": 0})
            c["silent" if empty else "fires"] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = _test_cases()
    alerts = [r["alert"] for r in _alert_rules()]
    missing = [
        f"{a}: {cases.get(a, {}).get('fires', 0)} firing, {cases.get(a, {}).get('silent', 0)} must-not-fire cases"
        for a in alerts
        if cases.get(a, {}).get("fires", 0) < 1 or cases.get(a, {}).get("silent", 0) < 1
    ]
    assert not missing, "alerts without both kinds of promtool test case:\n" + "\n".join(missing)
    unknown = set(cases) - set(alerts)
    assert not unknown, f"test files name alerts that do not exist: {sorted(unknown)}"


def test_test_files_evaluate_groups_in_rule_file_order():
    """promtool evaluates rule groups in random order unless told; each file must list all groups."""
    build = load_build()
    expected = [g["name"] for g in build.rule_groups()]
    for path in TEST_FILES:
        m = re.search(r"^group_eval_order:\n((?:  - \S+\n)+)", path.read_text(encoding="utf-8"), re.M)
        assert m, f"{path.name}: no group_eval_order"
        listed = re.findall(r"  - (\S+)", m.group(1))
        assert listed == expected, f"{path.name}: group_eval_order {listed} != rule groups {expected}"


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_for_and_runbook(rule):
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["labels"]["category"] in {"kpi", "compliance", "pipeline", "exporter"}
    assert re.fullmatch(r"\d+[smh]", rule["for"]), "every alert waits with `for:`"
    for key in ("summary", "description", "runbook"):
        assert len(rule["annotations"].get(key, "")) > 20, f"annotation {key} missing or too short"
    assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"


def _runbook_anchors() -> dict[str, str]:
    """anchor -> heading of every `### ` heading in the runbook section of docs/operations.md."""
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = re.search(r"^## Runbook: alerts\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "docs/operations.md has no '## Runbook: alerts' section"
    headings = re.findall(r"^### (.+?)\s*$", section.group(1), re.M)
    # GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-"): h for h in headings}


def test_every_alert_has_a_runbook_section_and_every_section_an_alert():
    anchors = _runbook_anchors()
    linked = {r["annotations"]["runbook_url"].split("#", 1)[1] for r in _alert_rules()}
    assert linked - set(anchors) == set(), "alerts whose runbook_url has no section in docs/operations.md"
    assert set(anchors) - linked == set(), "runbook sections that no alert links to"


def test_kpi_and_compliance_alerts_have_a_minimum_volume_guard():
    """Guards appear as `>= N` on a count (attempts, live answers, events)."""
    for rule in _alert_rules():
        if rule["alert"] in {"CallkpiExporterDown", "CallkpiWorkerDown"}:
            continue  # up/heartbeat series have no volume; `for:` is their guard
        guard = re.search(r">=\s*\d+\b", rule["expr"]) or re.search(r"consumer_lag\) > \d{3,}", rule["expr"])
        assert guard, f"{rule['alert']}: no minimum-volume guard in\n{rule['expr']}"


def test_rules_use_only_exporter_metrics_and_recording_rules():
    build = load_build()
    allowed = EXPORTER_METRICS | recording_rule_names()
    bad = {}
    for group in build.rule_groups():
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - allowed
            if unknown:
                bad[rule.get("record") or rule.get("alert")] = sorted(unknown)
    assert not bad, f"unknown metric names: {bad}"


def test_recording_rules_divide_sums_not_averages():
    """Ratios divide two recorded sums and drop a zero denominator (catalog: null, not 0)."""
    build = load_build()
    for group in build.rule_groups():
        for rule in group["rules"]:
            name = rule.get("record", "")
            if ":ratio_rate" in name or re.search(r":avg\d", name):
                assert "avg(" not in rule["expr"] and "avg_over_time" not in rule["expr"], name
                assert re.search(r"/ \(.+ > 0\)$", rule["expr"]), f"{name}: denominator not guarded: {rule['expr']}"


def test_brief_examples_exist():
    names = recording_rule_names()
    for level in ("campaign", "center"):
        for window in ("5m", "15m", "1h"):
            for kpi in ("connect_rate", "abandon_rate", "conversion_rate", "answer_rate", "lead_rate", "occupancy"):
                assert f"{level}:callcenter_{kpi}:ratio_rate{window}" in names


def test_metric_name_lexer():
    expr = (
        'sum by (campaign) (increase(callcenter_connected_total{campaign=~"a|b"}[15m] offset 1w)) '
        '/ on (campaign) group_left () (x:y:z > 0) and on () (hour() + 23 + 2) % 24 == 9 '
        'or label_replace(up{job="callkpi"}, "campaign", "$1", "scope_id", "(.*)") * 1e3'
    )
    assert metric_names(expr) == {"callcenter_connected_total", "x:y:z", "up"}


def _summed_counters(count_expr: str) -> set[str]:
    """Catalog counters a recorded count's expression sums (exporter counters mapped back)."""
    from stream.kpi.catalog import COUNTERS

    by_metric: dict[str, tuple[str, ...]] = {c.metric_name: (c.name,) for c in COUNTERS}
    by_metric["callcenter_attempts_completed_total"] = ("answered", "unanswered")  # exporter's own sum
    retractions = {"callcenter_retracted_total", "callcenter_caller_id_retracted_total"}  # what late events took back
    return {c for m in metric_names(count_expr) - retractions for c in by_metric[m]}


def test_every_ratio_rule_sums_the_catalogs_numerator_and_denominator():
    """One definition per KPI: each :ratio_rate / :avg rule divides exactly the catalog's counters,
    scaled from the catalog's units (ms counters are exported in seconds)."""
    from stream.kpi.catalog import COUNTERS, KPI_BY_NAME

    ms = {c.name for c in COUNTERS if c.ms}
    build = load_build()
    records = {r["record"]: r["expr"] for g in build.rule_groups() for r in g["rules"] if "record" in r}
    checked = 0
    for name, expr in records.items():
        m = re.fullmatch(r"(campaign|center):callcenter_(\w+):(?:ratio_rate|avg)(\d+[mh])", name)
        if not m or m.group(2) not in KPI_BY_NAME:
            continue
        level, kpi_name, window = m.groups()
        kpi = KPI_BY_NAME[kpi_name]
        q = re.fullmatch(r"(?:([\d.]+) \* )?(\S+) / \((\S+) > 0\)", expr)
        assert q, f"{name}: not factor * count / (count > 0): {expr}"
        factor, num, den = float(q.group(1) or 1), q.group(2), q.group(3)
        campaign = lambda rec: records[rec.replace("center:", "campaign:", 1)]  # noqa: E731
        assert _summed_counters(campaign(num)) == set(kpi.numerator), f"{name}: numerator differs from the catalog"
        assert _summed_counters(campaign(den)) == set(kpi.denominator), f"{name}: denominator differs from the catalog"
        expected = kpi.scale * (1000 if set(kpi.numerator) <= ms else 1) / (1000 if set(kpi.denominator) <= ms else 1)
        assert factor == pytest.approx(expected), f"{name}: factor {factor}, the catalog's scale gives {expected}"
        checked += 1
    assert checked >= 9 * 2 * 3, "expected every ratio and average at both levels in 5m, 15m and 1h"


def _grouping_labels(expr: str) -> set[str]:
    """Labels an expression groups or matches by: `by (...)` and `on (...)` lists."""
    return {label.strip() for group in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}


def test_caller_id_rules_group_by_the_labels_the_caller_id_series_carry():
    """The caller-ID series carry `caller_id` only (the store counts a number across campaigns):
    a rule or alert grouping them by `campaign` would record nothing a reader could trust."""
    from stream.readers.exporter import _caller_id_families

    carried = {label for fam in _caller_id_families({"caller_id:D1": {}}) for s in fam.samples
               for label in s.labels} - {"counter"}
    build = load_build()
    rules = [r for g in build.rule_groups() for r in g["rules"]
             if "caller_id" in r.get("record", "") or "callcenter_caller_id_" in r["expr"]]
    assert len(rules) >= 10
    bad = {r.get("record") or r["alert"]: sorted(_grouping_labels(r["expr"]) - carried) for r in rules
           if _grouping_labels(r["expr"]) - carried
           or (r.get("record") or "").split(":")[0] not in ("", "caller_id", "center")}
    assert not bad, f"caller-ID rules grouping by labels the series lack, or named for them: {bad}"
    text = " ".join(str(v) for r in rules if "alert" in r for v in r["annotations"].values())
    assert "$labels.campaign" not in text
