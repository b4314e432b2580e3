"""The service configuration file (TOML): time zone, KPI thresholds, compliance, costs, targets.

`load_config(path)` reads the file it is given (the only I/O of the KPI layer); `parse_config`
does the rest and is pure. Every mistake is a `ConfigError` whose message names the file, the
line and the key, e.g.

    callkpi.toml:14: targets[2].kpi: unknown KPI 'conect_rate' (did you mean 'connect_rate'?)

Unknown keys are errors at every level: a typo must not silently fall back to a default.
The layout is documented in docs/configuration.md; examples/callkpi.toml shows every option.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream.contract.events import DISPOSITION_ORDER, DISPOSITIONS
from stream.kpi.compliance import (
    DEFAULT_LIMIT,
    DEFAULT_STATUS_RATES,
    STATUS_RATE_CHOICES,
    ComplianceConfig,
    ComplianceGroup,
)
from stream.kpi.cost import RATE_FIELDS, CostConfig, CostRates
from stream.kpi.experiments import Experiment, Guardrail
from stream.kpi.targets import DIRECTIONS, TARGET_WINDOWS, Target, parse_scope_pattern, threshold_problem

DEFAULT_SUCCESS = frozenset({"sale", "appointment"})
DEFAULT_GOALS = DEFAULT_SUCCESS | {"qualified_lead"}

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class LiveConfig:
    call_expiry_seconds: int = 1800
    """A call with no outcome stops counting as ringing/waiting/talking after this long."""


TOKEN_SCOPE_KINDS = ("campaign", "team", "agent", "caller_id", "list", "variant")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A named API token: only its sha256 is configured, never the token itself."""

    name: str
    sha256: str
    scopes: tuple[str, ...] | None = None
    """Scope patterns this token may read (`campaign:renewals`, `team:north`,
    `campaign:energy-*`, `center`); None: every scope."""
    metrics: bool = False
    """Whether this token may read /metrics (every scope's series) when it is not open."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """`[api]`: access control and the limits that keep `serve` up under many clients."""

    tokens: tuple[ApiToken, ...] = ()
    metrics: str = "open"
    """"open": /metrics needs no token (Prometheus as before); "token": a token with
    metrics = true (or the unrestricted CALLKPI_API_TOKEN)."""
    max_stream_clients: int = 1000
    stream_write_timeout_seconds: float = 10.0
    stream_min_interval_seconds: float = 1.0
    """A page refetches at most once a second: announcing faster only costs recomputation."""
    stream_buffer_bytes: int = 65_536
    redis_connections: int = 32
    redis_wait_seconds: float = 5.0
    max_page_size: int = 1000
    response_cache_seconds: float = 1.0
    query_concurrency: int = 4


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    """One `[[reports]]` entry: `callkpi serve` writes the report of each finished local period
    into `directory` (once, whatever the restarts) and posts a summary to `webhook`."""

    name: str
    period: str
    directory: str
    scopes: tuple[str, ...] = ("center",)
    format: str = "html"
    webhook: str | None = None
    check_seconds: float = 30.0
    """How often serve looks for a finished period."""


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    timezone: str = "UTC"
    conversation_threshold_ms: int = 30_000
    qualification_score: float = 70
    connect_threshold_ms: int = 2_000
    service_level_threshold_ms: int = 20_000
    """An inbound call connected within this wait counts for `service_level` (contract 1.1)."""
    max_call_gap_seconds: int = 3600
    """For an agent with no `agent.state` events, a longer call gap is not counted (its
    login sessions are unknown: the gap may span a night)."""
    success_dispositions: frozenset[str] = DEFAULT_SUCCESS
    goal_dispositions: frozenset[str] = DEFAULT_GOALS
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    targets: tuple[Target, ...] = ()
    live: LiveConfig = field(default_factory=LiveConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    experiments: tuple[Experiment, ...] = ()
    reports: tuple[ReportSchedule, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class ConfigError(ValueError):
    """A configuration file that cannot be used: `source:line: key.path: problem`."""

    def __init__(self, source: str, line: int | None, path: str, problem: str,
                 column: int | None = None) -> None:
        where = source if line is None else f"{source}:{line}"
        if line is not None and column is not None:
            where += f":{column}"
        super().__init__(f"{where}: {path}: {problem}" if path else f"{where}: {problem}")
        self.source, self.line, self.column, self.path, self.problem = (
            source, line, column, path, problem)


# --------------------------------------------------------------------------- locating keys

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ML_DELIMS = ('"""', "'''")


