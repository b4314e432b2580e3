"""Layer 1: dialer event contract v1 (parse + validate one raw Kafka message). Pure: the
standard library and orjson (the fast path's JSON decoder) only.

Everything other layers may use is exported here; see docs/event-contract.md for the rules.
"""

from stream.contract.events import (
    ABANDON_REASONS,
    AGENT_STATES,
    AGENT_TYPES,
    ANSWERED_BY,
    CALL_TYPES,
    CONTRACT_VERSION,
    DIAL_MODES,
    DISPOSITIONS,
    EVENT_TYPES,
    HANGUP_BY,
    INTENTS,
    MAX_CODE_CHARS,
    MAX_DURATION_MS,
    MAX_FUTURE_MS,
    MAX_MESSAGE_BYTES,
    MAX_ORDER_VALUE,
    MAX_SAFE_NUMBER,
    MAX_STRING_CHARS,
    REJECTION_REASONS,
    UNANSWERED_REASONS,
    Event,
    Rejection,
    ValidationError,
)
from stream.contract.fast import validate
from stream.contract.timestamps import format_ts, parse_ts
from stream.contract.validate import validate_dict, validate_reference

SCHEMA_FILE = "dialer-event-v1.schema.json"
"""Name of the JSON Schema (draft 2020-12) shipped next to this module."""

__all__ = [
    "ABANDON_REASONS",
    "AGENT_STATES",
    "AGENT_TYPES",
    "ANSWERED_BY",
    "CALL_TYPES",
    "CONTRACT_VERSION",
    "DIAL_MODES",
    "DISPOSITIONS",
    "EVENT_TYPES",
    "HANGUP_BY",
    "INTENTS",
    "MAX_CODE_CHARS",
    "MAX_DURATION_MS",
    "MAX_FUTURE_MS",
    "MAX_MESSAGE_BYTES",
    "MAX_ORDER_VALUE",
    "MAX_SAFE_NUMBER",
    "MAX_STRING_CHARS",
    "REJECTION_REASONS",
    "SCHEMA_FILE",
    "UNANSWERED_REASONS",
    "Event",
    "Rejection",
    "ValidationError",
    "format_ts",
    "parse_ts",
    "validate",
    "validate_dict",
    "validate_reference",
]
