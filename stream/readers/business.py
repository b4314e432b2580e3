"""Targets, compliance and cost: the KPIs that need configuration, served from the same store.

The arithmetic lives in `stream.kpi.{targets,compliance,cost}` (pure); this module only reads the
window sums those functions need and shapes the answers for the API and the exporter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric

from stream.contract import format_ts
from stream.kpi.catalog import compute_all
from stream.kpi.compliance import compliance_report, day_fraction
from stream.kpi.cost import center_cost, cost_kpis
from stream.kpi.scopes import Scope, parse_scope
from stream.kpi.targets import expand_scopes, window_range
from stream.kpi.windows import Range, WindowError, check_readable, resolve_window
from stream.readers.auth import Grant, grant_of
from stream.readers.query import openings_of
from stream.readers.sums import ALL_COUNTERS, OpenTime, window_counters

COST_KPIS = ("cost", "cost_per_call", "cost_per_lead", "roi")
Reader = Callable[[list[Scope], Range, int], Awaitable[dict[Scope, dict[str, float]]]]
"""Window counter sums of scopes: `Query.counters` for the API; the exporter passes readers
that sum inside Redis (`stream.readers.sums`), which a scrape every 15 s can afford."""
COMPLIANCE_COUNTERS = ("abandoned", "agent_connected", "inbound_agent_connected", "am_dispositions",
                       "compliance_abandons", "connected")
"""What `stream.kpi.compliance.compliance_kpis` reads (tests/unit/test_exporter.py checks it):
a 30-day window is 720 hour fields per counter, so the exporter reads only these."""
STATUS_VALUE = {"ok": 0, "warn": 1, "critical": 2}


async def many_counters(store: Any, scopes: list[Scope], r: Range, now: int
                        ) -> dict[Scope, dict[str, float]]:
    """`Query.counters` of many scopes in two reads (window sums, live agents), with each
    agent's open time computed once, not once per scope: a list of campaigns costs no
    campaigns × agents work (issue 9, item 17)."""
    sums = await store.window_counters([str(s) for s in scopes], r)
    agents = (await store.live()).agents
    open_time = OpenTime(agents, now, openings_of(store, agents))
    out = {}
    for s in scopes:
        c = dict(sums[str(s)])
        for name, ms in open_time.of(s, r).items():
            c[name] = c.get(name, 0) + ms
        out[s] = c
    return out


class Business:
    def __init__(self, ctx: Any, config: Any) -> None:
        self.ctx = ctx
        self.config = config

    # -- cost ---------------------------------------------------------------------------------

    def _reader(self, read: Reader | None) -> Reader:
        if read is not None:
            return read

        async def many(scopes: list[Scope], r: Range, now: int) -> dict[Scope, dict[str, float]]:
            return await many_counters(self.ctx.store, scopes, r, now)
        return many

    async def cost(self, scope: Scope, counters: dict[str, float], r: Range, now: int,
                   read: Reader | None = None) -> dict:
        """Campaign rates for a campaign; for the center Σ campaigns at their rates plus the
        rest at the default rates; any other scope at the default rates."""
        costs = self.config.costs
        if scope.kind == "campaign":
            return cost_kpis(counters, costs.rates_for(scope.ident))
        if scope.kind == "center":
            ids = (await self.ctx.store.scopes(now))["campaign"]
            per = await self._reader(read)([Scope("campaign", c) for c in ids], r, now)
            return center_cost(counters, {s.ident: c for s, c in per.items()}, costs)
        return cost_kpis(counters, costs.default)

    async def extra_kpis(self, scope: Scope, r: Range, now: int) -> dict[str, Any]:
        counters = (await self.ctx.query.counters([scope], r, now))[scope]
        return await self.cost(scope, counters, r, now)

    async def kpi_values(self, scopes: list[Scope], r: Range, now: int,
                         read: Reader | None = None,
                         counters: dict[Scope, dict[str, float]] | None = None) -> dict[Scope, dict]:
        """Catalog and cost KPIs; `counters`: the scopes' window sums when already read."""
        if counters is None:
            counters = await self._reader(read)(scopes, r, now)
        out = {}
        for s, c in counters.items():
            values = compute_all(c)
            values.update(await self.cost(s, c, r, now, read))
            out[s] = values
        return out

    # -- targets ------------------------------------------------------------------------------

    async def targets(self, now: int, read: Reader | None = None) -> list[dict[str, Any]]:
        from stream.kpi.targets import evaluate
        known = await self.ctx.store.scopes(now)
        live_agents, _ = await self.ctx.store.live()
        team_of = {a: v["team"] for a, v in live_agents.items() if v.get("team")}
        rows = []
        for t in self.config.targets:
            start, end = window_range(t.window, now, self.ctx.tz)
            r = Range(start, end)
            scopes = [parse_scope(s) for s in expand_scopes(t.scope, known, team_of)]
            try:  # whole local days from day buckets: `week` in Asia/Kolkata too
                check_readable(r, now, self.ctx.tz)
                refused = None
            except WindowError as exc:
                refused = f"window {t.window!r} cannot be answered exactly now: {exc}"
            values = await self.kpi_values(scopes, r, now, read) if scopes and not refused else {}
            for s in scopes:
                value = values[s].get(t.kpi) if not refused else None
                result = evaluate(t, value, now_ms=now, window_from_ms=start, window_to_ms=end)
                rows.append({
                    "name": t.name, "kpi": t.kpi, "scope": str(s), "window": t.window,
                    "goal": t.goal, "direction": t.direction, "warn": t.warn,
                    "critical": t.critical,
                    "deadline": t.deadline.isoformat() if t.deadline else None,
                    **result.as_dict(),
                    **({"error": refused} if refused else {}),
                })
        return rows

    # -- compliance ---------------------------------------------------------------------------

    async def compliance(self, now: int, read: Reader | None = None) -> list[dict[str, Any]]:
        ids = (await self.ctx.store.scopes(now))["campaign"]
        scopes = [Scope("campaign", c) for c in ids]
        read = self._reader(read)
        window = await read(scopes, resolve_window("30d", now, self.ctx.tz), now)
        today = await read(scopes, resolve_window("today", now, self.ctx.tz), now)
        return compliance_report({s.ident: c for s, c in window.items()},
                                 {s.ident: c for s, c in today.items()}, self.config,
                                 day_fraction=day_fraction(now, self.ctx.tz))

    def compliance_reader(self) -> Reader:
        """The compliance report's sums: its counters only (no agent time among them), summed
        inside Redis, `today` of campaigns from their day hashes (`stream.readers.sums`), as the
        exporter reads them: integer counters, so the same report as `Query.counters` gives
        (`tests/integration/test_exporter_sums.py`), without parsing 30 days of hour fields of
        every counter here."""
        async def read(scopes: list[Scope], r: Range, at: int) -> dict[Scope, dict[str, float]]:
            return (await window_counters(self.ctx.store, scopes, {"w": r}, COMPLIANCE_COUNTERS, None))["w"]
        return read

    # -- HTTP and Prometheus ------------------------------------------------------------------

    def routes(self) -> web.RouteTableDef:
        r = web.RouteTableDef()

        @r.get("/api/v1/targets")
        async def targets(request: web.Request) -> web.Response:
            now = self.ctx.now_ms()
            rows = await self.targets(now)
            grant = grant_of(request)
            if grant.restricted:
                live_agents = (await self.ctx.store.live()).agents
                rows = [t for t in rows if grant.sees(parse_scope(t["scope"]), live_agents)]
            return web.json_response({"now": format_ts(now), "targets": rows})

        @r.get("/api/v1/compliance")
        async def compliance(request: web.Request) -> web.Response:
            now = self.ctx.now_ms()
            entries = [e for e in await self.compliance(now, self.compliance_reader())
                       if visible_compliance(grant_of(request), e)]
            return web.json_response({"now": format_ts(now), "campaigns": entries})

        return r

    async def metric_families(self, now: int, open_time: OpenTime | None = None) -> list[Metric]:
        """Compliance, target and cost families; `open_time`: the scrape's, when it has one."""
        if open_time is None:
            agents = (await self.ctx.store.live()).agents
            open_time = OpenTime(agents, now, openings_of(self.ctx.store, agents))

        def reader(counters: tuple[str, ...], agent_time: OpenTime | None) -> Reader:
            async def read(scopes: list[Scope], r: Range, at: int) -> dict[Scope, dict[str, float]]:
                return (await window_counters(self.ctx.store, scopes, {"w": r}, counters, agent_time))["w"]
            return read
        read = reader(ALL_COUNTERS, open_time)

        fams: dict[str, GaugeMetricFamily] = {
            name: GaugeMetricFamily(f"callcenter_compliance_{name}", help_, labels=["campaign"])
            for name, help_ in (
                ("us_abandon_rate_30d_ratio",
                 "compliance_abandons ÷ connected over the rolling 30 days (FCC/FTC)"),
                ("uk_abandon_rate_today_ratio",
                 "(abandoned − machine estimate) ÷ (agent_connected + abandoned), local day (Ofcom)"),
                ("abandon_limit_ratio", "the configured abandon-rate limit"),
                ("abandon_headroom", "compliance abandons the 30-day window can still take"),
                ("abandon_rate_projected_ratio", "rate at the end of the window at today's pace"),
            )}
        keys = {"us_abandon_rate_30d_ratio": "us_abandon_rate_30d",
                "uk_abandon_rate_today_ratio": "uk_abandon_rate_today",
                "abandon_limit_ratio": "limit", "abandon_headroom": "abandon_headroom",
                "abandon_rate_projected_ratio": "abandon_rate_projected"}
        for entry in await self.compliance(now, reader(COMPLIANCE_COUNTERS, None)):
            for fam_name, key in keys.items():
                if entry.get(key) is not None:
                    fams[fam_name].add_metric([entry["campaign_id"]], float(entry[key]))
        status = GaugeMetricFamily("callcenter_target_status", "0 ok, 1 warn, 2 critical",
                                   labels=["target", "kpi", "scope"])
        attain = GaugeMetricFamily("callcenter_target_attainment_ratio",
                                   "value ÷ goal (higher is better) or goal ÷ value (lower)",
                                   labels=["target", "kpi", "scope"])
        for row in await self.targets(now, read):
            labels = [row["name"], row["kpi"], row["scope"]]
            if row["status"] in STATUS_VALUE:
                status.add_metric(labels, STATUS_VALUE[row["status"]])
            if row["attainment"] is not None:
                attain.add_metric(labels, row["attainment"])
        cpl = GaugeMetricFamily("callcenter_window_cost_per_lead", "cost ÷ qualified_leads",
                                labels=["window", "scope_kind", "scope_id"])
        center = Scope("center")
        today = resolve_window("today", now, self.ctx.tz)
        value = (await self.kpi_values([center], today, now, read))[center].get("cost_per_lead")
        if value is not None:
            cpl.add_metric(["today", "center", ""], value)
        return [*fams.values(), status, attain, cpl]


def visible_compliance(grant: Grant, entry: dict[str, Any]) -> bool:
    """A campaign's entry when the token sees the campaign; a group's (its campaigns' counters
    pooled) only when it sees every campaign of the group."""
    return all(grant.matches("campaign", c) for c in entry["campaigns"])
