"""Scopes: `center`, `campaign:<id>`, `team:<id>`, `agent:<id>`, `caller_id:<did>`, `list:<id>`,
`variant:<id>` (contract 1.1: the experiment arm of the call's `call.dialed`)."""

from __future__ import annotations

from dataclasses import dataclass

from stream.kpi.errors import QueryError

SCOPE_KINDS = ("center", "campaign", "team", "agent", "caller_id", "list", "variant")


class ScopeError(QueryError):
    """An unparseable scope (an HTTP 400); the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Scope:
    kind: str
    ident: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "center" else f"{self.kind}:{self.ident}"

    def includes_live_agent(self, agent_id: str, live: dict) -> bool:
        """Whether an agent's open state interval counts in this scope (agent time rules)."""
        if self.kind == "center":
            return True
        if self.kind == "agent":
            return agent_id == self.ident
        if self.kind == "team":
            return live.get("team") == self.ident
        if self.kind == "campaign":
            return live.get("campaign") == self.ident
        return False  # caller_id, list and variant scopes have no agent time


def parse_scope(text: str | None) -> Scope:
    if text is None or not text.strip():
        return Scope("center")
    text = text.strip()
    if text == "center":
        return Scope("center")
    kind, sep, ident = text.partition(":")
    if not sep or kind not in SCOPE_KINDS[1:] or not ident.strip() or len(ident) > 128:
        raise ScopeError(f"bad scope {text!r}: use center, campaign:<id>, team:<id>, agent:<id>, "
                         "caller_id:<did>, list:<id> or variant:<id>")
    return Scope(kind, ident.strip())