def _parse_key(s: str, i: int) -> tuple[list[str], int] | None:
    """A (dotted) TOML key starting at s[i]: (parts, index after it), or None if not a key."""
    parts: list[str] = []
    n = len(s)
    while True:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            return None
        if s[i] == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                return None
            try:
                parts.append(json.loads(s[i:j + 1]))
            except ValueError:  # a TOML escape JSON lacks (\e, \U...): keep it raw
                parts.append(s[i + 1:j])
            i = j + 1
        elif s[i] == "'":
            j = s.find("'", i + 1)
            if j < 0:
                return None
            parts.append(s[i + 1:j])
            i = j + 1
        else:
            m = _BARE.match(s, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < n and s[i] in " \t":
            i += 1
        if i < n and s[i] == ".":
            i += 1
            continue
        return parts, i


class _LineIndex:
    """Maps a key path such as ("targets", 2, "kpi") to the line that defines it.

    Scans section headers (`[a.b]`, `[[targets]]`, numbering array-of-tables entries from 0)
    and `key = value` lines. The file already parsed, so the scan only has to follow valid
    TOML; multi-line strings are skipped. A key without a line of its own (inside an inline
    table or a multi-line array) maps to the nearest enclosing key or header.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[Path_, int] = {}
        arrays: dict[Path_, int] = {}
        current: Path_ = ()
        open_ml: str | None = None
        for lineno, line in enumerate(text.splitlines(), 1):
            if open_ml:
                if open_ml in line:
                    open_ml = None
                continue
            s = line.lstrip()
            if not s or s[0] == "#":
                continue
            if s[0] == "[":
                is_array = s.startswith("[[")
                parsed = _parse_key(s, 2 if is_array else 1)
                if parsed is None:
                    continue
                keys = parsed[0]
                path: Path_ = ()
                for k_i, k in enumerate(keys):
                    path += (k,)
                    last = k_i == len(keys) - 1
                    if last and is_array:
                        arrays[path] = arrays.get(path, -1) + 1
                        self.lines.setdefault(path, lineno)
                        path += (arrays[path],)
                    elif path in arrays:
                        path += (arrays[path],)
                    self.lines.setdefault(path, lineno)
                self.lines[path] = lineno
                current = path
                continue
            parsed = _parse_key(s, 0)
            if parsed is None or parsed[1] >= len(s) or s[parsed[1]] != "=":
                continue
            path = current
            for k in parsed[0]:
                path += (k,)
                self.lines.setdefault(path, lineno)
            self.lines[path] = lineno
            rest = s[parsed[1] + 1:]
            for d in _ML_DELIMS:
                if rest.count(d) % 2 == 1:
                    open_ml = d
                    break

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _fmt_path(path: Path_) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            key = p if _BARE.fullmatch(p) else json.dumps(p)
            out += f".{key}" if out else key
    return out


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- checking values

class _Checker:
    def __init__(self, text: str, source: str) -> None:
        self.index = _LineIndex(text)
        self.source = source

    def error(self, path: Path_, problem: str) -> ConfigError:
        return ConfigError(self.source, self.index.line_of(path), _fmt_path(path), problem)

    def table(self, value: Any, path: Path_, allowed: Collection[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be a table, got {_type(value)}")
        for key in value:
            if key not in allowed:
                raise self.error(path + (key,), f"unknown key {key!r}{_suggest(key, allowed)}; "
                                 f"allowed here: {', '.join(sorted(allowed))}")
        return value

    def array_of_tables(self, value: Any, path: Path_) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, f"must be an array of tables ([[{_fmt_path(path)}]]), "
                             f"got {_type(value)}")
        return value

    def entries(self, raw: Any, base: Path_, allowed: Collection[str], required: Sequence[str],
                what: str, hint: str = "") -> Iterator[tuple[int, Path_, Mapping[str, Any]]]:
        """Each table of an array of tables (`[[targets]]`, ...) with its index and path, checked
        for unknown keys and for the `required` ones (`what`: "a target", ...)."""
        for i, t in enumerate(self.array_of_tables(raw, base)):
            p = base + (i,)
            t = self.table(t, p, allowed)
            for key in required:
                if key not in t:
                    raise self.error(p, f"{what} needs {key} = ...{hint}")
            yield i, p, t

    def one_of(self, value: Any, path: Path_, choices: Sequence[str], what: str) -> str:
        """A string from a closed list (`what`: "window", ...), a near miss suggested."""
        s = self.string(value, path)
        if s not in choices:
            raise self.error(path, f"unknown {what} {s!r}{_suggest(s, choices)}; use one of "
                             f"{', '.join(choices)}")
        return s

    def entry_name(self, value: Any, path: Path_, what: str, taken: Iterable[str], why: str) -> str:
        """The name an entry is known by outside the file (`why`: a URL, file names): 1..64
        letters, digits, '.', '_' or '-', and not one already `taken`."""
        name = self.string(value, path)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
            raise self.error(path, f"bad {what} name {name!r}: 1..64 letters, digits, '.', '_' or "
                             f"'-' ({why})")
        if name in taken:
            raise self.error(path, f"duplicate {what} name {name!r}")
        return name

    def fields(self, t: Mapping[str, Any], base: Path_,
               checks: Mapping[str, Callable[[Any, Path_], Any]]) -> dict[str, Any]:
        """The keys of `t` that `checks` names, each value through its check (given its path,
        for the error)."""
        return {k: check(t[k], base + (k,)) for k, check in checks.items() if k in t}

    def number(self, value: Any, path: Path_, *, minimum: float | None = None,
               maximum: float | None = None, hint: str = "") -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"must be a number, got {_type(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.error(path, "must be a finite number")
        if minimum is not None and value < minimum:
            raise self.error(path, f"must be ≥ {minimum:g}, got {value:g}{hint}")
        if maximum is not None and value > maximum:
            raise self.error(path, f"must be ≤ {maximum:g}, got {value:g}{hint}")
        return value

    def integer(self, value: Any, path: Path_, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"must be an integer, got {_type(value)}")
        if value < minimum:
            raise self.error(path, f"must be ≥ {minimum}, got {value}")
        return value

    def string(self, value: Any, path: Path_) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"must be a non-empty string, got {_type(value)}")
        return value.strip()

    def strings(self, value: Any, path: Path_) -> list[str]:
        if not isinstance(value, list):
            raise self.error(path, f"must be an array of strings, got {_type(value)}")
        return [self.string(v, path) for v in value]

    def fraction(self, value: Any, path: Path_) -> float:
        v = self.number(value, path)
        if not 0 < v <= 1:
            hint = " (3 % is written 0.03, not 3)" if v > 1 else ""
            raise self.error(path, f"must be a fraction in (0, 1], got {v:g}{hint}")
        return float(v)

    def dispositions(self, value: Any, path: Path_) -> frozenset[str]:
        out = []
        for d in self.strings(value, path):
            if d not in DISPOSITIONS:
                raise self.error(path, f"unknown disposition {d!r}{_suggest(d, DISPOSITIONS)}; "
                                 f"dispositions: {', '.join(DISPOSITION_ORDER)}")
            out.append(d)
        return frozenset(out)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (datetime, date, time)):
        return f"the date/time {value.isoformat()}"
    return f"{type(value).__name__} {value!r}"


# --------------------------------------------------------------------------- sections

_TOP = ("timezone", "conversation_threshold_ms", "qualification_score", "connect_threshold_ms",
        "service_level_threshold_ms", "max_call_gap_seconds", "success_dispositions",
        "goal_dispositions", "compliance", "costs", "targets", "live", "api", "experiments",
        "reports")
_COMPLIANCE = ("default_limit", "campaign_limits", "groups", "status_rates")
_GROUP = ("name", "campaigns", "limit")
_COSTS = ("currency", *RATE_FIELDS, "campaigns")
_TARGET = ("name", "kpi", "scope", "window", "goal", "direction", "warn", "critical", "deadline")
_LIVE = ("call_expiry_seconds",)
_API = ("tokens", "metrics", "max_stream_clients", "stream_write_timeout_seconds",
        "stream_min_interval_seconds", "stream_buffer_bytes", "redis_connections",
        "redis_wait_seconds", "max_page_size", "response_cache_seconds", "query_concurrency")
_TOKEN = ("name", "sha256", "scopes", "metrics")
_EXPERIMENT = ("name", "variants", "control", "primary_kpi", "minimum_detectable_effect",
               "guardrails", "campaigns", "window", "start", "end")
_GUARDRAIL = ("kpi", "direction", "tolerance")
_REPORT = ("name", "period", "scopes", "format", "directory", "webhook", "check_seconds")
REPORT_PERIODS = ("day", "week", "month", "hour", "minute")
"""Periods of a scheduled report: `hour` and `minute` are for trying a schedule or a webhook
out (and for tests); managers read days, weeks and months."""
REPORT_FORMATS = ("html", "csv", "xlsx", "md")
_VARIANT_ID = re.compile(r"[^\s]{1,64}")


def _timezone(ck: _Checker, value: Any) -> str:
    name = ck.string(value, ("timezone",))
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ck.error(("timezone",), f"unknown time zone {name!r}; use an IANA name such as "
                       "'Europe/London' or 'America/New_York'") from None
    return name


def _compliance(ck: _Checker, raw: Any) -> ComplianceConfig:
    base: Path_ = ("compliance",)
    t = ck.table(raw, base, _COMPLIANCE)
    default = ck.fraction(t.get("default_limit", DEFAULT_LIMIT), base + ("default_limit",))
    limits: dict[str, float] = {}
    if "campaign_limits" in t:
        lt = t["campaign_limits"]
        if not isinstance(lt, dict):
            raise ck.error(base + ("campaign_limits",), f"must be a table of campaign id = limit, "
                           f"got {_type(lt)}")
        for cid, v in lt.items():
            limits[cid] = ck.fraction(v, base + ("campaign_limits", cid))
    status_rates = DEFAULT_STATUS_RATES
    if "status_rates" in t:
        p = base + ("status_rates",)
        names = ck.strings(t["status_rates"], p)
        for n in names:
            if n not in STATUS_RATE_CHOICES:
                raise ck.error(p, f"unknown rate {n!r}{_suggest(n, STATUS_RATE_CHOICES)}; "
                               f"choose from {', '.join(STATUS_RATE_CHOICES)}")
        if not names:
            raise ck.error(p, "must name at least one rate")
        status_rates = tuple(dict.fromkeys(names))
    groups: list[ComplianceGroup] = []
    member_of: dict[str, tuple[str, int]] = {}
    for i, g in enumerate(ck.array_of_tables(t.get("groups", []), base + ("groups",))):
        gp = base + ("groups", i)
        g = ck.table(g, gp, _GROUP)
        if "name" not in g:
            raise ck.error(gp, "a compliance group needs a name")
        name = ck.string(g["name"], gp + ("name",))
        if any(x.name == name for x in groups):
            raise ck.error(gp + ("name",), f"duplicate compliance group name {name!r}")
        if "campaigns" not in g:
            raise ck.error(gp, "a compliance group needs campaigns = [...]")
        campaigns = ck.strings(g["campaigns"], gp + ("campaigns",))
        if not campaigns:
            raise ck.error(gp + ("campaigns",), "a compliance group needs at least one campaign")
        for c in campaigns:
            if c in member_of and member_of[c][1] != i:
                other, j = member_of[c]
                raise ck.error(gp + ("campaigns",), f"campaign {c!r} is already in compliance "
                               f"group {other!r} (compliance.groups[{j}]); a campaign belongs "
                               "to at most one group")
            member_of[c] = (name, i)
        limit = None if "limit" not in g else ck.fraction(g["limit"], gp + ("limit",))
        groups.append(ComplianceGroup(name, tuple(dict.fromkeys(campaigns)), limit))
    return ComplianceConfig(default_limit=default, groups=tuple(groups),
                            campaign_limits=MappingProxyType(limits), status_rates=status_rates)


def _rates(ck: _Checker, t: Mapping[str, Any], path: Path_, base: CostRates) -> CostRates:
    values = {}
    for name in RATE_FIELDS:
        if name in t:
            values[name] = float(ck.number(t[name], path + (name,), minimum=0))
        else:
            values[name] = getattr(base, name)
    return CostRates(**values)


def _costs(ck: _Checker, raw: Any) -> CostConfig:
    base: Path_ = ("costs",)
    t = ck.table(raw, base, _COSTS)
    currency = "" if "currency" not in t else ck.string(t["currency"], base + ("currency",))
    default = _rates(ck, t, base, CostRates())
    per_campaign: dict[str, CostRates] = {}
    camps = t.get("campaigns", {})
    if not isinstance(camps, dict):
        raise ck.error(base + ("campaigns",), f"must be a table of [costs.campaigns.<id>] "
                       f"tables, got {_type(camps)}")
    for cid, ct in camps.items():
        cp = base + ("campaigns", cid)
        per_campaign[cid] = _rates(ck, ck.table(ct, cp, RATE_FIELDS), cp, default)
    return CostConfig(default=default, per_campaign=MappingProxyType(per_campaign),
                      currency=currency)


def token_scope_problem(pattern: str) -> str | None:
    """Why a token's scope pattern is unusable (None: fine): `center` or `<kind>:<id>`, where
    the id may use `*` for any run of characters (`campaign:energy-*`, `team:*`)."""
    if pattern == "center":
        return None
    kind, sep, ident = pattern.partition(":")
    if not sep or kind not in TOKEN_SCOPE_KINDS:
        return (f"bad scope pattern {pattern!r}: use center or <kind>:<id>, kind one of "
                f"{', '.join(TOKEN_SCOPE_KINDS)}; '*' in the id matches any characters")
    if not ident:
        return f"bad scope pattern {pattern!r}: the id after '{kind}:' is empty"
    return None


def _tokens(ck: _Checker, raw: Any, base: Path_) -> tuple[ApiToken, ...]:
    out: list[ApiToken] = []
    for _, p, t in ck.entries(raw, base, _TOKEN, ("name", "sha256"), "a token",
                              " (hash a new token with `callkpi hash-token`)"):
        name = ck.string(t["name"], p + ("name",))
        if any(x.name == name for x in out):
            raise ck.error(p + ("name",), f"duplicate token name {name!r}")
        digest = ck.string(t["sha256"], p + ("sha256",)).lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise ck.error(p + ("sha256",), "must be the token's sha256 as 64 hex digits (the "
                           "token itself does not belong in the file: `callkpi hash-token`)")
        if any(x.sha256 == digest for x in out):
            raise ck.error(p + ("sha256",), f"the same token hash as token {name!r}")
        scopes = None
        if "scopes" in t:
            scopes = tuple(ck.strings(t["scopes"], p + ("scopes",)))
            for pattern in scopes:
                problem = token_scope_problem(pattern)
                if problem:
                    raise ck.error(p + ("scopes",), problem)
        metrics = t.get("metrics", False)
        if not isinstance(metrics, bool):
            raise ck.error(p + ("metrics",), f"must be true or false, got {_type(metrics)}")
        out.append(ApiToken(name, digest, scopes, metrics))
    return tuple(out)


def _api(ck: _Checker, raw: Any) -> ApiConfig:
    base: Path_ = ("api",)
    t = ck.table(raw, base, _API)
    kw: dict[str, Any] = {}
    if "tokens" in t:
        kw["tokens"] = _tokens(ck, t["tokens"], base + ("tokens",))
    if "metrics" in t:
        metrics = ck.string(t["metrics"], base + ("metrics",))
        if metrics not in ("open", "token"):
            raise ck.error(base + ("metrics",), f"must be 'open' or 'token', got {metrics!r}")
        kw["metrics"] = metrics
    for name in ("max_stream_clients", "redis_connections", "max_page_size", "query_concurrency"):
        if name in t:
            kw[name] = ck.integer(t[name], base + (name,), minimum=1)
    if "stream_buffer_bytes" in t:
        kw["stream_buffer_bytes"] = ck.integer(t["stream_buffer_bytes"],
                                               base + ("stream_buffer_bytes",), minimum=1024)
    for name, minimum in (("stream_write_timeout_seconds", 0.1), ("redis_wait_seconds", 0.1),
                          ("stream_min_interval_seconds", 0), ("response_cache_seconds", 0)):
        if name in t:
            kw[name] = float(ck.number(t[name], base + (name,), minimum=minimum))
    return ApiConfig(**kw)


def _deadline(ck: _Checker, value: Any, path: Path_, timezone: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ck.error(path, f"not an RFC 3339 date-time: {value!r}") from None
        if value.tzinfo is None:
            raise ck.error(path, "an RFC 3339 deadline needs a UTC offset (Z or +hh:mm)")
    elif isinstance(value, datetime):
        if value.tzinfo is None:  # a TOML local date-time: in the service time zone
            value = value.replace(tzinfo=ZoneInfo(timezone))
    else:
        raise ck.error(path, f"must be an RFC 3339 date-time such as 2026-11-27T18:00:00+01:00, "
                       f"got {_type(value)}")
    return value


def _targets(ck: _Checker, raw: Any, timezone: str, kpi_names: Collection[str] | None,
             cumulative_kpis: Collection[str] | None) -> tuple[Target, ...]:
    out: list[Target] = []
    names: dict[str, int] = {}
    for i, p, t in ck.entries(raw, ("targets",), _TARGET, ("kpi", "scope", "window", "goal"),
                              "a target"):
        kpi = ck.string(t["kpi"], p + ("kpi",))
        if kpi_names is not None and kpi not in kpi_names:
            raise ck.error(p + ("kpi",), f"unknown KPI {kpi!r}{_suggest(kpi, kpi_names)}")
        scope = ck.string(t["scope"], p + ("scope",))
        try:
            parse_scope_pattern(scope)
        except ValueError as e:
            raise ck.error(p + ("scope",), str(e)) from None
        window = ck.one_of(t["window"], p + ("window",), TARGET_WINDOWS, "window")
        goal = float(ck.number(t["goal"], p + ("goal",)))
        direction = ck.string(t.get("direction", "higher"), p + ("direction",))
        if direction not in DIRECTIONS:
            raise ck.error(p + ("direction",), f"must be 'higher' or 'lower', got {direction!r}")
        warn = None if "warn" not in t else float(ck.number(t["warn"], p + ("warn",)))
        critical = (None if "critical" not in t
                    else float(ck.number(t["critical"], p + ("critical",))))
        problem = threshold_problem(direction, goal, warn, critical)
        if problem:
            raise ck.error(p + (problem[0],), problem[1])
        deadline = None
        if "deadline" in t:
            deadline = _deadline(ck, t["deadline"], p + ("deadline",), timezone)
            if cumulative_kpis is not None and kpi not in cumulative_kpis:
                raise ck.error(p + ("deadline",), f"a deadline (pace to goal) needs a cumulative "
                               f"count KPI; {kpi!r} is not one")
        name = (ck.string(t["name"], p + ("name",)) if "name" in t
                else f"{kpi} {scope} {window}")
        if name in names:
            raise ck.error(p + ("name",), f"duplicate target name {name!r} (also targets"
                           f"[{names[name]}]); give each target a distinct name")
        names[name] = i
        out.append(Target(name=name, kpi=kpi, scope=scope, window=window, goal=goal,
                          direction=direction, warn=warn, critical=critical,  # type: ignore[arg-type]
                          deadline=deadline))
    return tuple(out)


def _experiment_kpi(ck: _Checker, value: Any, path: Path_,
                    experiment_kpis: Mapping[str, bool] | None, primary: bool) -> str:
    kpi = ck.string(value, path)
    if experiment_kpis is None:
        return kpi
    if kpi not in experiment_kpis:
        raise ck.error(path, f"unknown KPI {kpi!r}{_suggest(kpi, experiment_kpis)}; an "
                       "experiment reads the catalog KPIs of its variant scopes")
    if primary and not experiment_kpis[kpi]:
        counts = sorted(k for k, ratio in experiment_kpis.items() if ratio)
        raise ck.error(path, f"{kpi!r} is not a ratio of counts, so it has no binomial test; "
                       f"the primary KPI must be one of {', '.join(counts)}")
    return kpi


def _guardrails(ck: _Checker, raw: Any, base: Path_,
                experiment_kpis: Mapping[str, bool] | None) -> tuple[Guardrail, ...]:
    out: list[Guardrail] = []
    for _, p, g in ck.entries(raw, base, _GUARDRAIL, ("kpi", "direction", "tolerance"),
                              "a guardrail"):
        kpi = _experiment_kpi(ck, g["kpi"], p + ("kpi",), experiment_kpis, primary=False)
        if any(x.kpi == kpi for x in out):
            raise ck.error(p + ("kpi",), f"guardrail {kpi!r} is listed twice")
        direction = ck.string(g["direction"], p + ("direction",))
        if direction not in DIRECTIONS:
            raise ck.error(p + ("direction",), f"must be 'higher' (more is better) or 'lower', "
                           f"got {direction!r}")
        tolerance = float(ck.number(g["tolerance"], p + ("tolerance",), minimum=0,
                                    hint=" (the relative change accepted, 5 % is 0.05)"))
        out.append(Guardrail(kpi, direction, tolerance))  # type: ignore[arg-type]
    return tuple(out)


def _experiments(ck: _Checker, raw: Any, timezone: str,
                 experiment_kpis: Mapping[str, bool] | None) -> tuple[Experiment, ...]:
    out: list[Experiment] = []
    arm_of: dict[str, tuple[str, int]] = {}
    for i, p, e in ck.entries(raw, ("experiments",), _EXPERIMENT,
                              ("name", "variants", "primary_kpi", "minimum_detectable_effect"),
                              "an experiment"):
        name = ck.entry_name(e["name"], p + ("name",), "experiment", (x.name for x in out),
                             "it is part of the URL /api/v1/experiments/<name>")
        variants = ck.strings(e["variants"], p + ("variants",))
        if len(variants) < 2:
            raise ck.error(p + ("variants",), "an experiment needs at least two variants (the "
                           "control and one to compare with it)")
        for v in variants:
            if not _VARIANT_ID.fullmatch(v):
                raise ck.error(p + ("variants",), f"bad variant {v!r}: 1..64 characters, no "
                               "spaces (the `variant` of call.dialed)")
            if v in arm_of and arm_of[v][1] != i:
                raise ck.error(p + ("variants",), f"variant {v!r} is already an arm of experiment "
                               f"{arm_of[v][0]!r} (experiments[{arm_of[v][1]}]); a variant's "
                               "calls belong to one experiment")
            arm_of[v] = (name, i)
        if len(set(variants)) != len(variants):
            raise ck.error(p + ("variants",), "a variant is listed twice")
        control = variants[0]
        if "control" in e:
            control = ck.string(e["control"], p + ("control",))
            if control not in variants:
                raise ck.error(p + ("control",), f"the control {control!r} is not one of the "
                               f"variants {', '.join(variants)}")
        primary = _experiment_kpi(ck, e["primary_kpi"], p + ("primary_kpi",), experiment_kpis,
                                  primary=True)
        mde = float(ck.number(e["minimum_detectable_effect"], p + ("minimum_detectable_effect",)))
        if not 0 < mde <= 10:
            raise ck.error(p + ("minimum_detectable_effect",), f"must be a relative change in "
                           f"(0, 10] (a 10 % lift is 0.10), got {mde:g}")
        guardrails = _guardrails(ck, e.get("guardrails", []), p + ("guardrails",),
                                 experiment_kpis)
        if any(g.kpi == primary for g in guardrails):
            raise ck.error(p + ("guardrails",), f"{primary!r} is the primary KPI, not a guardrail")
        campaigns = tuple(dict.fromkeys(ck.strings(e.get("campaigns", []), p + ("campaigns",))))
        window = ck.one_of(e.get("window", "30d"), p + ("window",), TARGET_WINDOWS, "window")
        start = None if "start" not in e else _deadline(ck, e["start"], p + ("start",), timezone)
        end = None if "end" not in e else _deadline(ck, e["end"], p + ("end",), timezone)
        if start is not None and end is not None and end <= start:
            raise ck.error(p + ("end",), "the end must be after the start")
        out.append(Experiment(name=name, variants=tuple(variants), control=control,
                              primary_kpi=primary, minimum_detectable_effect=mde,
                              guardrails=guardrails, campaigns=campaigns, window=window,
                              start=start, end=end))
    return tuple(out)


def _reports(ck: _Checker, raw: Any, source: str) -> tuple[ReportSchedule, ...]:
    """`source`: the configuration file (a relative directory is relative to it), or ""."""
    out: list[ReportSchedule] = []
    for i, p, e in ck.entries(raw, ("reports",), _REPORT, ("period", "directory"),
                              "a scheduled report"):
        period = ck.one_of(e["period"], p + ("period",), REPORT_PERIODS, "period")
        fmt = ck.one_of(e.get("format", "html"), p + ("format",), REPORT_FORMATS, "format")
        scopes = tuple(ck.strings(e.get("scopes", ["center"]), p + ("scopes",)))
        if not scopes:
            raise ck.error(p + ("scopes",), "give at least one scope (e.g. \"center\")")
        for s in scopes:
            kind, _, ident = s.partition(":")
            if s != "center" and (kind not in ("campaign", "team", "agent", "caller_id", "list", "variant")
                                  or not ident):
                raise ck.error(p + ("scopes",), f"bad scope {s!r}: center or <kind>:<id>")
        name = ck.entry_name(e.get("name", f"{period}-{i + 1}"), p + ("name",), "report",
                             (r.name for r in out), "it names the report's files")
        directory = ck.string(e["directory"], p + ("directory",))
        if source and not Path(directory).is_absolute():
            directory = str(Path(source).parent / directory)  # relative to the configuration file
        webhook = None
        if "webhook" in e:
            webhook = ck.string(e["webhook"], p + ("webhook",))
            if not re.match(r"https?://[^/\s]+", webhook):
                raise ck.error(p + ("webhook",), f"must be an http(s):// URL, got {webhook!r}")
        check = float(ck.number(e.get("check_seconds", 30), p + ("check_seconds",), minimum=0.1))
        out.append(ReportSchedule(name=name, period=period, directory=directory, scopes=scopes,
                                  format=fmt, webhook=webhook, check_seconds=check))
    return tuple(out)


def parse_config(text: str, *, source: str = "<config>", kpi_names: Collection[str] | None,
                 cumulative_kpis: Collection[str] | None = None,
                 experiment_kpis: Mapping[str, bool] | None = None) -> ServiceConfig:
    """Parse and check a configuration file's text.

    `kpi_names`: the KPIs a target may name (the caller passes the catalog's names plus the
    cost and compliance KPIs it serves); None skips that one check. `cumulative_kpis`, when
    given, are the KPIs a target with a `deadline` may name (counts and sums).
    `experiment_kpis`: the catalog KPIs an experiment may name, each mapped to whether it is a
    ratio of counts (only those can be its primary KPI); None skips those checks.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if m:
            raise ConfigError(source, int(m.group(1)), "", msg[:m.start()],
                              column=int(m.group(2))) from None
        if msg.endswith("(at end of document)"):
            raise ConfigError(source, text.count("\n") + 1, "",
                              msg.removesuffix("(at end of document)").strip()) from None
        raise ConfigError(source, None, "", msg) from None
    ck = _Checker(text, source)
    ck.table(data, (), _TOP)
    timezone = _timezone(ck, data["timezone"]) if "timezone" in data else "UTC"
    def count(value: Any, path: Path_) -> int:
        return ck.integer(value, path, minimum=0)
    kw: dict[str, Any] = {"timezone": timezone, **ck.fields(data, (), {
        "conversation_threshold_ms": count,
        "connect_threshold_ms": count,
        "service_level_threshold_ms": count,
        "max_call_gap_seconds": count,
        "qualification_score": lambda v, p: float(ck.number(v, p, minimum=0, maximum=100)),
    })}
    success = DEFAULT_SUCCESS
    if "success_dispositions" in data:
        success = ck.dispositions(data["success_dispositions"], ("success_dispositions",))
    kw["success_dispositions"] = success
    kw["goal_dispositions"] = (
        ck.dispositions(data["goal_dispositions"], ("goal_dispositions",))
        if "goal_dispositions" in data else success | {"qualified_lead"})
    if "compliance" in data:
        kw["compliance"] = _compliance(ck, data["compliance"])
    if "costs" in data:
        kw["costs"] = _costs(ck, data["costs"])
    if "targets" in data:
        kw["targets"] = _targets(ck, data["targets"], timezone, kpi_names, cumulative_kpis)
    if "live" in data:
        live = ck.table(data["live"], ("live",), _LIVE)
        if "call_expiry_seconds" in live:
            kw["live"] = LiveConfig(ck.integer(live["call_expiry_seconds"],
                                               ("live", "call_expiry_seconds"), minimum=1))
    if "api" in data:
        kw["api"] = _api(ck, data["api"])
    if "experiments" in data:
        kw["experiments"] = _experiments(ck, data["experiments"], timezone, experiment_kpis)
    if "reports" in data:
        kw["reports"] = _reports(ck, data["reports"], source if source != "<config>" else "")
    return ServiceConfig(**kw)


def load_config(path: str | Path | None, *, kpi_names: Collection[str] | None = None,
                cumulative_kpis: Collection[str] | None = None,
                experiment_kpis: Mapping[str, bool] | None = None) -> ServiceConfig:
    """Read and check the configuration file at `path`; None gives the defaults.

    Pass the catalog's KPI names as `kpi_names` (the CLI does) so that a target naming an
    unknown KPI is refused; this module does not import the catalog.
    """
    if path is None:
        return ServiceConfig()
    return parse_config(read_config_text(path, "the configuration file"), source=str(path),
                        kpi_names=kpi_names, cumulative_kpis=cumulative_kpis,
                        experiment_kpis=experiment_kpis)


def read_config_text(path: str | Path, what: str) -> str:
    """A configuration file's text; a file that cannot be read or is not UTF-8 is a
    ConfigError naming it (`what`: which configuration it is)."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(str(path), None, "", f"cannot read {what}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), None, "", f"not UTF-8 text ({e.reason} at byte "
                          f"{e.start})") from None
