"""Pipeline health: Kafka → workers → Redis → exporter."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dash_m

from ..alerts import runbook_url
from ..common import SCRAPE_JOB
from ..panels import AMBER, BLUE, GREEN, RED, Board, stat, thresholds, timeseries

Mapping = dash_m.ValueMap | dash_m.RangeMap | dash_m.RegexMap | dash_m.SpecialValueMap


def _runbooks(*alerts: str) -> str:
    """The runbook anchors (docs/operations.md) of the alerts that watch what a panel shows."""
    return " Runbook: " + ", ".join(f"[{a}]({runbook_url(a)})" for a in alerts) + "."


def _rate(metric: str) -> str:
    return f"sum(rate({metric}[$__rate_interval]))"


def _two_states(off: str, on: str, on_color: str, off_color: str) -> list[Mapping]:
    return [dash_m.ValueMap(options={"0": dash_m.ValueMappingResult(text=off, color=off_color, index=0),
                                     "1": dash_m.ValueMappingResult(text=on, color=on_color, index=1)})]


def pipeline() -> Board:
    b = Board(
        "callkpi-pipeline",
        "Pipeline health",
        "Kafka → workers → Redis → exporter: throughput, rejections, lag, latency, freshness.",
        ["sre"],
        time_from="now-3h",
        refresh="30s",
    )
    b.panel(stat("Exporter", f'min(up{{job="{SCRAPE_JOB}"}})', "none", thresholds(RED, (1, GREEN)),
                 description="Whether Prometheus scrapes `callkpi serve`." + _runbooks("CallkpiExporterDown"))
            .mappings(_two_states("DOWN", "UP", GREEN, RED)))
    b.panel(stat("Workers up", "sum(callcenter_pipeline_worker_up)", "none", thresholds(RED, (1, AMBER), (2, GREEN)),
                 description="Workers with a fresh heartbeat (compose runs two)." + _runbooks("CallkpiWorkerDown")))
    b.panel(stat("Events / s", "sum(rate(callcenter_pipeline_events_consumed_total[5m]))", "reqps",
                 thresholds(BLUE), decimals=1,
                 description="Messages read from the input topic." + _runbooks("CallkpiPipelineStalled")))
    b.panel(stat("Consumer lag", "sum(callcenter_pipeline_consumer_lag)", "none",
                 thresholds(GREEN, (1000, AMBER), (10000, RED)),
                 description="Messages not yet consumed, all partitions." + _runbooks("CallkpiConsumerLagGrowing")))
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
        (_rate("callcenter_pipeline_events_replayed_total"), "replayed (already applied)"),
        (_rate("callcenter_pipeline_events_beyond_horizon_total"), "agent.state beyond the horizon"),
    ], "reqps", description="Replayed: redelivered messages the offset guard skipped (a restart or "
                            "rebalance). Beyond the horizon: agent.state events too old to apply."))
    b.panel(timeseries("Rejected events by reason", [
        ("sum by (reason) (rate(callcenter_pipeline_events_rejected_total[$__rate_interval]))", "{{reason}}"),
    ], "reqps", stacked=True, description="Rejected to the dead-letter topic, by validation reason."
                                             + _runbooks("CallkpiRejectedEventsSurge")),
        optional=True)
    b.panel(timeseries("Consumer lag by partition", [
        ("sum by (topic, partition) (callcenter_pipeline_consumer_lag)", "{{topic}}/{{partition}}"),
    ], "none", description="Messages not yet consumed." + _runbooks("CallkpiConsumerLagGrowing")))
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
    ], "none", max_val=1, description="1 while the worker's heartbeat is fresh." + _runbooks("CallkpiWorkerDown")))
    b.panel(timeseries("Batches and batch size", [
        ("sum(rate(callcenter_pipeline_batches_total[$__rate_interval]))", "batches / s"),
        ("sum(rate(callcenter_pipeline_events_consumed_total[$__rate_interval]))"
         " / (sum(rate(callcenter_pipeline_batches_total[$__rate_interval])) > 0)", "events / batch"),
    ], "none"))
    b.panel(timeseries("Redis errors per second", [
        ("sum(rate(callcenter_pipeline_redis_errors_total[$__rate_interval]))", "errors"),
    ], "reqps", th=thresholds(GREEN, (0.01, RED)),
        description="Redis errors the workers saw (connection loss, timeouts, refusals); they retry."))
    _store_health(b)
    _serve_health(b)
    return b


def _store_health(b: Board) -> None:
    """The store's own health: commit retries and refusals, rollbacks, memory, dead letters."""
    b.row("Store health")
    b.panel(stat("Redis memory", "max(callcenter_redis_memory_used_bytes) / (max(callcenter_redis_memory_max_bytes) > 0)",
                 "percentunit", thresholds(GREEN, (0.8, AMBER), (0.95, RED)), decimals=0,
                 description="Redis used_memory / maxmemory. At the limit Redis refuses the workers' commits "
                             "(noeviction); no value when Redis has no maxmemory."
                             + _runbooks("CallkpiRedisOutOfMemory")))
    b.panel(stat("Eviction policy", "min(callcenter_redis_noeviction)", "none", thresholds(RED, (1, GREEN)),
                 description="Redis's maxmemory-policy must be noeviction: an evicted applied offset or state "
                             "double counts." + _runbooks("CallkpiRedisEvictionPolicy"))
            .mappings(_two_states("EVICTS", "noeviction", GREEN, RED)))
    b.panel(stat("Store ahead of topic", "max(callcenter_pipeline_store_offset_ahead) or vector(0)", "none",
                 thresholds(GREEN, (1, RED)), decimals=0,
                 description="Largest number of offsets Redis claims applied beyond a partition's end (topic "
                             "recreated?). The series exists only once it happened: 0 otherwise."
                             + _runbooks("CallkpiStoreAheadOfTopic")))
    b.panel(stat("Commit conflicts / batch", "sum(rate(callcenter_pipeline_commit_conflicts_total[10m]))"
                 " / (sum(rate(callcenter_pipeline_batches_total[10m])) > 0)", "none",
                 thresholds(GREEN, (0.2, AMBER), (0.5, RED)), decimals=2,
                 description="Commits retried because another worker changed a state or offset the batch read, "
                             "per committed batch over 10 minutes." + _runbooks("CallkpiCommitConflictsHigh")))
    b.panel(stat("Commits refused (1 h)", "sum(increase(callcenter_pipeline_commit_errors_total[1h]))", "none",
                 thresholds(GREEN, (1, RED)), decimals=0,
                 description="Batches Redis refused before writing anything (e.g. a counter would overflow); "
                             "the worker stops." + _runbooks("CallkpiCommitRefused")))
    b.panel(stat("Dead letters lost (1 h)", "sum(increase(callcenter_pipeline_dead_letters_lost_total[1h]))", "none",
                 thresholds(GREEN, (1, RED)), decimals=0,
                 description="Rejections whose dead-letter record the broker refused even minimal: counted, "
                             "record lost (docs/operations.md#bad-input-rejected-counted-dead-lettered-never-fatal)."))

    b.panel(timeseries("Commit retries and refusals", [
        (_rate("callcenter_pipeline_commit_conflicts_total"), "conflicts (retried)"),
        (_rate("callcenter_pipeline_redis_oom_errors_total"), "out of memory (retried)"),
        (_rate("callcenter_pipeline_commit_errors_total"), "refused (worker stops)"),
        (_rate("callcenter_pipeline_preparations_kept_total"), "prepared ahead, kept"),
        (_rate("callcenter_pipeline_preparations_redone_total"), "prepared ahead, redone"),
    ], "cps", description="Conflicts: another worker changed what the batch read. Out of memory: Redis at "
                          "maxmemory refused the commit. Refused: Redis rejected the batch before writing. "
                          "Prepared ahead: the batch after a redone one, kept when it read nothing the "
                          "redo changed, else redone too."
                          + _runbooks("CallkpiCommitConflictsHigh", "CallkpiRedisOutOfMemory", "CallkpiCommitRefused")))
    b.panel(timeseries("Redis memory", [
        ("max(callcenter_redis_memory_used_bytes)", "used"),
        ("max(callcenter_redis_memory_max_bytes) > 0", "maxmemory"),
    ], "bytes", description="Redis used_memory and its maxmemory (no line: no limit)."
                            + _runbooks("CallkpiRedisOutOfMemory")))
    b.panel(timeseries("Redis rollbacks and store offsets", [
        ("sum(increase(callcenter_pipeline_store_rewinds_total[$__rate_interval]))", "partitions re-read (rollback)"),
        ("sum(increase(callcenter_pipeline_offsets_unreadable_total[$__rate_interval]))", "offsets unreadable"),
        ("sum(increase(callcenter_pipeline_store_ahead_total[$__rate_interval]))", "batches ahead of topic"),
        ("sum(increase(callcenter_pipeline_store_offset_resets_total[$__rate_interval]))", "offsets reset"),
        ("sum(callcenter_pipeline_store_offset_ahead) or vector(0)", "offsets ahead now"),
    ], "none", description="Redis lost commits (re-read from Kafka), offsets Kafka no longer had, and a store "
                           "claiming offsets beyond the topic's end."
                           + _runbooks("CallkpiRedisRolledBack", "CallkpiRedisOffsetsLost", "CallkpiStoreAheadOfTopic")))
    b.panel(timeseries("Dead letters", [
        (_rate("callcenter_pipeline_events_rejected_total") + " or vector(0)", "rejected (all)"),
        (_rate("callcenter_pipeline_dead_letters_minimal_total"), "sent minimal"),
        (_rate("callcenter_pipeline_dead_letters_lost_total"), "lost"),
    ], "cps", description="Rejected events and what became of their dead-letter records: minimal when the broker "
                          "refused the full record, lost when it refused even that "
                          "(docs/operations.md#bad-input-rejected-counted-dead-lettered-never-fatal)."))


