"""SMART targets: a KPI, a scope pattern, a window, a goal, a direction and thresholds.

Pure: evaluating a target is arithmetic on a value the reader already computed for the target's
scope and window. Nothing here reads the store.

Status rules (documented in docs/configuration.md):

* direction `higher` (more is better): `critical` when the judged value is below `critical`,
  else `warn` when below `warn`, else `ok`. `lower` mirrors it (above the threshold is worse).
  A value exactly at a threshold is not yet worse than it.
* `warn` defaults to the goal (falling short of the goal is a warning); no `critical` means the
  target never turns critical.
* The judged value is the current value, or, for a target with a deadline still ahead, the
  value *projected* to the deadline at the pace since the window started (so 40 of 200 leads on
  Monday morning is `ok` if the pace gets there by Friday).
* No value (no data, or a zero denominator) gives status `no_data`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from stream.kpi.windows import ROLLING_MINUTES, resolve_window

HOUR_MS = 3_600_000

CALENDAR_PERIODS: tuple[str, ...] = ("today", "week", "month")
"""Calendar windows: local midnight / local Monday 00:00 / local 1st 00:00 up to now."""
TARGET_WINDOWS: tuple[str, ...] = (*ROLLING_MINUTES, *CALENDAR_PERIODS)
DIRECTIONS: tuple[str, ...] = ("higher", "lower")
SCOPE_KINDS: tuple[str, ...] = ("campaign", "team", "agent", "caller_id", "list", "variant")
STATUSES: tuple[str, ...] = ("ok", "warn", "critical", "no_data")

Direction = Literal["higher", "lower"]
Status = Literal["ok", "warn", "critical", "no_data"]


# --------------------------------------------------------------------------- scope patterns

@dataclass(frozen=True, slots=True)
class ScopePattern:
    """A parsed scope pattern. `ident` None means the wildcard `*`; `team` restricts agents."""

    kind: str  # "center" or one of SCOPE_KINDS
    ident: str | None = None
    team: str | None = None

    @property
    def is_wildcard(self) -> bool:
        return self.kind != "center" and self.ident is None


def parse_scope_pattern(pattern: str) -> ScopePattern:
    """Parse `center`, `<kind>:<id>`, `<kind>:*` or `agent:*@team:<id>`; ValueError says why."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("a scope pattern must be a non-empty string")
    p = pattern.strip()
    if p == "center":
        return ScopePattern("center")
    kind, sep, rest = p.partition(":")
    if not sep or kind not in SCOPE_KINDS:
        raise ValueError(
            f"bad scope {pattern!r}: use center, " + ", ".join(f"{k}:<id>" for k in SCOPE_KINDS)
            + ", <kind>:* or agent:*@team:<id>")
    if not rest:
        raise ValueError(f"bad scope {pattern!r}: the id after '{kind}:' is empty")
    if rest == "*":
        return ScopePattern(kind)
    if rest.startswith("*@"):
        if kind != "agent":
            raise ValueError(f"bad scope {pattern!r}: only agent:*@team:<id> may be restricted")
        tkind, tsep, team = rest[2:].partition(":")
        if tkind != "team" or not tsep or not team or "*" in team:
            raise ValueError(f"bad scope {pattern!r}: expected agent:*@team:<id>")
        return ScopePattern("agent", None, team)
    if "*" in rest:
        raise ValueError(f"bad scope {pattern!r}: '*' stands alone (campaign:*), no partial ids")
    return ScopePattern(kind, rest)


def expand_scopes(pattern: str, known_scopes: Mapping[str, Collection[str]],
                  team_of: Mapping[str, str]) -> list[str]:
    """The concrete scopes a pattern covers, sorted.

    `known_scopes` maps a kind to its known ids (the shape of `GET /api/v1/scopes`); `team_of`
    maps an agent id to its current team. A concrete scope (`campaign:c1`) is returned even if
    it is not known yet: its target is then reported with status `no_data`. A wildcard covers
    only known ids; `agent:*@team:t1` covers every agent whose current team is `t1`.
    """
    p = parse_scope_pattern(pattern)
    if p.kind == "center":
        return ["center"]
    if p.ident is not None:
        return [f"{p.kind}:{p.ident}"]
    if p.team is not None:
        return [f"agent:{a}" for a in sorted(a for a, t in team_of.items() if t == p.team)]
    return [f"{p.kind}:{i}" for i in sorted(set(known_scopes.get(p.kind, ())))]


# --------------------------------------------------------------------------- windows

def _as_tz(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _local_start_ms(d: date, tz: tzinfo) -> int:
    # fold=0 maps a local time that falls in a DST gap to the transition instant itself and a
    # repeated one to its first occurrence: either way the first instant of that local date.
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)


def calendar_period(period: str, now_ms: int, tz: str | tzinfo) -> tuple[int, int]:
    """`[start, end)` in epoch ms of the local day, week (Monday 00:00) or month containing now.

    DST-correct: a local day may be 23 or 25 hours long.
    """
    zone = _as_tz(tz)
    today = datetime.fromtimestamp(now_ms / 1000, zone).date()
    if period == "today":
        start, end = today, today + timedelta(days=1)
    elif period == "week":
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = today.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown calendar period {period!r}; use one of {CALENDAR_PERIODS}")
    return _local_start_ms(start, zone), _local_start_ms(end, zone)


