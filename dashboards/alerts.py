"""Prometheus alerting rules: KPI drops, compliance limits, pipeline health.

Every alert compares a short window with a baseline or a limit, needs a minimum volume and waits
with `for:`; its annotations say what happened and what to do.
"""

from __future__ import annotations

import textwrap

from .common import ABANDON_WARN_SHARE, DEFAULT_ABANDON_LIMIT, RUNBOOK_DOCUMENT, SCRAPE_JOB, AlertRule, RuleGroup


def _expr(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def runbook_url(alert: str) -> str:
    """Where the alert's runbook is: its own heading (### <alert>) in the runbook document."""
    return f"{RUNBOOK_DOCUMENT}#{alert.lower()}"


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    category: str,
    summary: str,
    description: str,
    runbook: str,
    extra_labels: dict[str, str] | None = None,
) -> AlertRule:
    labels = {"severity": severity, "category": category}
    labels.update(extra_labels or {})
    return {
        "alert": name,
        "expr": _expr(expr),
        "for": for_,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": " ".join(textwrap.dedent(description).split()),
            "runbook": " ".join(textwrap.dedent(runbook).split()),
            "runbook_url": runbook_url(name),
        },
    }


def _kpi_alerts() -> list[AlertRule]:
    return [
        _alert(
            "ConnectRateDrop",
            """
            campaign:callcenter_connect_rate:ratio_rate15m
              < 0.7 * (campaign:callcenter_connect_rate:ratio_rate2h offset 15m)
            and
            campaign:callcenter_connect_rate:ratio_rate15m
              < 0.7 * (
                  sum by (campaign) (increase(callcenter_connected_total[15m] offset 1w))
                /
                  (sum by (campaign) (increase(callcenter_attempts_completed_total[15m] offset 1w)) >= 100)
              )
            and
            campaign:callcenter_attempts_completed:increase15m >= 100
            """,
            "15m",
            "warning",
            "kpi",
            "Connect rate of campaign {{ $labels.campaign }} dropped",
            """
            The 15-minute connect rate (human answers / completed attempts) of campaign
            {{ $labels.campaign }} is below 70% of both its level over the 2 hours before and its
            level at the same time a week ago, with at least 100 completed attempts in 15 minutes
            (and a week ago). A drop against both baselines is not the normal time-of-day pattern.
            """,
            """
            Open the Campaigns and Caller-ID health dashboards. If one caller ID collapsed, see
            CallerIdConnectRateCollapse. If all caller IDs dropped, check the dialing list (a new or
            exhausted list, wrong time zone), the carrier/trunk status and answering-machine
            detection settings; lower the dialing ratio if agents sit idle.
            """,
        ),
        _alert(
            "CallerIdConnectRateCollapse",
            """
            caller_id:callcenter_caller_id_connect_rate:ratio_rate1h
              < 0.5 * caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h
            and
            caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h
              >= 0.8 * (caller_id:callcenter_caller_id_others_connect_rate:ratio_rate1h offset 1h)
            and
            caller_id:callcenter_caller_id_attempts_completed:increase1h >= 50
            and
            caller_id:callcenter_caller_id_others_attempts_completed:increase1h >= 100
            """,
            "15m",
            "warning",
            "kpi",
            "Caller ID {{ $labels.caller_id }} may be flagged as spam",
            """
            Over the last hour caller ID {{ $labels.caller_id }} connected less than half as often as
            the other caller IDs of the center (caller IDs are counted across campaigns), while those
            held at least 80% of their rate of an hour earlier (at least 50 attempts on this number,
            100 on the others).
            A number that collapses alone is typically labelled "spam likely" by carriers.
            """,
            """
            Take the caller ID out of rotation in the dialer, check its reputation with the carriers'
            registration/remediation portals, and rest it before reuse. Check the Caller-ID health
            dashboard for other numbers trending the same way.
            """,
        ),
    ]


