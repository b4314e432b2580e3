"""`callkpi ingest`: the HTTP receiver (aiohttp) for sources that push.

- POST /ingest/v1/events: v1 events as NDJSON or one JSON array; each line is validated and
  answered (accepted, or rejected with its reason; rejected lines also go to the adapter DLQ).
- POST /ingest/twilio/voice, /ingest/twilio/taskrouter: Twilio's form posts, checked with
  `X-Twilio-Signature` (the twilio package's RequestValidator and the account's auth token).
- POST /ingest/amazon-connect: EventBridge contact events (API destination) and agent event
  stream records, one JSON object or an array.
Every 2xx is sent only after Kafka acknowledged the request's events (acks=all): a sender
that gets no 2xx retries, and the deterministic event ids make the retry a duplicate.
The v1 and Connect routes need `Authorization: Bearer <CALLKPI_API_TOKEN>` when a token is set
(EventBridge connections send it as an API-key header); Twilio's routes need the signature.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from aiohttp import web

from stream.adapters.connect import ConnectMapper
from stream.adapters.core import BadRecord, Emitted
from stream.adapters.io.badinput import BadInput
from stream.adapters.io.metrics import AdapterMetrics
from stream.adapters.twilio import TaskRouter, TwilioVoice
from stream.contract import MAX_MESSAGE_BYTES, Rejection, validate, validate_dict
from stream.kpi.windows import MAX_EVENT_AGE_MS

log = logging.getLogger("callkpi.ingest")
MAX_BODY = 16 * 1024 * 1024


class LineResult(TypedDict):
    """The answer for one line of POST /ingest/v1/events."""

    line: int
    accepted: bool
    event_id: str | None
    reason: NotRequired[str]
    message: NotRequired[str]


class RecordResult(TypedDict):
    """The answer for one record of POST /ingest/amazon-connect."""

    record: int
    events: int
    reason: NotRequired[str]
    message: NotRequired[str]


class KafkaOut:
    """kafka-python producer (acks=all); `send_all` waits for every ack off the event loop."""

    def __init__(self, bootstrap: str, topic: str, dlq_topic: str) -> None:
        from kafka import KafkaProducer
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                      enable_idempotence=False, retries=5,
                                      max_request_size=1 << 20)
        self.topic, self.dlq_topic = topic, dlq_topic

    async def send_all(self, events: list[tuple[bytes | None, bytes]], dlq: list[bytes]) -> None:
        futures = [self.producer.send(self.topic, key=k, value=v) for k, v in events]
        futures += [self.producer.send(self.dlq_topic, value=v) for v in dlq]
        if futures:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: [f.get(timeout=30) for f in futures])

    def close(self) -> None:
        self.producer.close(timeout=10)  # a broker that is gone must not hold the exit


@dataclass
class IngestContext:
    out: Any
    token: str
    twilio_token: str
    public_url: str
    voice: TwilioVoice
    taskrouter: TaskRouter
    connect: ConnectMapper
    metrics: AdapterMetrics
    bad: BadInput
    amd_timeout_s: float = 30.0
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _bearer_ok(ctx: IngestContext, request: web.Request) -> bool:
    if not ctx.token:
        return True
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
    return hmac.compare_digest(given.encode(), ctx.token.encode())


def _encode(e: Emitted) -> tuple[bytes, bytes]:
    return e.key.encode(), json.dumps(e.event, separators=(",", ":")).encode()


async def _publish(ctx: IngestContext, events: list[Emitted], dlq: list[bytes]) -> web.Response | None:
    """Validate the mapped events, send them, wait for the acks; None when all went well."""
    now = ctx.clock_ms()
    good = []
    for e in events:
        checked = validate_dict(e.event, now_ms=now, max_age_ms=MAX_EVENT_AGE_MS)
        if isinstance(checked, Rejection):
            raw = json.dumps(e.event).encode()
            reason = f"invalid_event:{checked.reason}"
            ctx.metrics.bad_input(reason)
            dlq.append(ctx.bad.record(reason, checked.message, raw, None))
            continue
        good.append(_encode(e))
        ctx.metrics.event(e.event["type"])
    try:
        await ctx.out.send_all(good, dlq)
    except Exception as exc:  # the broker refused or timed out: the sender must retry
        log.warning("ingest: Kafka did not acknowledge %d events: %r", len(good), exc)
        return web.json_response({"error": "the events were not stored (Kafka); retry"},
                                 status=503)
    return None


def _bad_request(ctx: IngestContext, e: BadRecord, raw: bytes, where: str) -> bytes:
    ctx.metrics.record("bad")
    ctx.metrics.bad_input(e.reason)
    return ctx.bad.record(e.reason, e.message, raw, {"route": where})


async def events_route(request: web.Request) -> web.Response:
    ctx: IngestContext = request.app["ctx"]
    if not _bearer_ok(ctx, request):
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    body = await request.read()
    lines: list[bytes]
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            items = json.loads(body)
        except ValueError as exc:
            return web.json_response({"error": f"not a JSON array: {exc}"}, status=400)
        lines = [json.dumps(x).encode() for x in items]
    else:
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
    now = ctx.clock_ms()
    results: list[LineResult] = []
    good: list[tuple[bytes | None, bytes]] = []
    dlq: list[bytes] = []
    for i, raw in enumerate(lines, 1):
        checked = validate(raw, now_ms=now, max_age_ms=MAX_EVENT_AGE_MS)
        if isinstance(checked, Rejection):
            ctx.metrics.record("bad")
            ctx.metrics.bad_input(checked.reason)
            dlq.append(ctx.bad.record(checked.reason, checked.message, raw, {"line": i}))
            results.append({"line": i, "accepted": False, "event_id": checked.event_id,
                            "reason": checked.reason, "message": checked.message})
            continue
        ctx.metrics.record("mapped")
        ctx.metrics.event(checked.type)
        key = checked.call_id or checked.agent_id
        good.append((key.encode() if key else None, raw))
        results.append({"line": i, "accepted": True, "event_id": checked.event_id})
    try:
        await ctx.out.send_all(good, dlq)
    except Exception as exc:
        log.warning("ingest: Kafka did not acknowledge %d events: %r", len(good), exc)
        return web.json_response({"error": "the events were not stored (Kafka); retry"},
                                 status=503)
    accepted = sum(r["accepted"] for r in results)
    status = 200 if accepted or not results else 400
    return web.json_response({"accepted": accepted, "rejected": len(results) - accepted,
                              "results": results}, status=status)


def _twilio_signature_ok(ctx: IngestContext, request: web.Request, params: dict[str, str]) -> bool:
    from twilio.request_validator import RequestValidator
    if not ctx.twilio_token:
        return False
    base = ctx.public_url.rstrip("/") if ctx.public_url else f"{request.scheme}://{request.host}"
    url = base + request.path_qs
    return RequestValidator(ctx.twilio_token).validate(
        url, params, request.headers.get("X-Twilio-Signature", ""))


async def _twilio(request: web.Request, handle: Callable[[IngestContext, dict[str, str]],
                                                        list[Emitted]]) -> web.Response:
    ctx: IngestContext = request.app["ctx"]
    post = await request.post()
    params = {k: str(v) for k, v in post.items()}
    if not _twilio_signature_ok(ctx, request, params):
        ctx.metrics.record("bad")
        ctx.metrics.bad_input("bad_signature")
        return web.json_response({"error": "X-Twilio-Signature does not match"}, status=403)
    raw = json.dumps(params, sort_keys=True).encode()
    dlq: list[bytes] = []
    async with ctx.lock:  # the mappers' pairing state is shared by concurrent callbacks
        try:
            events = handle(ctx, params)
            ctx.metrics.record("mapped" if events else "ignored")
        except BadRecord as e:
            events = []
            dlq.append(_bad_request(ctx, e, raw, request.path))
    failed = await _publish(ctx, events, dlq)
    if failed is not None:
        return failed
    if dlq:
        return web.json_response({"error": "unreadable callback (dead-lettered)"}, status=400)
    return web.Response(status=204)


async def twilio_voice_route(request: web.Request) -> web.Response:
    query = dict(request.query)

    def handle(ctx: IngestContext, params: dict[str, str]) -> list[Emitted]:
        events = ctx.voice.status(params, query, ctx.clock_ms())
        sid = params.get("CallSid", "")
        if (query.get("amd") == "async" and params.get("CallStatus") == "in-progress"
                and not events):
            asyncio.get_running_loop().call_later(
                ctx.amd_timeout_s, lambda: asyncio.ensure_future(_amd_timeout(ctx, sid)))
        return events
    return await _twilio(request, handle)


async def _amd_timeout(ctx: IngestContext, sid: str) -> None:
    async with ctx.lock:
        if sid not in ctx.voice.answered:
            return
        events = ctx.voice.amd_timeout(sid)
    if events:
        await _publish(ctx, events, [])


async def twilio_taskrouter_route(request: web.Request) -> web.Response:
    return await _twilio(request, lambda ctx, params: ctx.taskrouter.event(params, ctx.clock_ms()))


async def connect_route(request: web.Request) -> web.Response:
    ctx: IngestContext = request.app["ctx"]
    if not _bearer_ok(ctx, request):
        return web.json_response({"error": "missing or wrong bearer token"}, status=401)
    body = await request.read()
    try:
        data = json.loads(body)
    except ValueError as exc:
        ctx.metrics.bad_input("malformed_json")
        await ctx.out.send_all([], [ctx.bad.record("malformed_json", str(exc), body, None)])
        return web.json_response({"error": f"not JSON: {exc}"}, status=400)
    records = data if isinstance(data, list) else [data]
    events: list[Emitted] = []
    dlq: list[bytes] = []
    results: list[RecordResult] = []
    for i, r in enumerate(records):
        try:
            if not isinstance(r, dict):
                raise BadRecord("not_an_object", "each record must be a JSON object")
            mapped = ctx.connect.record(r)
            events += mapped
            ctx.metrics.record("mapped" if mapped else "ignored")
            results.append({"record": i, "events": len(mapped)})
        except BadRecord as e:
            dlq.append(_bad_request(ctx, e, json.dumps(r).encode(), request.path))
            results.append({"record": i, "events": 0, "reason": e.reason, "message": e.message})
    failed = await _publish(ctx, events, dlq)
    if failed is not None:
        return failed
    return web.json_response({"results": results}, status=200 if len(dlq) < len(records) else 400)


def create_ingest_app(ctx: IngestContext) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app["ctx"] = ctx
    app.router.add_post("/ingest/v1/events", events_route)
    app.router.add_post("/ingest/twilio/voice", twilio_voice_route)
    app.router.add_post("/ingest/twilio/taskrouter", twilio_taskrouter_route)
    app.router.add_post("/ingest/amazon-connect", connect_route)

    async def metrics(request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return web.Response(body=generate_latest(ctx.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
    app.router.add_get("/metrics", metrics)
    return app


__all__ = ["IngestContext", "KafkaOut", "create_ingest_app", "MAX_MESSAGE_BYTES"]
