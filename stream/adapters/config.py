"""The adapter configuration file (TOML): maps from the source's names to the service's, the
source's time zone, defaults for what the source cannot know, and exclusions.

Errors name the file, the line and the key (`adapter.toml:7: campaigns.map.sales: ...`), with the
service configuration's machinery (`stream.kpi.config_file`, pure). Unknown keys are errors.
Every option is documented in docs/adapters.md; `examples/adapter.toml` shows them all.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream.contract import ABANDON_REASONS, DISPOSITIONS, UNANSWERED_REASONS
from stream.kpi.config_file import ConfigError, _Checker, read_config_text

_EMPTY: Mapping[str, str] = MappingProxyType({})
ANSWERED_BY_DEFAULTS = ("unknown", "human")
DIRECTIONS = ("inbound", "outbound", "internal")


@dataclass(frozen=True, slots=True)
class DirectionRule:
    """`match` is a regular expression over one CDR column; the first matching rule decides."""

    column: str
    pattern: re.Pattern[str]
    direction: str


DEFAULT_DIRECTION_RULES = (
    # stock FreePBX: the outbound routes' contexts, the queue and DID contexts, extension to
    # extension; any other call is internal when its destination is an extension (at most
    # `internal_max_digits` digits), else `default_direction`
    DirectionRule("dcontext", re.compile(r"^outbound-allroutes$|^outrt-"), "outbound"),
    DirectionRule("dcontext", re.compile(r"^ext-queues$|^from-trunk|^from-pstn|^from-did|^ext-did"),
                  "inbound"),
    DirectionRule("dcontext", re.compile(r"^ext-local$"), "internal"),
)


@dataclass(frozen=True, slots=True)
class CdrConfig:
    columns: tuple[str, ...] = ()
    """Master.csv's optional columns after `amaflags`, in order (uniqueid, userfield, peeraccount,
    linkedid, sequence), as cdr.conf's loguniqueid/loguserfield/newcdrcolumns write them."""
    direction_rules: tuple[DirectionRule, ...] = DEFAULT_DIRECTION_RULES
    default_direction: str = "outbound"
    campaign_column: str = "accountcode"
    exclude_lastapp: tuple[str, ...] = ("ConfBridge", "MeetMe")
    internal_max_digits: int = 5
    """A destination of at most this many digits is an extension: the call is internal."""
    exclude_local_channels: bool = True
    agent_channel: re.Pattern[str] = re.compile(r"^(?:PJSIP|SIP|IAX2|DAHDI)/(\d{2,6})-")
    """A caller channel that is an extension: the call was dialled by that agent (manual)."""


@dataclass(frozen=True, slots=True)
class QueueLogConfig:
    outbound_queues: frozenset[str] = frozenset()
    """Queues fed by a predictive dialer: ENTERQUEUE is an answered outbound call, not an offer."""
    exit_with_key: str = "customer_hangup"
    chanunavail: str = "error"
    members_are_logins: bool = False
    """ADDMEMBER/REMOVEMEMBER log agents in and out (for systems without AGENTLOGIN lines)."""
    pbxware_agent_column: str = "agent"
    """The PBXware export's column that holds the agent (interface or member name)."""


RECORD_COLUMNS = ("call_id", "campaign", "agent", "team", "direction", "dialed_at", "queued_at",
                  "answered_at", "connected_at", "ended_at", "wrapup_end_at", "ring_seconds",
                  "wait_seconds", "talk_seconds", "hold_seconds", "wrapup_seconds", "outcome",
                  "disposition", "list", "lead", "caller_id")
OUTCOMES = ("human", "machine", "fax", "unknown", "no_answer", "busy", "invalid_number",
            "rejected", "congestion", "canceled", "error", "abandoned", "abandoned_no_agent")


