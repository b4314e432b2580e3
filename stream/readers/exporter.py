"""Prometheus exposition: read Redis once per scrape, then render every family.

prometheus-client collectors are synchronous, so the scrape handler first takes an async snapshot
of everything it needs from Redis (a few pipelined round trips) and then builds prometheus-client
metric families over that snapshot. Every worker writes to Redis, so one scrape shows all
partitions consistently.

Cost at scale (5,000 agents, ~420 teams; `bench/scrape.py`, docs/observability.md):
- window sums are computed inside Redis (`stream.readers.sums`): each bucket hash once for all
  windows, only the counters the exported KPIs need, a few numbers back per scope;
- open agent time is added from the agents of each scope only, grouped once per scrape;
- teams and agents get `today` only, read from hour buckets alone (`day_by_hours`);
- teams get the agent-side KPIs only, agents one family (`callcenter_agent`) whose series
  identity never changes with the agent's state (the state is a value, not a label);
- the text format is written here: prometheus-client's writer validates every label name of
  every sample, which alone took about a second for 45,000 series.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import weakref
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from stream.contract.events import AGENT_STATE_ORDER
from stream.kpi.catalog import COUNTERS, KPI_BY_NAME, Kpi, compute_some
from stream.kpi.scopes import Scope
from stream.kpi.windows import HOUR_MS, Range, floor_to, resolve_window
from stream.readers.query import Query, openings_of
from stream.readers.sums import OpenTime, counters_of, window_counters, window_sums
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
"""Teams are many (one per ~12 agents) and do not dial: agent-side KPIs, `today` only, read like
the agents' (`day_by_hours`) so that a team's row is the sum of its agents' rows."""
AGENT_KPIS = ("handled", "aht_seconds", "avg_wrapup_seconds", "calls_per_agent_hour", "occupancy")
AGENTS_READ_PER_SCRAPE = 1250
"""Agents whose stored `today` sums a scrape re-reads (round robin; agents not seen before are
always read): with 5,000 agents each is re-read every 4th scrape, i.e. within a minute at a 15 s
interval. Reading all 5,000 day hashes took ~0.9 s of Redis time per scrape on the bench machine."""
STATE_CODE = {state: float(i) for i, state in enumerate(AGENT_STATE_ORDER)}
"""`callcenter_agent{kpi="state"}`: 0 logged_out, 1 available, 2 on_call, 3 wrap_up, 4 paused."""
CALLER_ID_COUNTERS = ("dialed", "attempts_completed", "connected")
CALLER_ID_SERIES_CAP = 1000
"""Caller IDs exported per scrape: the ones seen most recently. Dialers rotate DIDs routinely
and the ids are the producer's strings, so the series must be bounded; the rest are counted in
`callcenter_caller_id_series_dropped` (docs/observability.md)."""
WORKER_STALE_MS = 30_000


def window_metric_name(kpi: Kpi) -> str:
    """`callcenter_window_<kpi>` with a unit suffix (`_ratio`; `_seconds` kept)."""
    suffix = "_ratio" if kpi.unit == "ratio" and not kpi.name.endswith("_ratio") else ""
    return f"callcenter_window_{kpi.name}{suffix}"


async def window_kpis(store: Any, scopes: list[Scope], ranges: Mapping[str, Range], kpis: tuple[str, ...],
                      open_time: OpenTime) -> dict[str, dict[Scope, dict[str, Any]]]:
    """window -> scope -> {kpi: value} for the exported KPIs only."""
    sums = await window_counters(store, scopes, ranges, counters_of(kpis), open_time)
    return {w: {s: {k: KPI_BY_NAME[k].compute(c) for k in kpis} for s, c in per_scope.items()}
            for w, per_scope in sums.items()}


