"""The proof of issue #4: a real Prometheus scrapes the running service while the simulator feeds
it, every dashboard query and every rule has data, and a connect-rate collapse pages.

Real processes only: the tansu broker, redis-server, one `callkpi worker`, `callkpi serve`,
`callkpi simulate` and Debian's `prometheus` (plus `promtool` to backfill history).

Time is compressed by SPEED so that the test takes about two minutes:
- the simulator plays an hour of a 40-agent center at SPEED× real time, with a carrier outage
  (most attempts fail: the connect rate collapses) in its middle;
- Prometheus scrapes every second and evaluates a copy of dashboards/prometheus/rules.yml in
  which every duration (ranges, offsets, `for:`, group intervals) is divided by SPEED, so each
  rule sees in wall seconds what it sees in minutes in production. The copy is derived from the
  committed file here, never written by hand;
- history that a two-minute run cannot scrape is backfilled with `promtool tsdb
  create-blocks-from openmetrics`: the per-campaign attempt and connect counters of "a week ago"
  (the baseline of ConnectRateDrop, a week / SPEED before now) and of the day before (the
  dashboard's connect rate by hour of day over 7 days), at the rates of the simulator's own
  pre-outage half. They carry `instance="backfill"`; everything else is scraped live.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from stream.cli.embedded import Managed, free_port, wait_for_port
from stream.contract import parse_ts
from stream.sim import SimConfig, generate
from tests.harness import Service, make_service, wait_until
from tests.ops import DASHBOARDS, load_build, require_binary

pytestmark = pytest.mark.integration

SPEED = 60
"""Simulated seconds per wall second, and the factor every rule duration is divided by."""
SIM: dict[str, Any] = {"seed": 7, "agents": 40, "hours": 1.0, "scenario": "carrier_outage", "scenario_at": 0.5}
WEEK_S = 7 * 86400
CONFIG = """
timezone = "UTC"
[live]
# the simulator's calls are stamped up to an hour in the past (time runs 60x): keep them live
call_expiry_seconds = 7200
[costs]
currency = "EUR"
agent_cost_per_hour = 20.0
telephony_cost_per_minute = 0.01
cost_per_dial = 0.002
[[targets]]
name = "Connect rate per campaign"
kpi = "connect_rate"
scope = "campaign:*"
window = "1h"
goal = 0.25
warn = 0.2
critical = 0.1
"""

# -- the rules, time-compressed ---------------------------------------------------------------------

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
             "y": 31_536_000_000}
_DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"


def duration_ms(text: str) -> int:
    return sum(int(n) * _UNITS_MS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def compress(rules_yml: str, factor: int) -> str:
    """rules.yml with every duration divided by `factor`: PromQL ranges and subqueries
    (`[15m]`, `[7d:1h]`), offsets, and the `for:` / `interval:` keys. Names are untouched."""
    def scaled(d: str) -> str:
        return f"{max(1, duration_ms(d) // factor)}ms"

    out = re.sub(rf"\[({_DURATION})(?::({_DURATION})?)?\]",
                 lambda m: f"[{scaled(m.group(1))}" + (f":{scaled(m.group(2))}" if m.group(2) else
                                                        (":" if ":" in m.group(0) else "")) + "]",
                 rules_yml)
    out = re.sub(rf"\boffset ({_DURATION})\b", lambda m: f"offset {scaled(m.group(1))}", out)
    out = re.sub(rf"^(\s*(?:for|interval): )({_DURATION})\s*$", lambda m: m.group(1) + scaled(m.group(2)),
                 out, flags=re.M)
    return out


def test_compress_scales_every_duration_and_nothing_else() -> None:
    text = (DASHBOARDS / "prometheus" / "rules.yml").read_text()
    out = compress(text, 60)
    assert not re.search(rf"\[{_DURATION}(?<!ms)(?::[^\]]*)?\]|offset \d+[smhdwy]\b|(?:for|interval): \d+[smhdwy]$",
                         re.sub(r"\d+ms", "", out), re.M)
    assert "increase(callcenter_connected_total[15000ms] offset 10080000ms)" in out
    assert "campaign:callcenter_connect_rate:ratio_rate2h offset 15000ms" in out
    assert "record: campaign:callcenter_connect_rate:ratio_rate15m\n" in out  # names kept
    assert re.search(r"^        for: 15000ms$", out, re.M) and re.search(r"^    interval: 2000ms$", out, re.M)
    assert compress("x[7d:1h] y[5m:]", 60) == "x[10080000ms:60000ms] y[5000ms:]"


# -- alert expressions: the operands that must have data ----------------------------------------------

_SET_OPS = re.compile(r"\b(and|or|unless)\b")
_COMPARISONS = re.compile(r"==|!=|>=|<=|>|<")
_MODIFIER = re.compile(r"^\s*(?:bool\b\s*)?(?:(?:on|ignoring)\s*\([^()]*\)\s*)?"
                       r"(?:(?:group_left|group_right)\s*(?:\([^()]*\))?\s*)?")


def _top_level_split(expr: str, pattern: re.Pattern[str]) -> list[str]:
    """Split at matches of `pattern` outside brackets and strings."""
    parts, depth, start, i, quote = [], 0, 0, 0, ""
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            m = pattern.match(expr, i)
            if m:
                parts.append(expr[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(expr[start:])
    return parts


def operands(expr: str) -> list[str]:
    """The vector operands of an alert expression: split at top-level and/or/unless, then at a
    top-level comparison; modifiers dropped, scalar literals left out."""
    out = []
    for arm in _top_level_split(expr, _SET_OPS):
        for side in _top_level_split(arm, _COMPARISONS):
            side = _MODIFIER.sub("", side, count=1).strip()
            if side and not re.fullmatch(r"[-+0-9.eE]+", side):
                out.append(side)
    return out


def test_operands() -> None:
    expr = ('a:b < 0.7 * (c offset 15m)\nand on (campaign)\nsum by (x) (rate(d{l=~"p|q", m!="n"}[5m])) >= 100\n'
            'or absent(up{job="j"})')
    assert operands(expr) == ["a:b", "0.7 * (c offset 15m)", 'sum by (x) (rate(d{l=~"p|q", m!="n"}[5m]))',
                              'absent(up{job="j"})']
    assert operands("x > on (c) group_left () (0.8 * y or vector(0))") == ["x", "(0.8 * y or vector(0))"]


# -- the run ------------------------------------------------------------------------------------------

@dataclass
class Run:
    service: Service
    prom_url: str
    start: float  # wall time the simulator started
    end: float  # wall time the service had consumed everything
    rule_count: int  # rules in the committed rules.yml

    def query_range(self, expr: str) -> list[dict]:
        r = httpx.get(f"{self.prom_url}/api/v1/query_range", timeout=60,
                      params={"query": expr, "start": self.start, "end": self.end, "step": "1s"})
        body = r.json()
        assert body.get("status") == "success", f"{expr}\n{body}"
        return body["data"]["result"]


def _sim_config(start_ms: int) -> SimConfig:
    return SimConfig(start_ms=start_ms, **SIM)


def _pre_outage_rates() -> dict[str, tuple[float, float]]:
    """Per campaign, (completed attempts, live answers) per simulated second before the outage."""
    cfg = _sim_config(int(time.time() * 1000) - int(SIM["hours"] * 3_600_000))
    until = cfg.start_ms + int(SIM["scenario_at"] * SIM["hours"] * 3_600_000)
    counts: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in generate(cfg):
        e = json.loads(d.value)
        if e["type"] in ("call.answered", "call.unanswered") and parse_ts(e["ts"]) < until:
            counts[e["campaign_id"]][0] += 1
            counts[e["campaign_id"]][1] += e.get("answered_by") == "human"
    seconds = (until - cfg.start_ms) / 1000
    return {c: (a / seconds, h / seconds) for c, (a, h) in counts.items()}


def backfill(now: float, data_dir: Path) -> None:
    """History a two-minute run cannot scrape (see the module docstring), as TSDB blocks."""
    week_ago = now - WEEK_S / SPEED
    times = [*range(int(now - 26 * 3600), int(week_ago - 300), 60), *range(int(week_ago - 300), int(week_ago + 600))]
    lines = []
    rates = _pre_outage_rates()
    for family, which in (("callcenter_attempts_completed", 0), ("callcenter_connected", 1)):
        lines.append(f"# TYPE {family} counter")
        for campaign, per_s in sorted(rates.items()):
            wall_rate = per_s[which] * SPEED
            labels = f'campaign="{campaign}",instance="backfill",job="callkpi"'
            lines += [f"{family}_total{{{labels}}} {wall_rate * (t - times[0]):.3f} {t}" for t in times]
    lines.append("# EOF")
    source = data_dir.parent / "backfill.om"
    source.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q",
                           str(source), str(data_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def start_prometheus(workdir: Path, target: str) -> tuple[Managed, str]:
    build = load_build()
    rules = compress((DASHBOARDS / "prometheus" / "rules.yml").read_text(), SPEED)
    (workdir / "rules.yml").write_text(rules)
    config = workdir / "prometheus.yml"
    config.write_text(build.prometheus_config(scrape_target=target, alertmanager_target=None,
                                              rule_file="rules.yml", scrape_interval="1s"))
    data = workdir / "tsdb"
    backfill(time.time(), data)
    port = free_port()
    log = workdir / "prometheus.log"
    proc = subprocess.Popen(
        [require_binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    managed = Managed("prometheus", proc, port, workdir, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 60, proc)
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=5).status_code == 200, 60,
                   lambda: log.read_text()[-2000:])
    except BaseException:
        managed.stop()
        raise
    return managed, url


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    for binary in ("prometheus", "promtool"):
        require_binary(binary)
    workdir = tmp_path_factory.mktemp("prometheus-live")
    (workdir / "callkpi.toml").write_text(CONFIG)
    svc = make_service(workdir, {"CALLKPI_CONFIG": str(workdir / "callkpi.toml")})
    # a memory limit, as production has (docker-compose.yml): the out-of-memory alert divides by it
    redis.Redis.from_url(svc.infra.redis_url).config_set("maxmemory", "4gb")
    prometheus: Managed | None = None
    try:
        svc.start_worker()
        svc.start_server()
        prometheus, prom_url = start_prometheus(workdir, f"127.0.0.1:{svc.http_port}")
        start = time.time()
        sim = svc.run_cli([
            "simulate", "--seed", str(SIM["seed"]), "--agents", str(SIM["agents"]), "--hours", str(SIM["hours"]),
            "--speed", str(SPEED), "--scenario", SIM["scenario"], "--scenario-at", str(SIM["scenario_at"]),
            "--invalid-rate", "0.01", "--duplicate-rate", "0.01",
        ], timeout=600)
        done = re.search(r"simulate: done, ([\d,]+) events", sim.stderr)
        assert sim.returncode == 0 and done, sim.stdout + sim.stderr
        svc.wait_consumed(int(done.group(1).replace(",", "")), timeout=180)
        for _ in range(3):  # a reader, so that serve's answer-cache panels have data
            assert httpx.get(f"{svc.url}/api/v1/kpis", params={"window": "15m"}, timeout=30).status_code == 200
        consumed_at = time.time()
        wait_until(lambda: _last_scrape(prom_url) > consumed_at + 1, 30, "no scrape after the last commit")
        rules = load_build().rule_groups()
        yield Run(svc, prom_url, start, time.time(), sum(len(g["rules"]) for g in rules))
    finally:
        if prometheus is not None:
            prometheus.stop()
        svc.stop()


def _last_scrape(prom_url: str) -> float:
    """Wall time of Prometheus' latest scrape of the service."""
    result = httpx.get(f"{prom_url}/api/v1/query", params={"query": 'timestamp(up{job="callkpi"})'},
                       timeout=10).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _missing(run: Run, exprs: dict[str, str]) -> list[str]:
    """Labels of the expressions that returned no data at any step of the run (queried in parallel)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(exprs, pool.map(run.query_range, exprs.values()), strict=True))
    return [f"{label}\n    {exprs[label]}" for label, result in results.items() if not result]


# -- the assertions ------------------------------------------------------------------------------------

def test_prometheus_scraped_the_service(run: Run) -> None:
    up = run.query_range('up{job="callkpi"}')
    assert up and all(float(v) == 1 for _, v in up[0]["values"])


def test_every_rule_loaded_and_evaluates_without_error(run: Run) -> None:
    groups = httpx.get(f"{run.prom_url}/api/v1/rules", timeout=30).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == run.rule_count
    unhealthy = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    assert not unhealthy, "\n".join(unhealthy)


def test_every_recording_rule_has_data(run: Run) -> None:
    groups = httpx.get(f"{run.prom_url}/api/v1/rules", params={"type": "record"}, timeout=30).json()["data"]["groups"]
    names = {r["name"]: r["name"] for g in groups for r in g["rules"]}
    assert len(names) > 100
    missing = _missing(run, names)
    assert not missing, "recording rules without data:\n" + "\n".join(missing)


def test_every_alert_operand_has_data(run: Run) -> None:
    """Each side of each comparison of each alert, as loaded (compressed) by Prometheus, returned
    data: a metric or label typo would leave one empty. `absent(...)` is empty while healthy."""
    groups = httpx.get(f"{run.prom_url}/api/v1/rules", params={"type": "alert"}, timeout=30).json()["data"]["groups"]
    exprs = {f"{r['name']} #{i}": side for g in groups for r in g["rules"]
             for i, side in enumerate(operands(r["query"])) if not side.startswith("absent(")}
    assert len(exprs) > 25
    missing = _missing(run, exprs)
    assert not missing, "alert operands without data:\n" + "\n".join(missing)


def test_every_dashboard_panel_query_has_data(run: Run) -> None:
    build = load_build()
    queries = build.all_panel_queries()
    exprs = {f"{q.dashboard} / {q.panel} / {q.ref_id}": build.substitute_variables(q.expr) for q in queries}
    assert len(exprs) > 80
    missing = _missing(run, exprs)
    assert not missing, "dashboard queries without data:\n" + "\n".join(missing)


def test_the_outage_makes_connect_rate_drop_pending_or_firing(run: Run) -> None:
    alerts = run.query_range('ALERTS{alertname="ConnectRateDrop"}')
    states = {(a["metric"]["campaign"], a["metric"]["alertstate"]) for a in alerts}
    assert {s for _, s in states} & {"pending", "firing"}, states


def test_the_exporter_agrees_with_the_api(run: Run) -> None:
    """Once the traffic has stopped, the windowed gauges equal the API's numbers."""
    from prometheus_client.parser import text_string_to_metric_families
    text = httpx.get(run.service.url + "/metrics", timeout=30).text
    gauges = {(s.name, s.labels.get("window"), s.labels.get("scope_kind"), s.labels.get("scope_id")): s.value
              for f in text_string_to_metric_families(text) for s in f.samples if s.name.startswith("callcenter_window_")}
    for scope_kind, scope_id in [("center", ""), ("campaign", "solar-q4")]:
        scope = f"{scope_kind}:{scope_id}" if scope_id else scope_kind
        api = run.service.get("/api/v1/kpis", scope=scope, window="today")["kpis"]
        for kpi in ("dialed", "connected", "handled", "conversions", "qualified_leads"):
            assert gauges[(f"callcenter_window_{kpi}", "today", scope_kind, scope_id)] == api[kpi], (scope, kpi)

