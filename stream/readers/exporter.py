"""Prometheus exposition: read Redis once per scrape, then render every family.

prometheus-client collectors are synchronous, so the scrape handler first takes an async snapshot
of everything it needs from Redis (a few pipelined round trips) and then builds prometheus-client
metric families over that snapshot. Every worker writes to Redis, so one scrape shows all
partitions consistently.

Cost at scale (5,000 agents, ~420 teams; `bench/scrape.py`, docs/observability.md):
- window sums are computed inside Redis (`stream.readers.sums`): each bucket hash once for all
  windows, only the counters the exported KPIs need, a few numbers back per scope;
- open agent time is added from the agents of each scope only, grouped once per scrape;
- an agent's `today` is read from hour buckets alone (`agent_day`);
- teams get the agent-side KPIs only, agents one family (`callcenter_agent`) whose series
  identity never changes with the agent's state (the state is a value, not a label);
- the text format is written here: prometheus-client's writer validates every label name of
  every sample, which alone took about a second for 45,000 series.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric)
from prometheus_client.utils import floatToGoString

from stream.contract.events import AGENT_STATE_ORDER
from stream.kpi.catalog import COUNTERS, KPI_BY_NAME, Kpi
from stream.kpi.scopes import Scope
from stream.kpi.windows import HOUR_MS, Range, floor_to, resolve_window
from stream.readers.sums import counters_of, members, window_counters
from stream.store.commit import LATENCY_BUCKETS

GAUGE_WINDOWS = ("5m", "15m", "1h", "today")
WALLBOARD_KPIS = (
    "connect_rate", "abandon_rate", "conversion_rate", "occupancy", "answer_rate", "lead_rate",
    "aht_seconds", "avg_wrapup_seconds", "avg_talk_seconds", "avg_answer_to_agent_seconds",
    "dialed", "connected", "conversions", "revenue", "qualified_leads", "handled",
    "calls_per_agent_hour",
)
"""Windowed gauges of the center and every campaign: a deliberate subset of the catalog."""
TEAM_KPIS = ("handled", "conversions", "aht_seconds", "avg_wrapup_seconds", "occupancy",
             "calls_per_agent_hour")
TEAM_WINDOWS = ("15m", "1h", "today")
"""Teams are many (one per ~12 agents) and do not dial: agent-side KPIs over three windows."""
AGENT_KPIS = ("handled", "aht_seconds", "avg_wrapup_seconds", "calls_per_agent_hour", "occupancy")
STATE_CODE = {state: float(i) for i, state in enumerate(AGENT_STATE_ORDER)}
"""`callcenter_agent{kpi="state"}`: 0 logged_out, 1 available, 2 on_call, 3 wrap_up, 4 paused."""
CALLER_ID_COUNTERS = ("dialed", "attempts_completed", "connected")
WORKER_STALE_MS = 30_000


def window_metric_name(kpi: Kpi) -> str:
    """`callcenter_window_<kpi>` with a unit suffix (`_ratio`; `_seconds` kept)."""
    suffix = "_ratio" if kpi.unit == "ratio" and not kpi.name.endswith("_ratio") else ""
    return f"callcenter_window_{kpi.name}{suffix}"


async def window_kpis(store: Any, scopes: list[Scope], ranges: Mapping[str, Range], kpis: tuple[str, ...],
                      groups: Mapping[Scope, dict[str, dict]], now_ms: int) -> dict[str, dict[Scope, dict[str, Any]]]:
    """window -> scope -> {kpi: value} for the exported KPIs only."""
    sums = await window_counters(store, scopes, ranges, counters_of(kpis), groups, now_ms)
    return {w: {s: {k: KPI_BY_NAME[k].compute(c) for k in kpis} for s, c in per_scope.items()}
            for w, per_scope in sums.items()}


def agent_day(now_ms: int, tz: Any) -> Range:
    """An agent's `today` for the exporter: local midnight to the end of the current hour, so it
    is read from hour buckets alone (5,000 agents × 60 minute fields would dominate a scrape).
    It differs from the API's `today` only by events stamped later in this hour than now, which
    the contract accepts up to 10 minutes ahead (dialer clock skew)."""
    r = resolve_window("today", now_ms, tz)
    return Range(r.start, floor_to(now_ms, HOUR_MS) + HOUR_MS)


# -- families -------------------------------------------------------------------------------------

def _counter_families(totals: dict[str, dict[str, float]]) -> list[Metric]:
    out = []
    for c in COUNTERS:
        fam = CounterMetricFamily(c.metric_name.removesuffix("_total"),
                                  f"{c.help} (per campaign; sum for the center)", labels=["campaign"])
        for scope, vals in totals.items():
            value = vals.get(c.name, 0) / (1000 if c.ms else 1)
            fam.add_metric([scope.split(":", 1)[1]], value)
        out.append(fam)
    fam = CounterMetricFamily("callcenter_attempts_completed", "call.answered + call.unanswered",
                              labels=["campaign"])
    for scope, vals in totals.items():
        fam.add_metric([scope.split(":", 1)[1]], vals.get("answered", 0) + vals.get("unanswered", 0))
    out.append(fam)
    return out


def _caller_id_families(totals: dict[str, dict[str, float]]) -> list[Metric]:
    out = []
    for name in CALLER_ID_COUNTERS:
        fam = CounterMetricFamily(f"callcenter_caller_id_{name}",
                                  f"{KPI_BY_NAME[name].formula} per outbound caller ID",
                                  labels=["caller_id"])
        for scope, vals in totals.items():
            fam.add_metric([scope.split(":", 1)[1]], KPI_BY_NAME[name].compute(vals) or 0)
        out.append(fam)
    return out


def _window_families(values: list[dict[str, dict[Scope, dict[str, Any]]]]) -> list[Metric]:
    """One gauge family per KPI, labelled (window, scope_kind, scope_id)."""
    families: dict[str, GaugeMetricFamily] = {}
    for per_window in values:
        for window, per_scope in per_window.items():
            for scope, kpis in per_scope.items():
                for name, v in kpis.items():
                    if v is None:
                        continue
                    fam = families.get(name)
                    if fam is None:
                        kpi = KPI_BY_NAME[name]
                        fam = families[name] = GaugeMetricFamily(
                            window_metric_name(kpi), f"{name} = {kpi.formula} over the window",
                            labels=["window", "scope_kind", "scope_id"])
                    fam.add_metric([window, scope.kind, scope.ident], float(v))
    return [families[k] for k in sorted(families)]


def _live_families(live_agents: dict[str, dict], live_calls: dict[str, dict], now_ms: int,
                   call_expiry_ms: int) -> list[Metric]:
    agents = GaugeMetricFamily("callcenter_agents", "logged-in agents by current state",
                               labels=["state", "reason", "scope_kind", "scope_id"])
    tally: Tally[tuple[str, str, str, str]] = Tally()
    for a in live_agents.values():
        reason = (a.get("reason") or "") if a["state"] == "paused" else ""
        tally[(a["state"], reason, "center", "")] += 1
        if a.get("team"):
            tally[(a["state"], reason, "team", a["team"])] += 1
        if a.get("campaign"):
            tally[(a["state"], reason, "campaign", a["campaign"])] += 1
    for labels, n in sorted(tally.items()):
        agents.add_metric(list(labels), n)
    families: dict[str, GaugeMetricFamily] = {
        s: GaugeMetricFamily(f"callcenter_calls_{s}", f"calls {s} now", labels=["campaign"])
        for s in ("ringing", "waiting", "talking")}
    longest = GaugeMetricFamily("callcenter_longest_wait_seconds",
                                "longest current wait of an answered call for an agent",
                                labels=["campaign"])
    status: Tally[tuple[str, str]] = Tally()
    waits: dict[str, float] = {}
    for c in live_calls.values():
        if now_ms - c["since"] > call_expiry_ms:
            continue
        status[(c["status"], c.get("campaign") or "")] += 1
        if c["status"] == "waiting":
            camp = c.get("campaign") or ""
            waits[camp] = max(waits.get(camp, 0.0), (now_ms - c["since"]) / 1000)
    for (s, camp), n in sorted(status.items()):
        families[s].add_metric([camp], n)
    for camp, w in sorted(waits.items()):
        longest.add_metric([camp], w)
    return [agents, *families.values(), longest]


def _agent_family(live_agents: dict[str, dict], today: dict[Scope, dict[str, Any]],
                  now_ms: int) -> Metric:
    """The one per-agent family: logged-in agents only, a fixed handful of series each."""
    fam = GaugeMetricFamily(
        "callcenter_agent",
        "per logged-in agent, by kpi: state = current state code (0 logged_out, 1 available, "
        "2 on_call, 3 wrap_up, 4 paused), state_seconds = now - since, and since local midnight "
        f"(hour buckets, the current hour whole): {', '.join(f'{k} = {KPI_BY_NAME[k].formula}' for k in AGENT_KPIS)}",
        labels=["agent", "team", "kpi"])
    for agent_id, a in sorted(live_agents.items()):
        team = a.get("team") or ""
        fam.add_metric([agent_id, team, "state"], STATE_CODE.get(a["state"], -1.0))
        fam.add_metric([agent_id, team, "state_seconds"], max(0.0, (now_ms - a["since"]) / 1000))
        for name, v in today.get(Scope("agent", agent_id), {}).items():
            if v is not None:
                fam.add_metric([agent_id, team, name], float(v))
    return fam


def _pipeline_families(p: dict[str, float], g: dict[str, float], workers: dict[str, int],
                       now_ms: int) -> list[Metric]:
    out: list[Metric] = []
    for key, name, help_ in (
        ("consumed", "events_consumed", "messages read from the input topic (replays excluded)"),
        ("accepted", "events_accepted", "valid events (duplicates included)"),
        ("replayed", "events_replayed", "redelivered messages skipped: already applied (offset guard)"),
        ("duplicates", "events_duplicate", "valid events whose event_id was already counted"),
        ("late", "events_late", "events processed more than 5 minutes after their ts"),
        ("beyond_horizon", "events_beyond_horizon", "agent.state events older than the state horizon"),
        ("batches", "batches", "batches committed to Redis"),
        ("redis_errors", "redis_errors", "Redis errors seen by workers"),
    ):
        out.append(CounterMetricFamily(f"callcenter_pipeline_{name}", help_, value=p.get(key, 0)))
    rejected = CounterMetricFamily("callcenter_pipeline_events_rejected",
                                   "events rejected to the dead-letter topic, by reason",
                                   labels=["reason"])
    for key, v in sorted(p.items()):
        if key.startswith("rejected:"):
            rejected.add_metric([key.split(":", 1)[1]], v)
    out.append(rejected)
    buckets, cumulative = [], 0.0
    for bound in (*LATENCY_BUCKETS, "+Inf"):
        cumulative += p.get(f"latency_le:{bound}", 0)
        buckets.append((str(bound) if bound != "+Inf" else "+Inf", cumulative))
    out.append(HistogramMetricFamily("callcenter_pipeline_event_to_store_seconds",
                                     "from the record's publish time to its commit in Redis",
                                     buckets=buckets, sum_value=p.get("latency_sum", 0)))
    lag = GaugeMetricFamily("callcenter_pipeline_consumer_lag", "messages not yet consumed",
                            labels=["topic", "partition"])
    newest = GaugeMetricFamily("callcenter_pipeline_newest_event_age_seconds",
                               "now minus the ts of the newest event seen", labels=["campaign"])
    for key, v in sorted(g.items()):
        kind, _, rest = key.partition(":")
        if kind == "lag":
            topic, _, part = rest.rpartition(":")
            lag.add_metric([topic, part], v)
        elif kind == "newest_event":
            newest.add_metric([rest], max(0.0, (now_ms - v) / 1000))
    up = GaugeMetricFamily("callcenter_pipeline_worker_up", "1 when the worker's heartbeat is fresh",
                           labels=["worker"])
    for worker, beat in sorted(workers.items()):
        up.add_metric([worker], 1.0 if now_ms - beat < WORKER_STALE_MS else 0.0)
    return [*out, lag, newest, up]


# -- the text format ------------------------------------------------------------------------------

_TYPE_SUFFIX = {"counter": "_total"}


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of the families, as prometheus-client writes it.

    Metric and label names here are fixed identifiers of this module (valid by construction), so
    only label values and HELP texts need escaping.
    """
    out: list[str] = []
    for fam in families:
        name = fam.name + _TYPE_SUFFIX.get(fam.type, "")
        doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {fam.type}\n")
        for s in fam.samples:
            if s.labels:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
                out.append(f"{s.name}{{{labels}}} {floatToGoString(s.value)}\n")
            else:
                out.append(f"{s.name} {floatToGoString(s.value)}\n")
    return "".join(out).encode()