class _AgentDays:
    """Per-agent stored `today` sums, kept between scrapes and re-read AGENTS_READ_PER_SCRAPE at
    a time. Open agent time (now − since of the current state) is added at every scrape, so state
    durations, occupancy and calls per agent-hour move with the clock; only counts committed
    since an agent's last re-read (at most a few scrapes ago) can be missing."""

    def __init__(self) -> None:
        self.day_start = -1
        self.sums: dict[str, dict[str, float]] = {}
        self.cursor = 0

    async def kpis(self, store: Any, agents: list[str], day: Range, open_time: OpenTime) -> dict[Scope, dict[str, Any]]:
        if day.start != self.day_start:  # a new local day: nothing kept is valid
            self.day_start, self.sums, self.cursor = day.start, {}, 0
        live = set(agents)
        # this scrape's own dict: a concurrent scrape (two Prometheus servers) may swap self.sums
        sums = {a: v for a, v in self.sums.items() if a in live}
        known = [a for a in agents if a in sums]
        read = [a for a in agents if a not in sums]
        quota = max(0, AGENTS_READ_PER_SCRAPE - len(read))
        if known and quota:
            start = self.cursor % len(known)
            read += (known[start:] + known[:start])[:quota]
            self.cursor = start + quota
        fresh = await window_sums(store, [f"agent:{a}" for a in read], {"today": day}, counters_of(AGENT_KPIS))
        for a in read:
            sums[a] = fresh[f"agent:{a}"]["today"]
        if day.start == self.day_start:
            self.sums = sums
        out = {}
        compute = compute_some(AGENT_KPIS)  # each `Kpi.compute`'s value, in one function
        for a in agents:
            scope = Scope("agent", a)
            counters = dict(sums[a])
            for name, ms in open_time.of(scope, day).items():
                if name in counters:
                    counters[name] += ms
            out[scope] = compute(counters)
        return out


_AGENT_DAYS: weakref.WeakKeyDictionary[Any, _AgentDays] = weakref.WeakKeyDictionary()
"""One `_AgentDays` per store (i.e. per `callkpi serve` process)."""


def day_by_hours(now_ms: int, tz: Any) -> Range:
    """`today` of teams and agents in the exporter: local midnight to the end of the current
    hour, so it is read from hour buckets alone (thousands of scopes × 60 minute fields would
    dominate a scrape). It differs from the API's `today` only by events stamped later in this
    hour than now, which the contract accepts up to 10 minutes ahead (dialer clock skew)."""
    r = resolve_window("today", now_ms, tz)
    return Range(r.start, floor_to(now_ms, HOUR_MS) + HOUR_MS)


# -- families -------------------------------------------------------------------------------------

RETRACTED_FIELD = "retracted:"
"""`t:<scope>` field prefix of what late events took back from a counter (stream/store/commit.lua)."""
RETRACTABLE = ("staffed_ms", "available_ms", "on_call_ms", "wrap_up_ms", "paused_ms",
               "call_gap_ms", "call_gaps")
"""Counters a late event can take back from a campaign: agent time (a late `agent.state`
re-derives closed intervals) and call gaps. Their retraction series are exported from 0 so that
`increase()` sees the first retraction; any other counter's only once it has one."""