def _serve_health(b: Board) -> None:
    """`callkpi serve`'s own health: whether its answer cache works and whether wallboards get
    their live stream (each serve process is its own scrape target; the panels sum them)."""
    hits, misses = "callcenter_api_response_cache_hits_total", "callcenter_api_response_cache_misses_total"
    refused, dropped = "callcenter_api_stream_refused_total", "callcenter_api_stream_dropped_slow_total"
    b.row("Serve (API and wallboards)")
    b.panel(stat("Answer cache hit ratio", f"sum(rate({hits}[10m])) / ((sum(rate({hits}[10m])) + sum(rate({misses}[10m]))) > 0)",
                 "percentunit", thresholds(AMBER, (0.5, GREEN)), decimals=0, w=6,
                 description="Share of API answers served from serve's shared cache over 10 minutes. Every commit "
                             "makes cached answers stale, so many boards on the same scopes share one computation "
                             "per commit; a low ratio with many boards means each asks for something different "
                             "(docs/wallboard.md). No value while nothing asks."), optional=True)
    b.panel(stat("Wallboard streams open", "sum(callcenter_api_stream_clients) or vector(0)", "none",
                 thresholds(BLUE), decimals=0, w=6,
                 description="Open /api/v1/stream connections, all serve processes (api.max_stream_clients "
                             "per process)." + _runbooks("CallkpiStreamClientsRefused")))
    b.panel(stat("Streams refused (1 h)", f"sum(increase({refused}[1h])) or vector(0)", "none",
                 thresholds(GREEN, (1, AMBER)), decimals=0, w=6,
                 description="Wallboards turned away at api.max_stream_clients (they fall back to a 10 s poll "
                             "and retry)." + _runbooks("CallkpiStreamClientsRefused")))
    b.panel(stat("Slow streams dropped (1 h)", f"sum(increase({dropped}[1h])) or vector(0)", "none",
                 thresholds(GREEN, (1, AMBER)), decimals=0, w=6,
                 description="Stream clients dropped for not reading what they were sent (a stalled browser or "
                             "network); the page reconnects."))
    b.panel(timeseries("API answers", [
        (_rate(hits), "from cache"),
        (_rate(misses), "computed"),
    ], "reqps", stacked=True, description="Answers per second, from the shared cache or computed; computed "
                                           "answers cost Redis reads and serve CPU."))
    b.panel(timeseries("Wallboard streams", [
        ("sum by (instance) (callcenter_api_stream_clients)", "open: {{instance}}"),
        (_rate(refused), "refused / s"),
        (_rate(dropped), "dropped slow / s"),
    ], "none", description="Open streams per serve process, and the rates of refused and dropped ones."
                           + _runbooks("CallkpiStreamClientsRefused")))
