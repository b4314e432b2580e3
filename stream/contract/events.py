"""The vocabulary of dialer event contract v1 and the two results of validating a message.

Kept free of any parsing logic so that every layer (KPI arithmetic, store, simulator) can import
the enums and the `Event` shape without pulling in the validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Ordered tuples are the source of truth (error messages list values in contract order);
# the frozensets are the public, O(1)-membership view of the same values.
CALL_TYPE_ORDER: tuple[str, ...] = (
    "call.dialed",
    "call.offered",  # 1.1: an inbound (or blended-queue) call entered a queue
    "call.answered",
    "call.unanswered",
    "call.connected",
    "call.abandoned",
    "call.ended",
    "call.wrapup",
    "call.survey",
    "call.complaint",
    "call.qa",
    "call.quality",
    "call.callback",
)
AGENT_TYPE_ORDER: tuple[str, ...] = ("agent.state",)
DISPOSITION_ORDER: tuple[str, ...] = (
    "sale",
    "appointment",
    "qualified_lead",
    "callback_requested",
    "not_interested",
    "refused",
    "dnc",
    "wrong_party",
    "answering_machine",
    "no_decision",
    "other",
)
ANSWERED_BY_ORDER: tuple[str, ...] = ("human", "machine", "fax", "unknown")
UNANSWERED_REASON_ORDER: tuple[str, ...] = (
    "no_answer",
    "busy",
    "invalid_number",
    "rejected",
    "congestion",
    "canceled",
    "error",
)
ABANDON_REASON_ORDER: tuple[str, ...] = ("no_agent", "customer_hangup")
HANGUP_BY_ORDER: tuple[str, ...] = ("customer", "agent", "system")
AGENT_STATE_ORDER: tuple[str, ...] = ("logged_out", "available", "on_call", "wrap_up", "paused")
DIAL_MODE_ORDER: tuple[str, ...] = ("predictive", "progressive", "preview", "manual")
INTENT_ORDER: tuple[str, ...] = ("high", "medium", "low", "none")

CALL_TYPES: frozenset[str] = frozenset(CALL_TYPE_ORDER)
AGENT_TYPES: frozenset[str] = frozenset(AGENT_TYPE_ORDER)
EVENT_TYPES: frozenset[str] = CALL_TYPES | AGENT_TYPES
DISPOSITIONS: frozenset[str] = frozenset(DISPOSITION_ORDER)
ANSWERED_BY: frozenset[str] = frozenset(ANSWERED_BY_ORDER)
UNANSWERED_REASONS: frozenset[str] = frozenset(UNANSWERED_REASON_ORDER)
ABANDON_REASONS: frozenset[str] = frozenset(ABANDON_REASON_ORDER)
HANGUP_BY: frozenset[str] = frozenset(HANGUP_BY_ORDER)
AGENT_STATES: frozenset[str] = frozenset(AGENT_STATE_ORDER)
DIAL_MODES: frozenset[str] = frozenset(DIAL_MODE_ORDER)
INTENTS: frozenset[str] = frozenset(INTENT_ORDER)

REJECTION_REASONS: tuple[str, ...] = (
    "oversize",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "invalid_field",
    "unknown_type",
    "unknown_disposition",
    "out_of_range",
    "future_timestamp",
    "too_old",
    "unsupported_version",
)

CONTRACT_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_FUTURE_MS = 10 * 60 * 1000
MAX_STRING_CHARS = 128
MAX_CODE_CHARS = 64
"""Length limit of the 1.1 codes: `call.wrapup.disposition_code`, `call.dialed.variant`."""
# Largest integer a JSON number, a Lua double and a Redis int64 all hold exactly.
MAX_SAFE_NUMBER = 2**53 - 1
MAX_DURATION_MS = 7 * 24 * 3_600_000
"""Upper bound of every `*_ms` field (7 days, contract 1.1): no real ring, wait, talk, hold or
wrap-up lasts longer, and with it no plausible volume of valid events can overflow a stored
int64 counter (docs/event-contract.md, "Upper bounds")."""
MAX_ORDER_VALUE = 10**9
"""Upper bound of `order_value` (contract 1.1)."""

# Keys of `Event.to_dict()` that are attributes of `Event`, not entries of `Event.fields`.
_COMMON_KEYS = ("event_id", "type", "ts", "campaign_id", "call_id", "agent_id")


@dataclass(frozen=True, slots=True)
class Event:
    """One valid, normalized v1 event: what every layer above the contract works with.

    `fields` holds the type-specific extra fields (trimmed, defaults applied, unknown ones dropped);
    an optional field that was absent is absent, never None. It is a plain dict for speed and
    picklability: treat it as read-only.
    """

    event_id: str
    type: str
    ts_ms: int
    campaign_id: str | None
    call_id: str | None
    agent_id: str | None
    fields: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-able form (ts as int epoch ms, None values omitted); inverse of from_dict."""
        d: dict[str, Any] = {"event_id": self.event_id, "type": self.type, "ts": self.ts_ms}
        if self.campaign_id is not None:
            d["campaign_id"] = self.campaign_id
        if self.call_id is not None:
            d["call_id"] = self.call_id
        if self.agent_id is not None:
            d["agent_id"] = self.agent_id
        for k, v in self.fields.items():
            if v is not None:
                d[k] = v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        """Rebuild an Event from `to_dict()` output. Trusted input: no validation.

        A string `ts` (RFC 3339) is tolerated so hand-written fixtures stay readable.
        """
        ts = d["ts"]
        if not isinstance(ts, int):
            from stream.contract.timestamps import parse_ts  # local: keeps this module leaf-only

            ts = parse_ts(ts)
        fields = {k: v for k, v in d.items() if k not in _COMMON_KEYS and k != "v" and v is not None}
        return cls(
            event_id=d["event_id"],
            type=d["type"],
            ts_ms=ts,
            campaign_id=d.get("campaign_id"),
            call_id=d.get("call_id"),
            agent_id=d.get("agent_id"),
            fields=fields,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message was refused: goes to the dead-letter topic and the rejection counter."""

    reason: str
    message: str
    event_id: str | None = None
    event_type: str | None = None


class ValidationError(Exception):
    """Raised inside the validator at the first broken rule; turned into a `Rejection`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
