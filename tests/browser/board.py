"""Reading the wallboard through its test hooks (docs/wallboard.md) and checking it against the API.

`read_board` takes one snapshot of everything the page shows; `api_view` fetches what the page
fetches; `differences` lists every number on the page that is not the API's.

Everything counted from events must be equal. Numbers that depend on the clock moved between the
page's fetch and ours (the tests keep the store still while comparing, so nothing else moved):
- times in state must all be the API's at one common instant, a little before ours: that lag is
  the age of the page's agent list;
- agent-hour rates and occupancy are the catalog's formulas over our agent-time counters wound
  back by that lag in each agent's current state: exact again;
- the longest wait may only be shorter, by at most the page's age; ROI may only be higher, by at
  most what the cost of every staffed agent at the highest configured rate over the page's age
  makes it (cost grows with staffed time, revenue only with events).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from stream.kpi.catalog import KPI_BY_NAME
from tests.browser import AGENT_COST_PER_HOUR
from tests.browser.cdp import Page

SEVERITY = {"ok": 1, "warn": 2, "critical": 3}
BIG_FROM_KPIS = ("connect_rate", "abandon_rate", "aht_seconds", "conversions", "revenue",
                 "conversion_rate")
BIG_FROM_CALLS = {"calls_waiting": "waiting", "calls_ringing": "ringing", "calls_talking": "talking"}
AGENT_STATES = ("available", "on_call", "wrap_up", "paused")
AGENT_EXACT = ("handled", "aht_seconds", "conversions")
ANSWER_CACHE_S = 1.0
"""`api.response_cache_seconds` (its default): how long serve shares one answer among identical requests."""
AGENT_TIME = ("available", "on_call", "wrap_up", "paused")  # the states that accrue staffed time
CARD_KPIS = ("connect_rate", "abandon_rate", "calls_waiting", "aht_seconds", "conversions", "revenue")

BOARD_JS = r"""(() => {
  const q = (s, root) => Array.from((root || document).querySelectorAll(s));
  const kpis = (root) => Object.fromEntries(q("[data-kpi]", root).map((n) => [n.dataset.kpi, n.dataset.value]));
  return {
    updatedAt: document.body.dataset.updatedAt,
    scope: document.body.dataset.scope,
    conn: document.getElementById("conn").dataset.state,
    big: kpis(document.getElementById("bignums")),
    headroomCampaign: document.getElementById("kpi-abandon_headroom").dataset.campaignId ?? null,
    cards: Object.fromEntries(q("#bignums .card").map((c) => [c.id.replace(/^card-/, ""), c.dataset.status ?? null])),
    agents: q("#agent-grid [data-agent-id]").map((a) => ({
      id: a.dataset.agentId, state: a.dataset.state, team: a.dataset.teamId ?? null, kpis: kpis(a)})),
    campaigns: q("#campaign-table tr[data-campaign-id]").map((r) => ({id: r.dataset.campaignId, kpis: kpis(r)})),
    leaders: Object.fromEntries(["lead-conversions", "lead-handled"].map((id) => [id,
      q("#" + id + " li[data-leader-id]").map((li) => [li.dataset.leaderId, li.querySelector("[data-kpi]").dataset.value])])),
    alerts: q("#alerts li[data-alert]").map((li) => ({kind: li.dataset.alert, key: li.dataset.key,
      severity: li.classList.contains("critical") ? "critical" : (li.classList.contains("warn") ? "warn" : null),
      shown: !li.hidden && li.getBoundingClientRect().height > 0})),
    more: (document.querySelector("#alerts li.more") || {}).textContent ?? null,
  };
})()"""


@dataclass
class View:
    """The API answers the page is built from, fetched at `at` (epoch seconds)."""

    at: float
    kpis: dict[str, Any]
    live: dict[str, Any]
    agents: dict[str, Any]
    targets: dict[str, Any]
    compliance: dict[str, Any]
    campaigns: dict[str, Any]


def client(base_url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=60)


def api_view(base_url: str, scope: str, token: str | None = None) -> View:
    """The six requests the page makes for `scope`; `at` is when the last one was answered."""
    with client(base_url, token) as c:
        def get(path: str, **params: str) -> dict[str, Any]:
            r = c.get(f"/api/v1/{path}", params=params)
            r.raise_for_status()
            return r.json()
        answers = (get("kpis", scope=scope, window="today"), get("live", scope=scope),
                   get("agents", scope=scope, window="today"), get("targets"), get("compliance"),
                   get("campaigns", window="today"))
        return View(time.time(), *answers)


def read_board(page: Page) -> dict[str, Any]:
    return page.evaluate(BOARD_JS)


def wait_rendered(page: Page, after: str = "", timeout: float = 60) -> str:
    """Wait until the page has rendered with every request successful (after `after`, if given)."""
    return page.wait_for(f"(document.body.dataset.updatedAt || '') > {json.dumps(after)} "
                         f"&& document.body.dataset.updatedAt", timeout,
                         f"the wallboard to render{' again' if after else ''}")


def iso(epoch_s: float) -> str:
    """The page's own time format (`Date.toISOString`), so that times compare as strings."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def settled(page: Page, base_url: str, scope: str, token: str | None = None,
            store_still_since: float = 0.0) -> tuple[dict, View]:
    """A snapshot of the page (one script run: one consistent render) whose requests were all
    sent after the store last changed (`store_still_since`, epoch seconds: else a render can mix
    answers from before and after), then the API's answers. The tests keep the store still while
    comparing, so both show the same events; what moved with the clock in between is allowed for
    by `differences`."""
    wait_rendered(page)
    page.wait_for(f"(document.body.dataset.requestedAt || '') >= {json.dumps(iso(store_still_since))}",
                  30, "a render of the page requested after the store last changed")
    board = read_board(page)
    return board, api_view(base_url, scope, token)


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Diff:
    """Collects every mismatch, so one failure shows all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def value(self, where: str, shown: str | None, expected: Any, rel: float = 1e-12,
              abs_: float = 0.0) -> None:
        if shown is None:
            self.problems.append(f"{where}: not on the page (API {expected!r})")
        elif expected is None:
            if shown != "":
                self.problems.append(f"{where}: page {shown!r}, API null")
        elif shown == "" or not math.isclose(float(shown), float(expected), rel_tol=rel, abs_tol=abs_):
            self.problems.append(f"{where}: page {shown!r}, API {expected!r}")

    def lag(self, where: str, shown: str | None, expected: float | None, most: float,
            older: float = 0.0) -> bool:
        """A clock-driven number the page took from an earlier answer: behind ours by 0..`most`
        (or ahead by up to `older`, where our answer may be a cached one older than the page's)."""
        if shown in (None, "") or expected is None:
            self.value(where, shown, expected)
            return False
        if not -0.001 - older <= expected - float(shown) <= most:
            self.problems.append(f"{where}: page {shown!r}, API {expected!r} (at most {most:.1f} s later)")
            return False
        return True

    def between(self, where: str, shown: str | None, low: float | None, high: float | None) -> None:
        if shown in (None, "") or low is None or high is None:
            self.value(where, shown, low)
        elif not low - 1e-9 * abs(low) <= float(shown) <= high + 1e-9 * abs(high):
            self.problems.append(f"{where}: page {shown!r}, expected {low!r}..{high!r}")

    def equal(self, where: str, shown: Any, expected: Any) -> None:
        if shown != expected:
            self.problems.append(f"{where}: page {shown!r}, API {expected!r}")


def worst_status(view: View, kpi: str, scope: str) -> str | None:
    found = [t["status"] for t in view.targets["targets"]
             if t["kpi"] == kpi and t["scope"] == scope and t["status"] in SEVERITY]
    return max(found, key=SEVERITY.__getitem__) if found else None


def compliance_entry(view: View, scope: str) -> dict[str, Any] | None:
    """The entry the abandon card shows: the campaign's own, or for the center the least headroom."""
    entries = view.compliance["campaigns"]
    if scope.startswith("campaign:"):
        return next((e for e in entries if e["campaign_id"] == scope[9:] and not e["group"]), None)
    if scope == "center":
        rooms = [e for e in entries if e["abandon_headroom"] is not None]
        return min(rooms, key=lambda e: e["abandon_headroom"]) if rooms else None
    return None


def leaders(agents: list[dict[str, Any]], kpi: str, other: str) -> list[list[str]]:
    """The leaderboard the page should show: top 10 by `kpi`, then `other`, then agent id."""
    k = lambda a, name: a["kpis"].get(name) or 0  # noqa: E731
    rows = sorted((a for a in agents if k(a, kpi) > 0),
                  key=lambda a: (-k(a, kpi), -k(a, other), a["agent_id"]))[:10]
    return [[a["agent_id"], str(a["kpis"][kpi])] for a in rows]


def roi_before(view: View, seconds: float) -> float | None:
    """The highest ROI the scope can have had `seconds` before our answer: its cost was lower by
    at most every staffed agent at the highest configured rate for that long."""
    k = view.kpis["kpis"]
    if k["roi"] is None:
        return None
    staffed = sum(view.live["agents"]["by_state"].values())
    cost = max(k["cost"] - staffed * max(AGENT_COST_PER_HOUR) * seconds / 3600, 1e-9)
    return (k["revenue"] - cost) / cost


def agent_time_kpis(agent: dict[str, Any], lag_ms: int) -> dict[str, float | None]:
    """Occupancy and calls per agent-hour `lag_ms` before the API's answer: the agent's current
    state had accrued that much less time (and so had staffed time)."""
    k = agent["kpis"]
    counters = {f"{s}_ms": k[f"{s}_seconds"] * 1000 for s in AGENT_TIME}
    counters["staffed_ms"] = k["staffed_seconds"] * 1000
    counters["handled"] = k["handled"]
    if agent["state"] in AGENT_TIME:
        counters[f"{agent['state']}_ms"] -= lag_ms
        counters["staffed_ms"] -= lag_ms
    return {name: KPI_BY_NAME[name].compute(counters) for name in ("calls_per_agent_hour", "occupancy")}


def differences(board: dict[str, Any], view: View) -> list[str]:
    """Every number on the page compared with the API's (see the module docstring)."""
    d = Diff()
    scope = view.kpis["scope"]
    d.equal("scope", board["scope"], scope)
    # The page fetched before it rendered (by at most its 10 s request timeout); we fetched after,
    # and our last answer came at `view.at`.
    drift = max(0.0, view.at - _seconds(board["updatedAt"])) + 12.0
    big, kpis = board["big"], view.kpis["kpis"]
    for name in BIG_FROM_KPIS:
        d.value(f"big {name}", big.get(name), kpis[name])
    d.between("big roi", big.get("roi"), kpis["roi"], roi_before(view, drift))
    calls = view.live["calls"]
    for name, key in BIG_FROM_CALLS.items():
        d.value(f"big {name}", big.get(name), calls[key])
    d.lag("big longest_wait_seconds", big.get("longest_wait_seconds"),
          calls["longest_wait_seconds"], drift)
    by_state = view.live["agents"]["by_state"]
    for s in AGENT_STATES:
        d.value(f"big agents_{s}", big.get(f"agents_{s}"), by_state.get(s, 0))
    entry = compliance_entry(view, scope)
    d.value("big abandon_headroom", big.get("abandon_headroom"), entry and entry["abandon_headroom"])
    d.value("big us_abandon_rate_30d", big.get("us_abandon_rate_30d"), entry and entry["us_abandon_rate_30d"])
    if entry is not None and scope == "center":
        d.equal("headroom campaign", board["headroomCampaign"], entry["campaign_id"])
    for kpi in CARD_KPIS:
        d.equal(f"card {kpi} status", board["cards"].get(kpi), worst_status(view, kpi, scope))

    api_agents = {a["agent_id"]: a for a in view.agents["agents"]}
    d.equal("agent grid ids", sorted(a["id"] for a in board["agents"]), sorted(api_agents))
    d.equal("agent grid has no duplicates", len(board["agents"]), len({a["id"] for a in board["agents"]}))
    lags: dict[str, float] = {}
    for row in board["agents"]:
        a = api_agents.get(row["id"])
        if a is None:
            continue
        where = f"agent {row['id']}"
        d.equal(f"{where} state", row["state"], a["state"])
        d.equal(f"{where} team", row["team"], a["team_id"])
        for name in AGENT_EXACT:
            d.value(f"{where} {name}", row["kpis"].get(name), a["kpis"][name])
        shown = row["kpis"].get("seconds_in_state")
        # the page asks the grid for its few KPIs, we for all of them: two answers, each shared
        # for up to `response_cache_seconds` (1 s), so ours may be up to that much older
        if d.lag(f"{where} seconds_in_state", shown, a["seconds_in_state"], drift, older=ANSWER_CACHE_S):
            lags[row["id"]] = a["seconds_in_state"] - float(shown)
    if lags and max(lags.values()) - min(lags.values()) > 0.002:
        d.problems.append(f"times in state are not of one instant: lags {min(lags.values()):.3f}"
                          f"..{max(lags.values()):.3f} s")
    lag_ms = round(sum(lags.values()) / len(lags) * 1000) if lags else 0
    for row in board["agents"]:
        a = api_agents.get(row["id"])
        if a is not None:
            then = agent_time_kpis(a, lag_ms)
            for name, value in then.items():
                d.value(f"agent {row['id']} {name} ({lag_ms} ms before ours)", row["kpis"].get(name),
                        value, rel=1e-9)
    agent_rows = view.agents["agents"]
    d.equal("top conversions", board["leaders"]["lead-conversions"],
            leaders(agent_rows, "conversions", "handled"))
    d.equal("top handled", board["leaders"]["lead-handled"], leaders(agent_rows, "handled", "conversions"))

    api_campaigns = {c["campaign_id"]: c["kpis"] for c in view.campaigns["campaigns"]}
    rooms = {e["campaign_id"]: e["abandon_headroom"] for e in view.compliance["campaigns"] if not e["group"]}
    d.equal("campaign rows", sorted(r["id"] for r in board["campaigns"]), sorted(api_campaigns))
    for row in board["campaigns"]:
        k = api_campaigns.get(row["id"], {})
        for name in ("dialed", "connect_rate", "abandon_rate", "conversions", "revenue"):
            d.value(f"campaign {row['id']} {name}", row["kpis"].get(name), k.get(name))
        d.value(f"campaign {row['id']} abandon_headroom", row["kpis"].get("abandon_headroom"),
                rooms.get(row["id"]))
    return d.problems


def expected_alerts(view: View) -> list[tuple[str, str, str]]:
    """(kind, key, severity) of every target and compliance entry in warn or critical."""
    out = [("target", f"{t['name']}|{t['scope']}", t["status"]) for t in view.targets["targets"]
           if t["status"] in ("warn", "critical")]
    out += [("compliance", str(c["campaign_id"]), c["status"]) for c in view.compliance["campaigns"]
            if c["status"] in ("warn", "critical")]
    return sorted(out)
