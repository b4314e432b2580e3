"""Scheduled reports (`[[reports]]`): `callkpi serve` writes each finished local period's report
once, whatever the restarts and however many serve processes run.

Exactly once: a period is claimed with `SET <prefix>report:<name>:<label> claimed NX PX
<claim>`; the one process that wins builds and writes the file (to a temporary name, then
renamed), then marks the period `done` for 400 days. A process that dies between the claim and
the file leaves a claim that expires after `CLAIM_MS`, and the next check builds it then. Only the
newest finished period is produced: a serve that was down for three days writes yesterday's
daily report, not the two before it.

The webhook (a chat channel's incoming webhook) gets a short summary and where the file is. The
delivery is written to the store with the `done` mark (`report-hook:<name>:<label>`), so a serve
that stops before delivering leaves it to the next; a failed attempt is retried with
exponential backoff (1, 2, 4, 8, 16 s, then given up and counted), in its own task: it never
blocks serve or the next report. One process at a time attempts a delivery (a lease), so a
receiver gets each report once unless it fails after taking the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from stream.kpi.config_file import ReportSchedule
from stream.readers.api import ApiContext
from stream.readers.reports import Period, PeriodSpan, build_report, last_finished, summary_of
from stream.readers.reports.render import render

log = logging.getLogger("callkpi.reports")
CLAIM_MS = 15 * 60 * 1000
"""How long a claim on a period lasts before another process may build it (the builder died)."""
DONE_MS = 400 * 24 * 3600 * 1000
WEBHOOK_ATTEMPTS = 6
WEBHOOK_BACKOFF_S = 1.0
"""The first retry's delay; each next one doubles (1, 2, 4, 8, 16 s)."""
WEBHOOK_TIMEOUT_S = 10.0


def file_name(schedule: ReportSchedule, span: PeriodSpan) -> str:
    return f"{schedule.name}-{span.label}.{schedule.format}"


class Scheduler:
    """The `[[reports]]` of one serve process: one checking task per schedule."""

    def __init__(self, ctx: ApiContext, schedules: tuple[ReportSchedule, ...],
                 backoff_s: float = WEBHOOK_BACKOFF_S) -> None:
        self.ctx = ctx
        self.schedules = schedules
        self.backoff_s = backoff_s
        self.counts: Counter[str] = Counter()
        """produced, failed, webhook_delivered, webhook_retries, webhook_failed (per process)."""
        self.last: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivering: set[str] = set()

    def marker(self, schedule: ReportSchedule, span: PeriodSpan) -> str:
        return self.ctx.store.layout.key(f"report:{schedule.name}:{span.label}")

    def start(self) -> None:
        for s in self.schedules:
            self._spawn(self._loop(s))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _loop(self, schedule: ReportSchedule) -> None:
        while True:
            try:
                await self.check(schedule)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store down, a full disk: counted, tried again next check
                self.counts["failed"] += 1
                log.exception("scheduled report %s failed", schedule.name)
            await asyncio.sleep(schedule.check_seconds)

    async def check(self, schedule: ReportSchedule) -> Path | None:
        """Produce the newest finished period's report if no process has (its path if we did),
        then try the webhook deliveries that are due."""
        path = await self.produce(schedule)
        if schedule.webhook and schedule.name not in self._delivering:
            self._delivering.add(schedule.name)
            self._spawn(self._deliver_due(schedule))
        return path

    async def produce(self, schedule: ReportSchedule) -> Path | None:
        span = last_finished(Period(schedule.period), self.ctx.now_ms(), self.ctx.tz)
        key = self.marker(schedule, span)
        redis = self.ctx.store.redis
        if not await redis.set(key, f"claimed:{os.getpid()}", nx=True, px=CLAIM_MS):
            return None
        try:
            report = await build_report(self.ctx, span, list(schedule.scopes))
            body = render(report, schedule.format)
            directory = Path(schedule.directory)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / file_name(schedule, span)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
        except BaseException:
            await redis.delete(key)  # not produced: the next check tries again
            raise
        pipe = redis.pipeline(transaction=True)
        pipe.set(key, f"done:{path}", px=DONE_MS)
        if schedule.webhook:  # in the store, not in this process: a restart still delivers it
            pipe.set(self.hook_key(schedule, span.label),
                     json.dumps({"payload": self.payload(schedule, span, report, path), "attempts": 0,
                                 "due_ms": 0}), px=DONE_MS)
        await pipe.execute()
        self.counts["produced"] += 1
        self.last[schedule.name] = {"label": span.label, "file": str(path)}
        log.info("scheduled report %s: %s", schedule.name, path)
        return path

    def hook_key(self, schedule: ReportSchedule, label: str) -> str:
        return self.ctx.store.layout.key(f"report-hook:{schedule.name}:{label}")

    @staticmethod
    def payload(schedule: ReportSchedule, span: PeriodSpan, report: dict[str, Any], path: Path
                ) -> dict[str, Any]:
        """What the webhook gets: Slack/Mattermost-style `text`, plus the fields."""
        return {"text": f"{summary_of(report)}\n{path}", "report": schedule.name,
                "period": span.period.value, "label": span.label, "file": str(path)}

    async def _deliver_due(self, schedule: ReportSchedule) -> None:
        try:
            redis = self.ctx.store.redis
            async for key in redis.scan_iter(match=self.hook_key(schedule, "*"), count=100):
                # one process at a time per delivery: a lease as long as one attempt may take
                lease = f"{key}:lease"
                if not await redis.set(lease, str(os.getpid()), nx=True, px=int(WEBHOOK_TIMEOUT_S * 2000)):
                    continue
                try:
                    await self._attempt(schedule, key)
                finally:
                    await redis.delete(lease)
        except Exception:  # the store down: tried again at the next check
            log.exception("report %s webhook deliveries", schedule.name)
        finally:
            self._delivering.discard(schedule.name)

    async def _attempt(self, schedule: ReportSchedule, key: str) -> None:
        """One delivery attempt if it is due; on failure the next is due after a doubled delay."""
        redis = self.ctx.store.redis
        raw = await redis.get(key)
        if raw is None:
            return
        entry = json.loads(raw)
        now = self.ctx.now_ms()
        if entry["due_ms"] > now:
            return
        assert schedule.webhook is not None
        problem = await post(schedule.webhook, entry["payload"])
        if problem is None:
            await redis.delete(key)
            self.counts["webhook_delivered"] += 1
            return
        entry["attempts"] += 1
        if entry["attempts"] >= WEBHOOK_ATTEMPTS:
            await redis.delete(key)
            self.counts["webhook_failed"] += 1
            log.error("report %s webhook failed %d times (%s); the file is %s", schedule.name,
                      entry["attempts"], problem, entry["payload"]["file"])
            return
        delay = self.backoff_s * 2 ** (entry["attempts"] - 1)
        entry["due_ms"] = now + int(delay * 1000)
        await redis.set(key, json.dumps(entry), xx=True, keepttl=True)
        self.counts["webhook_retries"] += 1
        log.warning("report %s webhook: %s; retrying in %.0f s", schedule.name, problem, delay)


async def post(url: str, payload: dict[str, Any]) -> str | None:
    """POST the JSON payload; None when the receiver took it (2xx), else what went wrong."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)) as session, \
                session.post(url, data=json.dumps(payload), headers={"Content-Type": "application/json"}) as resp:
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return str(exc) or type(exc).__name__