@dataclass(frozen=True, slots=True)
class CallRecordsConfig:
    columns: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Our name (RECORD_COLUMNS) → the export's column (or JSON key)."""
    directions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    default_direction: str = "outbound"
    outcomes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    filter_column: str = ""
    filter_values: frozenset[str] = frozenset()
    """Rows whose `filter_column` is not one of these are not calls: counted, not imported."""
    delimiter: str = ","


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    source_file: str = "<defaults>"
    instance: str = "default"
    timezone: str = "UTC"
    answered_by_default: str = "unknown"
    dest_region_digits: int = 0
    campaign_default: str = "default"
    campaign_map: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    campaign_map_only: bool = False
    """Only mapped names are campaigns; any other goes to `campaign_default`."""
    agent_map: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    agent_teams: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    strip_technology: bool = True
    pause_codes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    dispositions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    disposition_default: str = "other"
    exclude_queues: frozenset[str] = frozenset()
    exclude_agents: frozenset[str] = frozenset()
    queue_log: QueueLogConfig = field(default_factory=QueueLogConfig)
    cdr: CdrConfig = field(default_factory=CdrConfig)
    call_records: CallRecordsConfig = field(default_factory=CallRecordsConfig)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def campaign(self, name: str | None) -> str:
        """The campaign (or queue) id a source name counts for."""
        if name and name in self.campaign_map:
            return self.campaign_map[name]
        if name and name not in ("NONE", "") and not self.campaign_map_only:
            return name
        return self.campaign_default

    def agent(self, name: str) -> str:
        """The agent id of a source interface or member name (`PJSIP/1001` → `1001`)."""
        if name in self.agent_map:
            return self.agent_map[name]
        if self.strip_technology and "/" in name:
            name = name.split("/", 1)[1]
            name = name.split("@", 1)[0]
            if name in self.agent_map:
                return self.agent_map[name]
        return name

    def team(self, agent_id: str) -> str | None:
        return self.agent_teams.get(agent_id)

    def pause_reason(self, code: str | None) -> str | None:
        if not code:
            return None
        return self.pause_codes.get(code, code)

    def disposition(self, code: str) -> str:
        """A source's code through the map; a code that is a v1 disposition's name (`Sale`,
        `not_interested`) is that disposition; anything else `dispositions.default`."""
        if code in self.dispositions:
            return self.dispositions[code]
        plain = code.strip().lower().replace(" ", "_")
        return plain if plain in DISPOSITIONS else self.disposition_default


_TOP = ("instance", "timezone", "answered_by_default", "dest_region_digits", "campaigns",
        "agents", "pause_codes", "dispositions", "exclude", "queue_log", "cdr", "call_records")
_CALL_RECORDS = ("columns", "directions", "default_direction", "outcomes", "filter", "delimiter")
_FILTER = ("column", "values")
_CAMPAIGNS = ("default", "map", "map_only")
_AGENTS = ("map", "teams", "strip_technology")
_DISPOSITIONS = ("default", "map")
_EXCLUDE = ("queues", "agents")
_QUEUE_LOG = ("outbound_queues", "exit_with_key", "chanunavail", "members_are_logins",
              "pbxware_agent_column")
_CDR = ("columns", "direction_rules", "default_direction", "campaign_column", "exclude_lastapp",
        "internal_max_digits", "exclude_local_channels", "agent_channel")
_RULE = ("column", "match", "direction")
CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
               "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
               "disposition", "amaflags")
CDR_OPTIONAL_COLUMNS = ("uniqueid", "userfield", "peeraccount", "linkedid", "sequence")


def _string_map(ck: _Checker, value: Any, path: tuple[str | int, ...],
                allowed_values: frozenset[str] | None = None) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ck.error(path, "must be a table of source name = value")
    out = {}
    for k, v in value.items():
        out[k] = ck.string(v, path + (k,))
        if allowed_values is not None and out[k] not in allowed_values:
            raise ck.error(path + (k,), f"unknown value {out[k]!r}; use one of "
                           f"{', '.join(sorted(allowed_values))}")
    return MappingProxyType(out)


def _boolean(ck: _Checker, value: Any, path: tuple[str | int, ...]) -> bool:
    if not isinstance(value, bool):
        raise ck.error(path, "must be true or false")
    return value


def _choice(ck: _Checker, value: Any, path: tuple[str | int, ...], choices: Any) -> str:
    s = ck.string(value, path)
    if s not in choices:
        raise ck.error(path, f"must be one of {', '.join(sorted(choices))}, got {s!r}")
    return s


def _regex(ck: _Checker, value: Any, path: tuple[str | int, ...]) -> re.Pattern[str]:
    s = ck.string(value, path)
    try:
        return re.compile(s)
    except re.error as e:
        raise ck.error(path, f"not a regular expression: {e}") from None