def _compliance_alerts() -> list[AlertRule]:
    alerts: list[AlertRule] = []
    regimes = (
        (
            "US30d",
            "us",
            "campaign:callcenter_compliance_us_abandon_rate_30d:ratio",
            "campaign:callcenter_connected:increase30d >= 100",
            "30-day abandon rate (FCC/FTC TSR)",
            "at least 100 live answers in 30 days",
        ),
        (
            "UKToday",
            "uk",
            "campaign:callcenter_compliance_uk_abandon_rate_today:ratio",
            "campaign:callcenter_connected:today >= 50",
            "abandon rate of the day (Ofcom)",
            "at least 50 live answers today",
        ),
    )
    limit = "campaign:callcenter_compliance_abandon_limit:ratio"
    for suffix, regime, rate, volume, what, volume_text in regimes:
        alerts.append(
            _alert(
                f"AbandonRate{suffix}NearLimit",
                f"""
                {rate}
                  > on (campaign) ({ABANDON_WARN_SHARE} * {limit})
                and
                {rate}
                  <= on (campaign) {limit}
                and on (campaign)
                {volume}
                """,
                "15m",
                "warning",
                "compliance",
                f"Campaign {{{{ $labels.campaign }}}} {what} is near its limit",
                f"""
                The {what} of campaign {{{{ $labels.campaign }}}} is above {int(ABANDON_WARN_SHARE * 100)}% of
                the campaign's configured limit (default {DEFAULT_ABANDON_LIMIT:.0%}), with {volume_text}.
                """,
                """
                Slow the campaign down before it breaches: lower the predictive dialing ratio or the
                pacing target, or switch it to progressive/preview. Watch the abandon headroom on the
                Campaigns dashboard.
                """,
                {"regime": regime},
            )
        )
        alerts.append(
            _alert(
                f"AbandonRate{suffix}OverLimit",
                f"""
                {rate}
                  > on (campaign) {limit}
                and on (campaign)
                {volume}
                """,
                "5m",
                "critical",
                "compliance",
                f"Campaign {{{{ $labels.campaign }}}} {what} is over its limit",
                f"""
                The {what} of campaign {{{{ $labels.campaign }}}} is above the campaign's configured
                limit (default {DEFAULT_ABANDON_LIMIT:.0%}), with {volume_text}. The campaign is out of
                compliance while it keeps dialing at this rate.
                """,
                """
                Stop predictive dialing for the campaign now (pause it or switch to preview/progressive),
                then tell the compliance owner. Resume predictive mode only when the headroom on the
                Campaigns dashboard is positive again.
                """,
                {"regime": regime},
            )
        )
    return alerts


def _pipeline_alerts() -> list[AlertRule]:
    return [
        _alert(
            "CallkpiPipelineStalled",
            """
            sum(increase(callcenter_pipeline_events_consumed_total[5m])) == 0
            and on ()
            sum(callcenter_agents{scope_kind="center", state=~"available|on_call|wrap_up"}) >= 1
            """,
            "5m",
            "critical",
            "pipeline",
            "callkpi consumed no dialer event for 10 minutes while agents are working",
            """
            No event was consumed from Kafka for at least 10 minutes while at least one agent is
            available, on a call or in wrap-up (by the last known live state). Wallboards and KPIs are
            frozen.
            """,
            """
            Check the workers (`callcenter_pipeline_worker_up`, their logs), Kafka reachability and
            the consumer group, and Redis (`callcenter_pipeline_redis_errors_total`). Then check that
            the dialer still produces to the input topic. Restarting a worker is safe: commits are
            offset-guarded, a replay changes nothing.
            """,
        ),
        _alert(
            "CallkpiConsumerLagGrowing",
            """
            sum by (topic) (callcenter_pipeline_consumer_lag) > 1000
            and
            sum by (topic) (deriv(callcenter_pipeline_consumer_lag[10m])) > 0
            """,
            "10m",
            "warning",
            "pipeline",
            "Consumer lag on {{ $labels.topic }} keeps growing",
            """
            More than 1000 events are waiting on topic {{ $labels.topic }} and the backlog has kept
            growing for 10 minutes: the workers process slower than the dialer produces, so the
            wallboard falls behind.
            """,
            """
            Look at the Pipeline dashboard: lag per partition (one stuck partition means one stuck
            worker), batch rate, Redis errors and event-to-store latency. Add a worker (up to the
            partition count) or fix the slow dependency (usually Redis).
            """,
        ),
        _alert(
            "CallkpiEventToStoreLatencyHigh",
            """
            center:callcenter_pipeline_event_to_store_seconds:p99_5m > 10
            and on ()
            center:callcenter_pipeline_event_to_store:increase5m >= 100
            """,
            "10m",
            "warning",
            "pipeline",
            "99th percentile of event-to-store latency is over 10 s",
            """
            The 99th percentile of the time from an event's timestamp to its commit in Redis has been
            above 10 seconds for 10 minutes (at least 100 events per 5 minutes). KPIs and wallboards
            show the past, not now.
            """,
            """
            If `callcenter_pipeline_events_late_total` rises too, the dialer delivers late (check the
            dialer and Kafka producer); otherwise check consumer lag, Redis latency and worker CPU on
            the Pipeline dashboard.
            """,
        ),
        _alert(
            "CallkpiRejectedEventsSurge",
            """
            center:callcenter_pipeline_rejected:ratio_rate10m > 0.05
            and
            center:callcenter_pipeline_rejected:ratio_rate10m
              > 2 * (center:callcenter_pipeline_rejected:ratio_rate6h offset 10m or vector(0))
            and
            center:callcenter_pipeline_events_rejected:increase10m >= 50
            """,
            "5m",
            "warning",
            "pipeline",
            "More than 5% of dialer events are rejected",
            """
            Over the last 10 minutes more than 5% of consumed events were rejected to the dead-letter
            topic (at least 50 events), more than twice the share of the 6 hours before. Rejected
            events are missing from the KPIs.
            """,
            """
            See "Rejected events by reason" on the Pipeline dashboard and read a few records of the
            dead-letter topic (`dialer.events.dlq`): a schema change or new dialer release is the usual
            cause. Fix the producer; rejected events can be replayed from the DLQ once fixed.
            """,
        ),
        _alert(
            "CallkpiWorkerDown",
            """
            callcenter_pipeline_worker_up == 0
            """,
            "5m",
            "warning",
            "pipeline",
            "callkpi worker {{ $labels.worker }} has no fresh heartbeat",
            """
            Worker {{ $labels.worker }} has not refreshed its heartbeat for 5 minutes. Its partitions
            move to the other workers after the consumer-group session times out; if it was the last
            worker, CallkpiPipelineStalled follows.
            """,
            """
            Check the worker's container/process and logs (crash loop, Kafka or Redis connection
            errors) and restart it.
            """,
        ),
        _alert(
            "CallkpiExporterDown",
            f"""
            up{{job="{SCRAPE_JOB}"}} == 0
            or
            absent(up{{job="{SCRAPE_JOB}"}})
            """,
            "2m",
            "critical",
            "exporter",
            "callkpi exporter (callkpi serve) is down or not scraped",
            f"""
            Prometheus could not scrape job "{SCRAPE_JOB}" for 2 minutes (or has no such target). All
            call-center KPI, compliance and pipeline alerts are blind meanwhile and are inhibited in
            Alertmanager.
            """,
            """
            Check the `api` service (`callkpi serve`): process, port 8077, `/metrics` answering, and
            its Redis connection. Then check Prometheus' target page for the scrape error.
            """,
        ),
    ]


