"""`callkpi rebuild`: recompute the store from the input topic into a fresh prefix or Redis.

For a changed KPI definition or configuration, or a lost Redis. The switch-over with live
traffic is in docs/operations.md ("Rebuild from Kafka"); the exactness argument in
stream/processing/rebuild.py.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import TYPE_CHECKING, TextIO

from stream.settings import Settings

if TYPE_CHECKING:
    from stream.processing.rebuild import Progress

STATUS_EVERY_S = 5.0
"""How often a following rebuild reports its lag and whether it is safe to switch."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rebuild", help="recompute the store from the input topic's retained events",
        description="Recompute every KPI counter, entity state and rejection count from the "
                    "events the input topic still retains, with the worker's own pipeline, into "
                    "a fresh key prefix (--prefix) and/or a fresh Redis (--redis-url); then "
                    "switch the workers and serve over (docs/operations.md, 'Rebuild from "
                    "Kafka'). Kafka and the business configuration come from CALLKPI_* as for "
                    "the worker: give the new CALLKPI_CONFIG to rebuild under a changed KPI "
                    "configuration.")
    p.add_argument("--prefix", default=None,
                   help="key prefix of the rebuilt store (default: CALLKPI_KEY_PREFIX)")
    p.add_argument("--redis-url", default=None,
                   help="Redis of the rebuilt store (default: CALLKPI_REDIS_URL)")
    p.add_argument("--follow", action="store_true",
                   help="after the retained events, keep applying new ones until Ctrl-C/SIGTERM "
                        "(for the switch-over with live traffic)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted rebuild in a target that is not empty")
    p.add_argument("--allow-truncated", action="store_true",
                   help="rebuild although the topic no longer retains its oldest events")
    p.add_argument("--dead-letter", action="store_true",
                   help="send rejected events to the dead-letter topic again (default: no, the "
                        "live workers did; the rejection counters are rebuilt either way)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from stream.cli.commands import UsageError, check_native_build, load_service_config, thresholds_of, timezone_of
    check_native_build()  # the rebuild runs the same pipeline as the worker
    live = Settings.from_env()
    target = Settings.from_env(key_prefix=args.prefix, redis_url=args.redis_url)
    is_live = (target.redis_url, target.key_prefix) == (live.redis_url, live.key_prefix)
    if not target.key_prefix:
        raise UsageError("the rebuilt store needs a non-empty key prefix")
    config = load_service_config(target)
    # day buckets are local days of the center's zone: cut them as the workers do (run_worker)
    target = dataclasses.replace(target, timezone=str(timezone_of(target, config)))
    thresholds = thresholds_of(config, target)
    bar = ProgressBar(sys.stderr, quiet=args.quiet)
    try:
        return asyncio.run(_rebuild(args, target, thresholds, is_live, bar))
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        from stream.processing.rebuild import RebuildError
        if isinstance(exc, RebuildError):
            bar.close()
            print(f"callkpi rebuild: {exc}", file=sys.stderr)
            return 1
        raise


async def _rebuild(args: argparse.Namespace, target: Settings, thresholds: object,
                   is_live: bool, bar: ProgressBar) -> int:
    from stream.cli.commands import UsageError
    from stream.processing.offload import DeadLetterProducer
    from stream.processing.rebuild import Rebuild, covers, group_committed, no_dead_letter, target_is_empty
    from stream.store.redis_store import Store

    store = Store(target.redis_url, target.key_prefix, target.zone)
    try:
        where = f"{target.redis_url} prefix {target.key_prefix!r}"
        if not args.resume and not await target_is_empty(store):
            raise UsageError(
                f"{where} is not empty" + (" (it is the live store)" if is_live else "") +
                ": rebuild into a fresh prefix (--prefix) or Redis (--redis-url), or give "
                "--resume to continue an interrupted rebuild there")
        rebuild = Rebuild(target, thresholds, store, follow=args.follow,  # type: ignore[arg-type]
                          allow_truncated=args.allow_truncated,
                          dead_letter=DeadLetterProducer(target) if args.dead_letter
                          else no_dead_letter)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rebuild.stop.set)
        said: set[str] = set()
        checked_at = 0.0

        def say(key: str, text: str) -> None:
            if key not in said:
                said.add(key)
                bar.close()
                print(text, flush=True)

        async def following(p: Progress) -> None:
            """Every few seconds: the lag, and whether the store covers the group's committed
            offsets (then workers started on it miss nothing: docs/operations.md)."""
            nonlocal checked_at
            if time.monotonic() - checked_at < STATUS_EVERY_S:
                return
            checked_at = time.monotonic()
            committed = await group_committed(target)
            applied, _, _ = await store.load(sorted(committed or {}), ())
            if committed is None:
                state = "the consumer group's committed offsets are unknown"
            elif covers(applied, committed):
                state = (f"ready to switch: it holds every event the consumer group "
                         f"{target.app_id!r} has committed")
            else:
                behind = {tp: o for tp, o in committed.items() if applied.get(tp, -1) < o - 1}
                state = f"not ready: behind the group's committed offsets {behind}"
            bar.close()
            print(f"following: lag {p.lag:,} records; {state}", flush=True)

        def on_progress(p: Progress) -> None:
            bar.show(p)
            if p.planned_done:
                say("caught-up", f"caught up: {p.read:,} records applied to {where}" +
                    ("; following new events until Ctrl-C" if args.follow else ""))
                if args.follow:
                    loop.create_task(following(p))

        rebuild.on_progress = on_progress
        print(f"rebuilding {target.input_topic} at {target.bootstrap} into {where}", flush=True)
        final = await rebuild.run()
        bar.close()
        print(f"rebuilt {final.read:,} records into {where} "
              f"({final.rate:,.0f} records/s); plan: " +
              ", ".join(f"{p.tp} {p.start}..{p.end}" for p in rebuild.plan), flush=True)
        return 0
    finally:
        await store.close()


class ProgressBar:
    """Records read / total (the partitions' high watermarks when the rebuild started). On a
    terminal it redraws one line; into a file or pipe it writes a line every 10 %."""

    def __init__(self, out: TextIO, quiet: bool = False, width: int = 30) -> None:
        self.out, self.quiet, self.width = out, quiet, width
        self.tty = out.isatty()
        self._shown_tenth = -1
        self._open = False

    def show(self, p: Progress) -> None:
        read, total, lag, rate = p.read, p.total, p.lag, p.rate
        if self.quiet:
            return
        share = read / total if total else 1.0
        filled = int(self.width * min(share, 1.0))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {read:,}/{total:,} records "
                f"{min(share, 1.0):.0%}  {rate:,.0f}/s  lag {lag:,}")
        if self.tty:
            self.out.write("\r" + line)
            self._open = True
        elif int(share * 10) > self._shown_tenth:
            self._shown_tenth = int(share * 10)
            self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self._open:
            self.out.write("\n")
            self.out.flush()
            self._open = False