def _cdr(ck: _Checker, raw: Any) -> CdrConfig:
    base: tuple[str | int, ...] = ("cdr",)
    t = ck.table(raw, base, _CDR)
    kw: dict[str, Any] = {}
    if "columns" in t:
        cols = ck.strings(t["columns"], base + ("columns",))
        for c in cols:
            if c not in CDR_OPTIONAL_COLUMNS:
                raise ck.error(base + ("columns",), f"unknown optional column {c!r}; Master.csv's "
                               f"optional columns are {', '.join(CDR_OPTIONAL_COLUMNS)}")
        kw["columns"] = tuple(cols)
    if "direction_rules" in t:
        rules = []
        for _, p, r in ck.entries(t["direction_rules"], base + ("direction_rules",), _RULE, _RULE,
                                  "a direction rule"):
            col = _choice(ck, r["column"], p + ("column",), CDR_COLUMNS + CDR_OPTIONAL_COLUMNS)
            rules.append(DirectionRule(col, _regex(ck, r["match"], p + ("match",)),
                                       _choice(ck, r["direction"], p + ("direction",), DIRECTIONS)))
        kw["direction_rules"] = tuple(rules)
    kw.update(ck.fields(t, base, {
        "default_direction": lambda v, p: _choice(ck, v, p, DIRECTIONS),
        "campaign_column": lambda v, p: _choice(ck, v, p, CDR_COLUMNS + CDR_OPTIONAL_COLUMNS),
        "exclude_lastapp": lambda v, p: tuple(ck.strings(v, p)),
        "internal_max_digits": lambda v, p: ck.integer(v, p, minimum=0),
        "exclude_local_channels": lambda v, p: _boolean(ck, v, p),
    }))
    if "agent_channel" in t:
        rx = _regex(ck, t["agent_channel"], base + ("agent_channel",))
        if rx.groups < 1:
            raise ck.error(base + ("agent_channel",), "needs one group: the extension")
        kw["agent_channel"] = rx
    return CdrConfig(**kw)


def _queue_log(ck: _Checker, raw: Any) -> QueueLogConfig:
    base: tuple[str | int, ...] = ("queue_log",)
    t = ck.table(raw, base, _QUEUE_LOG)
    return QueueLogConfig(**ck.fields(t, base, {
        "outbound_queues": lambda v, p: frozenset(ck.strings(v, p)),
        "exit_with_key": lambda v, p: _choice(ck, v, p, ABANDON_REASONS),
        "chanunavail": lambda v, p: _choice(ck, v, p, UNANSWERED_REASONS),
        "members_are_logins": lambda v, p: _boolean(ck, v, p),
        "pbxware_agent_column": lambda v, p: ck.string(v, p).lower(),
    }))


def _call_records(ck: _Checker, raw: Any) -> CallRecordsConfig:
    base: tuple[str | int, ...] = ("call_records",)
    t = ck.table(raw, base, _CALL_RECORDS)
    kw: dict[str, Any] = {}
    if "columns" in t:
        ck.table(t["columns"], base + ("columns",), RECORD_COLUMNS)
        kw["columns"] = _string_map(ck, t["columns"], base + ("columns",))
    kw.update(ck.fields(t, base, {
        "directions": lambda v, p: _string_map(ck, v, p, frozenset(("inbound", "outbound"))),
        "default_direction": lambda v, p: _choice(ck, v, p, ("inbound", "outbound")),
        "outcomes": lambda v, p: _string_map(ck, v, p, frozenset(OUTCOMES)),
    }))
    if "filter" in t:
        f = ck.table(t["filter"], base + ("filter",), _FILTER)
        for need in _FILTER:
            if need not in f:
                raise ck.error(base + ("filter",), f"a filter needs {need} = ...")
        kw["filter_column"] = ck.string(f["column"], base + ("filter", "column"))
        kw["filter_values"] = frozenset(ck.strings(f["values"], base + ("filter", "values")))
    if "delimiter" in t:
        d = t["delimiter"]
        if not isinstance(d, str) or len(d) != 1:
            raise ck.error(base + ("delimiter",), "must be one character such as \",\" or \";\"")
        kw["delimiter"] = d
    cols = kw.get("columns", {})
    if "call_id" not in cols:
        raise ck.error(base + ("columns",), "call_records.columns needs call_id = \"<column>\"")
    return CallRecordsConfig(**kw)


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        line = int(m.group(1)) if m else None
        raise ConfigError(source, line, "", msg[:m.start()] if m else msg,
                          column=int(m.group(2)) if m else None) from None