def _store_alerts() -> list[AlertRule]:
    """Redis as the commit point: rollbacks, offsets ahead of the topic, refused commits, memory,
    eviction, contention (docs/operations.md: Redis rollback and restore, Redis settings, Commit
    errors, Contention between workers)."""
    return [
        _alert(
            "CallkpiRedisRolledBack",
            """
            sum(increase(callcenter_pipeline_store_rewinds_total[15m])) >= 1
            """,
            "1m",
            "warning",
            "pipeline",
            "Redis lost commits; the workers are reading the lost events again",
            """
            A worker found Redis's applied offset of a partition behind what it had read: Redis was
            restored from a snapshot, failed over to a lagging replica, or lost its last second of
            AOF in a crash. The workers re-read the lost events from Kafka, so the KPIs become exact
            again once the lag is gone.
            """,
            """
            Find out why Redis lost writes (restart, failover, restore). Watch consumer lag fall to
            0. If CallkpiRedisOffsetsLost fires too, Kafka no longer had all of the lost events.
            """,
        ),
        _alert(
            "CallkpiRedisOffsetsLost",
            """
            sum(increase(callcenter_pipeline_offsets_unreadable_total[1h])) >= 1
            """,
            "1m",
            "critical",
            "pipeline",
            "Events Redis lost could not be read again from Kafka",
            """
            After Redis lost commits, a worker tried to read the lost offsets again and Kafka had no
            records there any more (expired by retention, or compacted). Those events are missing
            from the KPIs.
            """,
            """
            Keep topic retention longer than your Redis backups are old. Recover the missing
            history from the dialer (re-send the period) or accept the gap; see "Redis rollback and
            restore" in docs/operations.md.
            """,
        ),
        _alert(
            "CallkpiStoreAheadOfTopic",
            """
            max by (topic, partition) (callcenter_pipeline_store_offset_ahead) >= 1
            """,
            "1m",
            "critical",
            "pipeline",
            "Redis claims offsets of {{ $labels.topic }}:{{ $labels.partition }} the topic does not have",
            """
            Redis's applied offset of partition {{ $labels.partition }} is {{ $value }} beyond the
            partition's end: the topic was recreated, or this Redis belongs to another cluster. With
            CALLKPI_OFFSET_AHEAD_POLICY=pause (the default) the partition is not consumed.
            """,
            """
            Check CALLKPI_REDIS_URL and CALLKPI_BOOTSTRAP point at the same deployment. If the topic
            was recreated on purpose, restart one worker with CALLKPI_OFFSET_AHEAD_POLICY=reset, then
            set it back to pause.
            """,
        ),
        _alert(
            "CallkpiCommitRefused",
            """
            sum(increase(callcenter_pipeline_commit_errors_total[15m])) >= 1
            """,
            "1m",
            "critical",
            "pipeline",
            "Redis refused a batch; the worker stopped",
            """
            Redis refused a batch before writing anything of it (a counter would overflow 64 bits, a
            key holds the wrong type, a field is not a number): retrying cannot help, so the worker
            stopped, and every worker that takes the partition stops on the same batch.
            """,
            """
            Read the worker's log line "Redis refused the batch": it names the key and field. Fix
            that key (see "Commit errors" in docs/operations.md), then restart the workers.
            """,
        ),
        _alert(
            "CallkpiRedisOutOfMemory",
            """
            callcenter_redis_memory_used_bytes / (callcenter_redis_memory_max_bytes > 0) >= 0.95
            or
            sum(increase(callcenter_pipeline_redis_oom_errors_total[15m])) >= 1
            """,
            "2m",
            "critical",
            "pipeline",
            "Redis is at its memory limit; the workers cannot commit",
            """
            Redis uses at least 95 % of maxmemory, or refused commits for want of memory. With
            maxmemory-policy noeviction the workers wait and retry (nothing is lost); KPIs freeze
            until memory is freed.
            """,
            """
            Raise maxmemory (or give Redis more memory), then look for what grew (INFO memory, the
            biggest keys). Never switch to an evicting policy: see "Redis settings" in
            docs/operations.md.
            """,
        ),
        _alert(
            "CallkpiRedisEvictionPolicy",
            """
            max(1 - callcenter_redis_noeviction) >= 1
            """,
            "1m",
            "critical",
            "pipeline",
            "Redis may evict keys (maxmemory-policy is not noeviction)",
            """
            Redis's maxmemory-policy is not noeviction: an evicted applied offset or entity state
            makes the workers count events twice. Workers refuse to start on it unless
            CALLKPI_ALLOW_REDIS_EVICTION=1.
            """,
            """
            CONFIG SET maxmemory-policy noeviction and put it in redis.conf (see "Redis settings" in
            docs/operations.md). If keys were evicted, rebuild the store from Kafka.
            """,
        ),
        _alert(
            "CallkpiCommitConflictsHigh",
            """
            sum(rate(callcenter_pipeline_commit_conflicts_total[10m]))
              / sum(rate(callcenter_pipeline_batches_total[10m])) > 0.5
            and
            sum(increase(callcenter_pipeline_batches_total[10m])) >= 100
            """,
            "10m",
            "warning",
            "pipeline",
            "Workers redo more than half of their batches because of conflicts",
            """
            More than one batch commit in two had to be prepared again because another worker
            changed a call or agent state it read (at least 100 batches in 10 minutes). Nothing is
            wrong with the numbers, but throughput drops.
            """,
            """
            See "Contention between workers" in docs/operations.md: fewer workers than partitions,
            smaller CALLKPI_BATCH_MAX, or dialer message keys by agent reduce it.
            """,
        ),
        _alert(
            "CallkpiStreamClientsRefused",
            """
            sum(increase(callcenter_api_stream_refused_total[10m])) >= 1
            """,
            "1m",
            "warning",
            "pipeline",
            "Wallboards are being refused their live stream",
            """
            A serve process turned wallboard streams away in the last 10 minutes: it already holds
            api.max_stream_clients open streams. Those boards fall back to a poll every 10 seconds,
            so their numbers lag by up to 10 seconds.
            """,
            """
            See docs/operations.md#callkpistreamclientsrefused: run another serve process behind the
            load balancer, or raise api.max_stream_clients if serve's CPU allows.
            """,
        ),
    ]


def alert_groups() -> list[RuleGroup[AlertRule]]:
    """The alerting-rule groups of rules.yml, after the recording rules they read."""
    return [
        {"name": "callkpi.alerts.kpi", "rules": _kpi_alerts()},
        {"name": "callkpi.alerts.compliance", "rules": _compliance_alerts()},
        {"name": "callkpi.alerts.pipeline", "rules": _pipeline_alerts() + _store_alerts()},
    ]