# -- the scrape -----------------------------------------------------------------------------------

async def scrape(ctx: Any) -> bytes:
    """One scrape: read Redis, build every family, render the text format."""
    now = ctx.now_ms()
    store = ctx.store
    scopes = await store.scopes()
    totals = await store.totals([f"campaign:{c}" for c in scopes["campaign"]])
    caller_totals = await store.totals([f"caller_id:{c}" for c in scopes["caller_id"]])
    live_agents, live_calls = await store.live()
    groups = members(live_agents)
    ranges = {w: resolve_window(w, now, ctx.tz) for w in GAUGE_WINDOWS}
    wallboard = await window_kpis(
        store, [Scope("center")] + [Scope("campaign", c) for c in scopes["campaign"]],
        ranges, WALLBOARD_KPIS, groups, now)
    teams = await window_kpis(store, [Scope("team", t) for t in scopes["team"]],
                              {w: ranges[w] for w in TEAM_WINDOWS}, TEAM_KPIS, groups, now)
    agents = await window_kpis(store, [Scope("agent", a) for a in sorted(live_agents)],
                               {"today": agent_day(now, ctx.tz)}, AGENT_KPIS, groups, now)
    p, g, w = await store.pipeline_health()
    families = [
        *_counter_families(totals), *_caller_id_families(caller_totals),
        *_window_families([wallboard, teams]),
        *_live_families(live_agents, live_calls, now, ctx.call_expiry_ms),
        _agent_family(live_agents, agents["today"], now),
        *_pipeline_families(p, g, w, now),
    ]
    if ctx.extensions is not None:
        families += await ctx.extensions.metric_families(now)
    return render(families)