def parse_adapter_config(text: str, *, source: str = "<adapter config>") -> AdapterConfig:
    """Parse and check an adapter configuration file's text (pure)."""
    data = _toml(text, source)
    ck = _Checker(text, source)
    ck.table(data, (), _TOP)
    kw: dict[str, Any] = {"source_file": source}
    if "instance" in data:
        inst = ck.string(data["instance"], ("instance",))
        if len(inst) > 40 or not re.fullmatch(r"[A-Za-z0-9_.-]+", inst):
            raise ck.error(("instance",), "must be at most 40 letters, digits, '.', '_' or '-'")
        kw["instance"] = inst
    if "timezone" in data:
        name = ck.string(data["timezone"], ("timezone",))
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ck.error(("timezone",), f"unknown time zone {name!r}; use an IANA name such as "
                           "'America/New_York'") from None
        kw["timezone"] = name
    if "answered_by_default" in data:
        kw["answered_by_default"] = _choice(ck, data["answered_by_default"],
                                            ("answered_by_default",), ANSWERED_BY_DEFAULTS)
    if "dest_region_digits" in data:
        n = ck.integer(data["dest_region_digits"], ("dest_region_digits",), minimum=0)
        if n > 6:
            raise ck.error(("dest_region_digits",), "at most 6 digits (an area code, never a "
                           "whole number)")
        kw["dest_region_digits"] = n
    if "campaigns" in data:
        t = ck.table(data["campaigns"], ("campaigns",), _CAMPAIGNS)
        if "default" in t:
            kw["campaign_default"] = ck.string(t["default"], ("campaigns", "default"))
        if "map" in t:
            kw["campaign_map"] = _string_map(ck, t["map"], ("campaigns", "map"))
        if "map_only" in t:
            kw["campaign_map_only"] = _boolean(ck, t["map_only"], ("campaigns", "map_only"))
    if "agents" in data:
        t = ck.table(data["agents"], ("agents",), _AGENTS)
        if "map" in t:
            kw["agent_map"] = _string_map(ck, t["map"], ("agents", "map"))
        if "teams" in t:
            kw["agent_teams"] = _string_map(ck, t["teams"], ("agents", "teams"))
        if "strip_technology" in t:
            kw["strip_technology"] = _boolean(ck, t["strip_technology"],
                                              ("agents", "strip_technology"))
    if "pause_codes" in data:
        kw["pause_codes"] = _string_map(ck, data["pause_codes"], ("pause_codes",))
    if "dispositions" in data:
        t = ck.table(data["dispositions"], ("dispositions",), _DISPOSITIONS)
        if "map" in t:
            kw["dispositions"] = _string_map(ck, t["map"], ("dispositions", "map"),
                                             frozenset(DISPOSITIONS))
        if "default" in t:
            kw["disposition_default"] = _choice(ck, t["default"], ("dispositions", "default"),
                                                DISPOSITIONS)
    if "exclude" in data:
        t = ck.table(data["exclude"], ("exclude",), _EXCLUDE)
        if "queues" in t:
            kw["exclude_queues"] = frozenset(ck.strings(t["queues"], ("exclude", "queues")))
        if "agents" in t:
            kw["exclude_agents"] = frozenset(ck.strings(t["agents"], ("exclude", "agents")))
    if "queue_log" in data:
        kw["queue_log"] = _queue_log(ck, data["queue_log"])
    if "cdr" in data:
        kw["cdr"] = _cdr(ck, data["cdr"])
    if "call_records" in data:
        kw["call_records"] = _call_records(ck, data["call_records"])
    return AdapterConfig(**kw)


def load_adapter_config(path: str | Path | None) -> AdapterConfig:
    """Read and check the adapter configuration at `path`; None gives the defaults."""
    if path is None:
        return AdapterConfig()
    return parse_adapter_config(read_config_text(path, "the adapter configuration"),
                                source=str(path))


__all__ = ["AdapterConfig", "CdrConfig", "ConfigError", "QueueLogConfig", "load_adapter_config",
           "parse_adapter_config"]
