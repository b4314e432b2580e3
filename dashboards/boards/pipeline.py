"""Pipeline health: Kafka → workers → Redis → exporter."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dash_m

from ..common import SCRAPE_JOB
from ..panels import AMBER, BLUE, GREEN, RED, Board, stat, thresholds, timeseries


def pipeline() -> Board:
    b = Board(
        "callkpi-pipeline",
        "Pipeline health",
        "Kafka → workers → Redis → exporter: throughput, rejections, lag, latency, freshness.",
        ["sre"],
        time_from="now-3h",
        refresh="30s",
    )
    up_mapping: list[dash_m.ValueMap | dash_m.RangeMap | dash_m.RegexMap | dash_m.SpecialValueMap] = [
        dash_m.ValueMap(options={"0": dash_m.ValueMappingResult(text="DOWN", color=RED, index=0),
                                 "1": dash_m.ValueMappingResult(text="UP", color=GREEN, index=1)})
    ]
    b.panel(stat("Exporter", f'min(up{{job="{SCRAPE_JOB}"}})', "none", thresholds(RED, (1, GREEN)))
            .mappings(up_mapping))
    b.panel(stat("Workers up", "sum(callcenter_pipeline_worker_up)", "none", thresholds(RED, (1, AMBER), (2, GREEN)),
                 description="Workers with a fresh heartbeat (compose runs two)."))
    b.panel(stat("Events / s", "sum(rate(callcenter_pipeline_events_consumed_total[5m]))", "reqps",
                 thresholds(BLUE), decimals=1))
    b.panel(stat("Consumer lag", "sum(callcenter_pipeline_consumer_lag)", "none",
                 thresholds(GREEN, (1000, AMBER), (10000, RED))))
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
    ], "reqps"))
    b.panel(timeseries("Rejected events by reason", [
        ("sum by (reason) (rate(callcenter_pipeline_events_rejected_total[$__rate_interval]))", "{{reason}}"),
    ], "reqps", stacked=True, description="Rejected to the dead-letter topic, by validation reason."),
        optional=True)
    b.panel(timeseries("Consumer lag by partition", [
        ("sum by (topic, partition) (callcenter_pipeline_consumer_lag)", "{{topic}}/{{partition}}"),
    ], "none"))
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
    ], "none", max_val=1))
    b.panel(timeseries("Batches and batch size", [
        ("sum(rate(callcenter_pipeline_batches_total[$__rate_interval]))", "batches / s"),
        ("sum(rate(callcenter_pipeline_events_consumed_total[$__rate_interval]))"
         " / (sum(rate(callcenter_pipeline_batches_total[$__rate_interval])) > 0)", "events / batch"),
    ], "none"))
    b.panel(timeseries("Redis errors per second", [
        ("sum(rate(callcenter_pipeline_redis_errors_total[$__rate_interval]))", "errors"),
    ], "reqps", th=thresholds(GREEN, (0.01, RED))))
    return b
