"""Access control: named API tokens (stored as sha256 hashes), each optionally restricted to
scopes, and who may read /metrics.

A request's token is hashed and compared with every configured hash in constant time
(`hmac.compare_digest`, and every hash is compared, whichever matches), so neither the token nor
which entry it matched leaks through timing. A restricted token sees only the scopes its patterns
match; everything else is answered as if it did not exist (lists leave it out, a direct request
is a 403 that says the same for a scope that exists and one that does not).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from stream.kpi.config_file import ApiConfig
from stream.kpi.scopes import Scope

LEGACY_TOKEN_NAME = "CALLKPI_API_TOKEN"


def hash_token(token: str) -> str:
    """What the configuration file stores for a token: its sha256, 64 hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()


def _pattern_re(pattern: str) -> re.Pattern[str]:
    """`campaign:energy-*` → a regex over `<kind>:<id>`; only `*` is special."""
    return re.compile("".join(".*" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", pattern)), re.DOTALL)


@dataclass(frozen=True)
class Grant:
    """What one token may read. `patterns` None: every scope (unrestricted)."""

    name: str
    patterns: tuple[str, ...] | None
    metrics: bool
    _compiled: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, name: str, patterns: Iterable[str] | None, metrics: bool) -> Grant:
        pats = None if patterns is None else tuple(patterns)
        return cls(name, pats, metrics, tuple(_pattern_re(p) for p in pats or ()))

    @property
    def restricted(self) -> bool:
        return self.patterns is not None

    def matches(self, kind: str, ident: str = "") -> bool:
        """Whether a pattern names this scope itself (no agent membership)."""
        if self.patterns is None:
            return True
        text = "center" if kind == "center" else f"{kind}:{ident}"
        return any(p.fullmatch(text) for p in self._compiled)

    def sees(self, scope: Scope, members: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
        """Whether this token may read `scope`. An agent is visible when a pattern names it, or
        when its membership (`memberships`: `team`, `campaign`) is in a visible team or campaign
        (a supervisor sees the agents working for them)."""
        if self.matches(scope.kind, scope.ident):
            return True
        if scope.kind == "agent" and members is not None:
            return self.sees_member(members.get(scope.ident))
        return False

    def sees_member(self, member: Mapping[str, Any] | None) -> bool:
        if member is None:
            return False
        return bool((member.get("team") and self.matches("team", member["team"]))
                    or (member.get("campaign") and self.matches("campaign", member["campaign"])))

    def cache_key(self) -> str:
        """Requests of tokens with the same rights may share one cached answer."""
        return "*" if self.patterns is None else "\x00".join(sorted(self.patterns))


async def memberships(store: Any, agents: Iterable[str] | None = None
                      ) -> dict[str, Mapping[str, Any]]:
    """Each agent's team and campaign as a grant sees them (`agents` None: every agent the
    store has a record of): a logged-in agent's live state; else its stored record's team (the
    team its whole history counts for, since a team move takes it along), so a supervisor's
    rankings and series of past periods keep the agents who have logged off since. A logged-off
    agent has no campaign: counters are kept per scope, not per agent and campaign."""
    live: dict[str, Mapping[str, Any]] = dict((await store.live()).agents)
    if agents is None:
        raw = await store.redis.hgetall(store.layout.key("agents"))
        records = {a: json.loads(v) for a, v in raw.items() if a not in live}
    else:
        parts = await store.agent_record_parts(a for a in agents if a not in live)
        records = {a: states for a, (states, _) in parts.items() if states is not None}
    out: dict[str, Mapping[str, Any]] = {a: {"team": rec.get("t")} for a, rec in records.items()}
    out.update(live)
    return out


OPEN = Grant.of("", None, True)
"""Access control off (no token configured): everything is readable, as before."""
GRANT = web.RequestKey("grant", Grant)


def grant_of(request: web.Request) -> Grant:
    """The grant the auth middleware attached (OPEN when there is none, e.g. in-process use)."""
    return request.get(GRANT, OPEN)


class Access:
    """The configured tokens, and the checks the middleware makes."""

    def __init__(self, api: ApiConfig, legacy_token: str = "") -> None:
        entries = [(t.sha256, Grant.of(t.name, t.scopes, t.metrics)) for t in api.tokens]
        if legacy_token:  # CALLKPI_API_TOKEN: unrestricted, as it always was, /metrics included
            entries.append((hash_token(legacy_token), Grant.of(LEGACY_TOKEN_NAME, None, True)))
        self._entries = [(digest.encode(), grant) for digest, grant in entries]
        self.enabled = bool(self._entries)
        self.metrics_open = api.metrics == "open" or not self.enabled

    def identify(self, given: str) -> Grant | None:
        """The grant of a presented token, or None for a missing or unknown one."""
        if not self.enabled:
            return OPEN
        if not given:
            return None
        digest = hash_token(given).encode()
        found: Grant | None = None
        for configured, grant in self._entries:  # no early exit: constant time in the match
            if hmac.compare_digest(digest, configured):
                found = grant
        return found