def window_range(window: str, now_ms: int, tz: str | tzinfo) -> tuple[int, int]:
    """`[from, to)` of a target window ending now.

    Rolling windows and `today` are resolved exactly as the API resolves them
    (`stream.kpi.windows.resolve_window`), so a target's value equals the API's value for the
    same scope and window. `week` and `month` start at the local calendar boundary.
    """
    zone = _as_tz(tz)
    if window in ("week", "month"):
        return calendar_period(window, now_ms, zone)[0], now_ms
    if window not in TARGET_WINDOWS:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(TARGET_WINDOWS)}")
    r = resolve_window(window, now_ms, zone)  # type: ignore[arg-type]  # any tzinfo works
    return r.start, r.end


# --------------------------------------------------------------------------- targets

def threshold_problem(direction: str, goal: float, warn: float | None,
                      critical: float | None) -> tuple[str, str] | None:
    """(field, problem) when warn/critical sit on the wrong side for the direction, else None.

    `higher`: critical ≤ warn ≤ goal. `lower`: goal ≤ warn ≤ critical.
    """
    if direction not in DIRECTIONS:
        return "direction", f"must be 'higher' or 'lower', got {direction!r}"
    worse = "below" if direction == "higher" else "above"
    sign = 1 if direction == "higher" else -1
    if warn is not None and sign * (warn - goal) > 0:
        return "warn", (f"warn {warn:g} must be at or {worse} the goal {goal:g} "
                        f"for direction '{direction}'")
    ref, ref_name = (warn, "warn") if warn is not None else (goal, "the goal")
    if critical is not None and sign * (critical - ref) > 0:
        return "critical", (f"critical {critical:g} must be at or {worse} {ref_name} {ref:g} "
                            f"for direction '{direction}'")
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """One configured target (before scope-pattern expansion)."""

    name: str
    kpi: str
    scope: str
    window: str
    goal: float
    direction: Direction = "higher"
    warn: float | None = None
    critical: float | None = None
    deadline: datetime | None = None  # timezone-aware

    def __post_init__(self) -> None:
        parse_scope_pattern(self.scope)
        if self.window not in TARGET_WINDOWS:
            raise ValueError(f"unknown window {self.window!r}; use one of "
                             f"{', '.join(TARGET_WINDOWS)}")
        problem = threshold_problem(self.direction, self.goal, self.warn, self.critical)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ValueError("deadline must carry a UTC offset")

    @property
    def deadline_ms(self) -> int | None:
        return None if self.deadline is None else round(self.deadline.timestamp() * 1000)

    @property
    def warn_threshold(self) -> float:
        """The effective warn threshold: `warn`, or the goal when none is configured."""
        return self.goal if self.warn is None else self.warn


@dataclass(frozen=True, slots=True)
class TargetResult:
    value: float | None
    attainment: float | None
    status: Status
    projected: float | None
    required_per_hour: float | None

    def as_dict(self) -> dict[str, float | str | None]:
        return {"value": self.value, "attainment": self.attainment, "status": self.status,
                "projected": self.projected, "required_per_hour": self.required_per_hour}


def attainment(goal: float, value: float | None, direction: str) -> float | None:
    """value ÷ goal (higher is better) or goal ÷ value (lower is better); None if undefined."""
    if value is None:
        return None
    num, den = (value, goal) if direction == "higher" else (goal, value)
    return None if den == 0 else num / den


def status_of(target: Target, value: float | None) -> Status:
    """ok / warn / critical for a value judged against the target's thresholds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no_data"
    sign = 1 if target.direction == "higher" else -1
    if target.critical is not None and sign * (value - target.critical) < 0:
        return "critical"
    if sign * (value - target.warn_threshold) < 0:
        return "warn"
    return "ok"


def evaluate(target: Target, value: float | None, *, now_ms: int, window_from_ms: int,
             window_to_ms: int) -> TargetResult:
    """Attainment, status and, with a deadline, the pace to the goal.

    With a deadline (meant for cumulative counts such as `qualified_leads` over `week`):

    * elapsed = min(now, window_to) − window_from; remaining = deadline − now (hours);
    * `projected` = value + value ÷ elapsed × remaining, i.e. the value at the deadline if the
      pace since the window started holds (None while elapsed is 0);
    * `required_per_hour` = max(0, goal − value) ÷ remaining: for `higher` what is still needed
      per hour, for `lower` the budget left per hour;
    * once the deadline has passed: projected = value, required_per_hour = None.

    Status is judged on `projected` when there is one, otherwise on the value.
    """
    if value is None:
        return TargetResult(None, None, "no_data", None, None)
    projected: float | None = None
    required: float | None = None
    deadline_ms = target.deadline_ms
    if deadline_ms is not None:
        remaining_ms = deadline_ms - now_ms
        elapsed_ms = min(now_ms, window_to_ms) - window_from_ms
        if remaining_ms <= 0:
            projected = value
        else:
            required = max(0.0, target.goal - value) / (remaining_ms / HOUR_MS)
            if elapsed_ms > 0:
                projected = value + value / elapsed_ms * remaining_ms
    judged = projected if projected is not None else value
    return TargetResult(
        value=value,
        attainment=attainment(target.goal, value, target.direction),
        status=status_of(target, judged),
        projected=projected,
        required_per_hour=required,
    )
