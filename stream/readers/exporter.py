"""Prometheus exposition: read Redis once per scrape, then hand the families to prometheus-client.

prometheus-client collectors are synchronous, so the scrape handler first takes an async snapshot
of everything it needs from Redis (a few pipelined round trips) and then serves a collector over
that snapshot. Every worker writes to Redis, so one scrape shows all partitions consistently.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric)

from stream.kpi.catalog import COUNTERS, KPI_BY_NAME, Kpi
from stream.kpi.scopes import Scope
from stream.kpi.windows import resolve_window
from stream.store.commit import LATENCY_BUCKETS

GAUGE_WINDOWS = ("5m", "15m", "1h", "today")
WALLBOARD_KPIS = (
    "connect_rate", "abandon_rate", "conversion_rate", "occupancy", "answer_rate", "lead_rate",
    "aht_seconds", "avg_wrapup_seconds", "avg_talk_seconds", "avg_answer_to_agent_seconds",
    "dialed", "connected", "conversions", "revenue", "qualified_leads", "handled",
    "calls_per_agent_hour",
)
"""The windowed gauges: a deliberate subset, to keep series count within budget."""
AGENT_KPIS = ("handled", "aht_seconds", "avg_wrapup_seconds", "calls_per_agent_hour", "occupancy")
CALLER_ID_COUNTERS = ("dialed", "attempts_completed", "connected")
WORKER_STALE_MS = 30_000


def window_metric_name(kpi: Kpi) -> str:
    """`callcenter_window_<kpi>` with a unit suffix (`_ratio`; `_seconds` kept)."""
    suffix = "_ratio" if kpi.unit == "ratio" and not kpi.name.endswith("_ratio") else ""
    return f"callcenter_window_{kpi.name}{suffix}"


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


def _window_families(values: dict[str, dict[Scope, dict[str, Any]]]) -> list[Metric]:
    out = []
    for name in WALLBOARD_KPIS:
        kpi = KPI_BY_NAME[name]
        fam = GaugeMetricFamily(window_metric_name(kpi), f"{name} = {kpi.formula} over the window",
                                labels=["window", "scope_kind", "scope_id"])
        for window, per_scope in values.items():
            for scope, kpis in per_scope.items():
                v = kpis.get(name)
                if v is not None:
                    fam.add_metric([window, scope.kind, scope.ident], float(v))
        out.append(fam)
    return out


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


def _agent_families(live_agents: dict[str, dict], today: dict[Scope, dict[str, Any]],
                    now_ms: int) -> list[Metric]:
    """The one per-agent family pair: logged-in agents only, a handful of series each."""
    state = GaugeMetricFamily("callcenter_agent_state_seconds", "seconds in the current state",
                              labels=["agent", "team", "state"])
    kpis = GaugeMetricFamily("callcenter_agent_today", "per-agent KPIs of the local day",
                             labels=["agent", "team", "kpi"])
    for agent_id, a in sorted(live_agents.items()):
        team = a.get("team") or ""
        state.add_metric([agent_id, team, a["state"]], max(0.0, (now_ms - a["since"]) / 1000))
        values = today.get(Scope("agent", agent_id), {})
        for name in AGENT_KPIS:
            if values.get(name) is not None:
                kpis.add_metric([agent_id, team, name], float(values[name]))
    return [state, kpis]


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


class _Snapshot:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


async def scrape(ctx: Any) -> bytes:
    """One scrape: read Redis, build every family, render the text format."""
    now = ctx.now_ms()
    store, query = ctx.store, ctx.query
    scopes = await store.scopes()
    campaigns = [f"campaign:{c}" for c in scopes["campaign"]]
    totals = await store.totals(campaigns)
    caller_totals = await store.totals([f"caller_id:{c}" for c in scopes["caller_id"]])
    live_agents, live_calls = await store.live()
    gauge_scopes = [Scope("center")] + [Scope("campaign", c) for c in scopes["campaign"]] + \
        [Scope("team", t) for t in scopes["team"]]
    windows = {w: await query.kpis(gauge_scopes, resolve_window(w, now, ctx.tz), now)
               for w in GAUGE_WINDOWS}
    today = await query.kpis([Scope("agent", a) for a in live_agents],
                             resolve_window("today", now, ctx.tz), now)
    p, g, w = await store.pipeline_health()
    families = [
        *_counter_families(totals), *_caller_id_families(caller_totals),
        *_window_families(windows),
        *_live_families(live_agents, live_calls, now, ctx.call_expiry_ms),
        *_agent_families(live_agents, today, now),
        *_pipeline_families(p, g, w, now),
    ]
    if ctx.extensions is not None:
        families += await ctx.extensions.metric_families(now)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))  # type: ignore[arg-type]
    return generate_latest(registry)