def _split_totals(vals: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(added, retracted) per counter of a `t:` hash: the stored net total is added − retracted,
    and both of those only grow, so both can be Prometheus counters."""
    retracted = {k[len(RETRACTED_FIELD):]: v for k, v in vals.items() if k.startswith(RETRACTED_FIELD)}
    added = {k: v + retracted.get(k, 0.0) for k, v in vals.items() if not k.startswith(RETRACTED_FIELD)}
    return added, retracted


def _base_name(c: Any) -> str:
    return c.metric_name.removeprefix("callcenter_").removesuffix("_total")


def _counter_families(totals: dict[str, dict[str, float]]) -> list[Metric]:
    """Per campaign: every counter's additions (`_total`, never decreasing) and, in
    `callcenter_retracted_total{counter}`, what late events took back; net = the difference."""
    out: list[Metric] = []
    split = {scope: _split_totals(vals) for scope, vals in totals.items()}
    for c in COUNTERS:
        fam = CounterMetricFamily(c.metric_name.removesuffix("_total"),
                                  f"{c.help} (per campaign; sum for the center; counted additions: "
                                  "subtract callcenter_retracted_total for the net)", labels=["campaign"])
        for scope, (added, _) in split.items():
            fam.add_metric([scope.split(":", 1)[1]], added.get(c.name, 0) / (1000 if c.ms else 1))
        out.append(fam)
    fam = CounterMetricFamily("callcenter_attempts_completed", "call.answered + call.unanswered",
                              labels=["campaign"])
    for scope, (added, _) in split.items():
        fam.add_metric([scope.split(":", 1)[1]], added.get("answered", 0) + added.get("unanswered", 0))
    out.append(fam)
    back = CounterMetricFamily("callcenter_retracted",
                               "what late events took back from a counter (label counter: the "
                               "counter's name without callcenter_ and _total), per campaign",
                               labels=["campaign", "counter"])
    for scope, (_, retracted) in split.items():
        campaign = scope.split(":", 1)[1]
        for c in COUNTERS:
            r = retracted.get(c.name, 0.0)
            if r or c.name in RETRACTABLE:
                back.add_metric([campaign, _base_name(c)], r / (1000 if c.ms else 1))
        attempts = retracted.get("answered", 0.0) + retracted.get("unanswered", 0.0)
        if attempts:
            back.add_metric([campaign, "attempts_completed"], attempts)
    out.append(back)
    return out


def _caller_id_families(totals: dict[str, dict[str, float]]) -> list[Metric]:
    """Per caller ID: additions (`_total`) and, always, what re-attribution took back (a late
    `call.dialed` can move a call's events to another caller ID)."""
    out: list[Metric] = []
    split = {scope: _split_totals(vals) for scope, vals in totals.items()}
    back = CounterMetricFamily("callcenter_caller_id_retracted",
                               "what re-attribution took back from a caller-ID counter",
                               labels=["caller_id", "counter"])
    for name in CALLER_ID_COUNTERS:
        fam = CounterMetricFamily(f"callcenter_caller_id_{name}",
                                  f"{KPI_BY_NAME[name].formula} per outbound caller ID (counted "
                                  "additions: subtract callcenter_caller_id_retracted_total)",
                                  labels=["caller_id"])
        for scope, (added, retracted) in split.items():
            caller_id = scope.split(":", 1)[1]
            fam.add_metric([caller_id], KPI_BY_NAME[name].compute(added) or 0)
            back.add_metric([caller_id, name], KPI_BY_NAME[name].compute(retracted) or 0)
        out.append(fam)
    out.append(back)
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


class _Written(GaugeMetricFamily):
    """A gauge family whose samples are already in the text format (see `_agent_family`)."""

    def __init__(self, name: str, documentation: str, text: str) -> None:
        super().__init__(name, documentation)
        self.text = text


def _agent_family(live_agents: dict[str, dict], today: dict[Scope, dict[str, Any]],
                  now_ms: int) -> Metric:
    """The one per-agent family: logged-in agents only, a fixed handful of series each.

    Written straight to text (35,000 lines for 5,000 agents: building sample objects and then
    formatting them cost about a third of a scrape); `render` checks nothing here, so label
    values are escaped here and labels appear in sorted order (agent, kpi, team)."""
    lines = []
    for agent_id, a in sorted(live_agents.items()):
        agent, team = _escape(agent_id), _escape(a.get("team") or "")
        values = [("state", STATE_CODE.get(a["state"], -1.0)),
                  ("state_seconds", max(0.0, (now_ms - a["since"]) / 1000)),
                  *today.get(Scope("agent", agent_id), {}).items()]
        lines += [f'callcenter_agent{{agent="{agent}",kpi="{k}",team="{team}"}} {floatToGoString(float(v))}\n'
                  for k, v in values if v is not None]
    return _Written("callcenter_agent", _AGENT_HELP, "".join(lines))


_AGENT_HELP = (
    "per logged-in agent, by kpi: state = current state code (0 logged_out, 1 available, "
    "2 on_call, 3 wrap_up, 4 paused), state_seconds = now - since, and since local midnight "
    f"(hour buckets, the current hour whole; stored sums re-read for {AGENTS_READ_PER_SCRAPE} "
    f"agents per scrape, round robin): {', '.join(f'{k} = {KPI_BY_NAME[k].formula}' for k in AGENT_KPIS)}")


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
        ("dead_letter_minimal", "dead_letters_minimal",
         "dead-letter records refused for good and sent minimal (no original)"),
        ("dead_letter_lost", "dead_letters_lost",
         "dead-letter records refused even minimal (the rejection is still counted)"),
        ("redis_oom_errors", "redis_oom_errors",
         "commits Redis refused for want of memory (maxmemory under noeviction), retried"),
        ("commit_conflicts", "commit_conflicts",
         "commits retried because another worker changed a state or offset the batch read"),
        ("ahead_kept", "preparations_kept",
         "batches prepared ahead of one that was redone, committed as prepared (nothing they read changed)"),
        ("ahead_redone", "preparations_redone",
         "batches prepared ahead of one that was redone, prepared again (they read what the redo changed)"),
        ("commit_errors", "commit_errors",
         "batches Redis refused before writing anything (e.g. a counter would overflow); the worker stops"),
        ("store_rewinds", "store_rewinds",
         "partitions read again because Redis's applied offset was behind (Redis lost commits)"),
        ("offsets_unreadable", "offsets_unreadable",
         "offsets that could not be read again after a Redis rollback (no records: retention, compaction)"),
        ("store_ahead", "store_ahead",
         "batches whose partition Redis claims applied beyond the partition's end (topic recreated?)"),
        ("store_offset_resets", "store_offset_resets",
         "applied offsets reset to the consumer group's position (CALLKPI_OFFSET_AHEAD_POLICY=reset)"),
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
    ahead = GaugeMetricFamily("callcenter_pipeline_store_offset_ahead",
                              "offsets Redis claims applied beyond the partition's end (0: none)",
                              labels=["topic", "partition"])
    for key, v in sorted(g.items()):
        kind, _, rest = key.partition(":")
        if kind == "lag":
            topic, _, part = rest.rpartition(":")
            lag.add_metric([topic, part], v)
        elif kind == "store_ahead":
            topic, _, part = rest.rpartition(":")
            ahead.add_metric([topic, part], v)
        elif kind == "newest_event":
            newest.add_metric([rest], max(0.0, (now_ms - v) / 1000))
    up = GaugeMetricFamily("callcenter_pipeline_worker_up", "1 when the worker's heartbeat is fresh",
                           labels=["worker"])
    for worker, beat in sorted(workers.items()):
        up.add_metric([worker], 1.0 if now_ms - beat < WORKER_STALE_MS else 0.0)
    redis_memory = [
        GaugeMetricFamily("callcenter_redis_memory_used_bytes", "Redis used_memory",
                          value=g.get("redis:used_memory", 0)),
        GaugeMetricFamily("callcenter_redis_memory_max_bytes", "Redis maxmemory (0: no limit)",
                          value=g.get("redis:maxmemory", 0)),
        GaugeMetricFamily("callcenter_redis_noeviction",
                          "1 when Redis's maxmemory-policy is noeviction (required)",
                          value=g.get("redis:noeviction", 1)),
    ]
    return [*out, lag, ahead, newest, up, *redis_memory]


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
    escaped: dict[str, str] = {}  # label values repeat (agents, teams, windows): escape each once
    for fam in families:
        name = fam.name + _TYPE_SUFFIX.get(fam.type, "")
        doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {fam.type}\n")
        if isinstance(fam, _Written):
            out.append(fam.text)
            continue
        for s in fam.samples:
            if s.labels:
                parts = []
                for k in sorted(s.labels):
                    v = s.labels[k]
                    e = escaped.get(v)
                    if e is None:
                        e = escaped[v] = _escape(v)
                    parts.append(f'{k}="{e}"')
                out.append(f"{s.name}{{{','.join(parts)}}} {floatToGoString(s.value)}\n")
            else:
                out.append(f"{s.name} {floatToGoString(s.value)}\n")
    return "".join(out).encode()


# -- the scrape -----------------------------------------------------------------------------------

class _ScrapeView:
    """The store as one scrape sees it: scopes and live state are read once (the exporter and
    the business families both need them; with 5,000 agents each read is ~10,000 replies)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._scopes: dict[str, list[str]] | None = None
        self._live: tuple[dict[str, dict], dict[str, dict]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def scopes(self, now_ms: int | None = None) -> dict[str, list[str]]:
        """Read once per scrape, with the scrape's clock (the first caller's `now_ms`)."""
        if self._scopes is None:
            self._scopes = await self._store.scopes(now_ms)
        return self._scopes

    async def live(self) -> tuple[dict[str, dict], dict[str, dict]]:
        if self._live is None:
            self._live = await self._store.live()
        return self._live


def _scrape_context(ctx: Any) -> Any:
    """A copy of the API context (and of its extensions) reading through one `_ScrapeView`."""
    view = _ScrapeView(ctx.store)
    scoped = dataclasses.replace(ctx, store=view, query=Query(view, ctx.tz))  # type: ignore[arg-type]
    if ctx.extensions is not None:
        scoped.extensions = copy.copy(ctx.extensions)
        scoped.extensions.ctx = scoped
    return scoped


async def scrape(ctx: Any) -> bytes:
    """One scrape: read Redis, build every family, render the text format."""
    agent_days = _AGENT_DAYS.setdefault(ctx.store, _AgentDays())
    ctx = _scrape_context(ctx)
    now = ctx.now_ms()
    store = ctx.store
    scopes = await store.scopes(now)  # retired scopes (no data in the retention) are not read
    caller_ids, caller_id_count = await store.recent_scopes("caller_id", CALLER_ID_SERIES_CAP, now)
    totals = await store.totals([f"campaign:{c}" for c in scopes["campaign"]])
    caller_totals = await store.totals([f"caller_id:{c}" for c in caller_ids])
    live_agents, live_calls = await store.live()
    open_time = OpenTime(live_agents, now, openings_of(store, live_agents))
    ranges = {w: resolve_window(w, now, ctx.tz) for w in GAUGE_WINDOWS}
    day = {"today": day_by_hours(now, ctx.tz)}
    # Concurrently (each on its own connection): Redis runs one script at a time, but this process
    # parses and computes one answer while Redis works on the next.
    wallboard, teams, agents, (p, g, w), business = await asyncio.gather(
        window_kpis(store, [Scope("center")] + [Scope("campaign", c) for c in scopes["campaign"]],
                    ranges, WALLBOARD_KPIS, open_time),
        window_kpis(store, [Scope("team", t) for t in scopes["team"]], day, TEAM_KPIS, open_time),
        agent_days.kpis(store, sorted(live_agents), day["today"], open_time),
        store.pipeline_health(),
        ctx.extensions.metric_families(now, open_time) if ctx.extensions is not None else _nothing(),
    )
    families = [
        *_counter_families(totals), *_caller_id_families(caller_totals),
        GaugeMetricFamily("callcenter_caller_id_series_dropped",
                          f"caller IDs with data in the retention beyond the {CALLER_ID_SERIES_CAP} "
                          "seen most recently, whose series are not exported",
                          value=caller_id_count - len(caller_ids)),
        *_window_families([wallboard, teams]),
        *_live_families(live_agents, live_calls, now, ctx.call_expiry_ms),
        _agent_family(live_agents, agents, now),
        *_pipeline_families(p, _current_gauges(g, set(scopes["campaign"])), w, now),
        *business,
        *_serve_families(ctx.updates, ctx.cache),
    ]
    return render(families)


def _serve_families(hub: Any, cache: Any) -> list[Metric]:
    """This `serve` process's own health (per process: each one scraped is its own target)."""
    out: list[Metric] = []
    if cache is not None:
        out += [CounterMetricFamily("callcenter_api_response_cache_hits",
                                    "answers served from the shared cache", value=cache.hits),
                CounterMetricFamily("callcenter_api_response_cache_misses",
                                    "answers computed (no current cached answer)", value=cache.misses)]
    if hub is not None:
        out += [GaugeMetricFamily("callcenter_api_stream_clients", "open /api/v1/stream clients",
                                  value=hub.clients),
                CounterMetricFamily("callcenter_api_stream_refused",
                                    "stream clients refused at api.max_stream_clients", value=hub.refused),
                CounterMetricFamily("callcenter_api_stream_dropped_slow",
                                    "stream clients dropped for not reading what they were sent",
                                    value=hub.dropped_slow)]
    return out


def _current_gauges(gauges: Mapping[str, float], campaigns: set[str]) -> dict[str, float]:
    """A `newest_event:<campaign>` gauge is exported only while its campaign has not retired
    (the commit deletes it when the campaign retires; this covers the time until then)."""
    return {k: v for k, v in gauges.items()
            if not k.startswith("newest_event:") or k[len("newest_event:"):] in campaigns}


async def _nothing() -> list[Metric]:
    return []
