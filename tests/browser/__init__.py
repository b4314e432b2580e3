"""Shared by the wallboard browser tests and the OpenAPI conformance test: a real pipeline
(tansu broker, redis-server, `callkpi worker`, `callkpi serve`) fed by the simulator, and a
service configuration with targets, compliance and costs, so that every part of the API and the
page has something to show.

The simulated shift is longer than what is sent: the pipeline gets the traffic up to "now"
(agents on call, in wrap-up or paused, calls in progress), and `Traffic.catch_up` sends the next
stretch when a test needs new events to arrive.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import httpx

from stream.cli.embedded import Managed, free_port, wait_for_port
from stream.sim import Delivery, SimConfig, generate
from tests.harness import Service, make_service

MIN = 60_000
# A dialer that leaks the called party's number in an extra field (the contract ignores unknown
# fields): the tests check that none of these ever comes out of the API or the page.
LEAKED_FIELD = "called_number"
# A phone number in international format, as a page would show one ("+44 7700 900123").
PHONE_RE = re.compile(r"\+\d[\d \-().]{6,}\d")


# Agent cost per hour: the default, and the first campaign's own (the highest rate configured).
AGENT_COST_PER_HOUR = (21.0, 25.0)


def leaked_number(call_id: str) -> str:
    """A UK drama-range number (never a real subscriber) derived from the call id."""
    return f"+44 7700 9{sum(call_id.encode()) % 100000:05d}"


@dataclass
class Traffic:
    """The simulator's deliveries, handed out in delivery order up to a point in time."""

    cfg: SimConfig
    _rest: Iterator[Delivery]
    _next: Delivery | None = None
    sent: int = 0
    campaigns: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)
    leaked: set[str] = field(default_factory=set)

    def until(self, now_ms: int) -> tuple[list[bytes], list[bytes | None]]:
        """Every delivery due by `now_ms` not handed out yet (no faults: delivery time = ts)."""
        values: list[bytes] = []
        keys: list[bytes | None] = []
        while True:
            d = self._next if self._next is not None else next(self._rest, None)
            self._next = None
            if d is None:
                break
            if d.deliver_ms > now_ms:
                self._next = d
                break
            values.append(self._observe(d.value))
            keys.append(d.key)
        self.sent += len(values)
        return values, keys

    def _observe(self, value: bytes) -> bytes:
        event = json.loads(value)
        if event.get("campaign_id"):
            self.campaigns.add(event["campaign_id"])
        if event.get("team_id"):
            self.teams.add(event["team_id"])
        if event.get("type") == "call.dialed":
            event[LEAKED_FIELD] = leaked_number(event["call_id"])
            self.leaked.add(event[LEAKED_FIELD])
            return json.dumps(event, separators=(",", ":")).encode()
        return value


def simulated(now_ms: int, agents: int, minutes: int, seed: int = 7) -> Traffic:
    """A shift that began `minutes` ago and goes on for an hour more; abandon spike early on, so
    that compliance has something to warn about."""
    cfg = SimConfig(seed=seed, agents=agents, hours=minutes / 60 + 1, start_ms=now_ms - minutes * MIN,
                    scenario="abandon_spike", scenario_at=0.02)
    return Traffic(cfg, generate(cfg))


def center_timezone(now_ms: int) -> str:
    """A fixed-offset zone in which it is about noon now: `today` began hours before the traffic
    did and does not end while the tests run, whatever the time of day in UTC."""
    offset = 12 - time.gmtime(now_ms / 1000).tm_hour  # -11..12, all valid Etc/GMT zones
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


EXPERIMENT = "script-test"
"""The configured experiment (its variants carry no traffic: every number is empty)."""


def certain_limit(values: list[bytes], now_ms: int) -> tuple[str, str]:
    """The campaign with the highest 30-day abandon rate in `values` and a limit a quarter of
    that rate (as the decimal written in the file): it is critical now and still warns (≥ 80 %
    of the limit) after five times the connects. The simulated spike varies with the start time,
    and fixed limits left every campaign `ok` in a third of the draws (tests/browser/
    test_config.py)."""
    from tests.reference.calculator import Reference
    ref = Reference(values, now_ms=now_ms)
    rates = {}
    for c in ref.ids("campaign"):
        sums = ref.sums(f"campaign:{c}", now_ms - 30 * 86_400_000, now_ms + 1)
        if sums["connected"]:
            rates[c] = Fraction(int(sums["compliance_abandons"]), int(sums["connected"]))
    campaign = max(rates, key=lambda c: (rates[c], c), default=None)
    assert campaign is not None and rates[campaign] > 0, "the simulated traffic has no compliance abandon"
    return campaign, f"{math.floor(rates[campaign] / 4 * 10**6) / 10**6:.6f}"


def write_config(path: Path, now_ms: int, traffic: Traffic, values: list[bytes]) -> Path:
    """Targets on the big numbers, the campaigns and one team's agents; one target certain to be
    critical and one certain to warn (for the banner); a compliance group and one campaign
    certain to be critical (`certain_limit` over the traffic so far, `values`); cost rates."""
    campaigns = sorted(traffic.campaigns)
    first, team = campaigns[0], sorted(traffic.teams)[0]
    limits = {first: "0.02"}
    strict, limit = certain_limit(values, now_ms)
    limits[strict] = limit
    deadline = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now_ms / 1000 + 2 * 3600))

    def target(name: str, kpi: str, scope: str, window: str, goal: float, **extra: object) -> list[str]:
        lines = ["", "[[targets]]", f"name = {json.dumps(name)}", f'kpi = "{kpi}"',
                 f'scope = "{scope}"', f'window = "{window}"', f"goal = {goal}"]
        return lines + [f"{k} = {json.dumps(v)}" for k, v in extra.items()]

    lines = [
        f'timezone = "{center_timezone(now_ms)}"',
        "",
        "[compliance]",
        "default_limit = 0.03",
        "[compliance.campaign_limits]",
        *(f'"{c}" = {v}' for c, v in limits.items()),
        "[[compliance.groups]]",
        'name = "pooled"',
        f"campaigns = {json.dumps(campaigns[-2:])}",
        "limit = 0.03",
        "",
        "[costs]",
        'currency = "EUR"',
        f"agent_cost_per_hour = {AGENT_COST_PER_HOUR[0]}",
        "telephony_cost_per_minute = 0.01",
        "cost_per_dial = 0.002",
        f'[costs.campaigns."{first}"]',
        f"agent_cost_per_hour = {AGENT_COST_PER_HOUR[1]}",
        *target("Connect rate today", "connect_rate", "center", "today", 0.30,
                direction="higher", warn=0.25, critical=0.20),
        *target("Abandon rate per campaign", "abandon_rate", "campaign:*", "today", 0.02,
                direction="lower", warn=0.03, critical=0.05),
        *target("AHT today", "aht_seconds", "center", "today", 180,
                direction="lower", warn=240, critical=360),
        *target("Conversions by tonight", "conversions", "center", "today", 400,
                deadline=deadline),
        *target("Productivity", "calls_per_agent_hour", f"agent:*@team:{team}", "1h", 8, warn=6),
        # Certain: any dial count is critical against this goal, any connect rate below 100 %
        # (and at least 0) warns.
        *target("Stretch: dials today", "dialed", "center", "today", 1e9, critical=1e8),
        *target(f"Perfect connects {first}", "connect_rate", f"campaign:{first}", "today", 1.0,
                warn=1.0, critical=0.0),
        "",
        "[[experiments]]",
        f'name = "{EXPERIMENT}"',
        'variants = ["script-a", "script-b"]',
        'primary_kpi = "conversion_rate"',
        "minimum_detectable_effect = 0.2",
        f"campaigns = {json.dumps([first])}",
        "[[experiments.guardrails]]",
        'kpi = "aht_seconds"',
        'direction = "lower"',
        "tolerance = 0.2",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Fed:
    """A running pipeline with the simulator's traffic up to now committed."""

    svc: Service
    traffic: Traffic
    extra_servers: list[Managed] = field(default_factory=list)

    def catch_up(self) -> int:
        """Publish the simulated traffic due since the last call; wait until it is committed."""
        values, keys = self.traffic.until(int(time.time() * 1000))
        if values:
            self.svc.publish(values, keys)
        self.svc.wait_consumed(self.traffic.sent, timeout=120)
        return len(values)

    def extra_server(self, env: dict[str, str]) -> str:
        """Another `callkpi serve` over the same Redis (e.g. with an access token); its URL."""
        port = free_port()
        m = self.svc.spawn(f"serve-{port}", ["serve", "--port", str(port)], env)
        self.extra_servers.append(m)
        wait_for_port(port, timeout=30, proc=m.proc)
        return f"http://127.0.0.1:{port}"

    def restart_server(self) -> None:
        """Stop `callkpi serve` and start it again on the same port (the page must reconnect)."""
        assert self.svc.server is not None
        self.svc.server.stop()
        self.svc.start_server()

    def get(self, path: str, **params: str) -> dict:
        return self.svc.get(path, **params)

    def stop(self) -> None:
        for m in self.extra_servers:
            m.stop()
        self.svc.stop()


def start_fed_pipeline(workdir: Path, agents: int = 20, minutes: int = 45,
                       extra_env: dict[str, str] | None = None) -> Fed:
    """Broker, Redis, one worker and `serve` with the test configuration, fed up to now."""
    workdir.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    traffic = simulated(now, agents, minutes)
    values, keys = traffic.until(now)
    config = write_config(workdir / "callkpi.toml", now, traffic, values)
    svc = make_service(workdir / "run", {"CALLKPI_CONFIG": str(config), **(extra_env or {})})
    fed = Fed(svc, traffic)
    try:
        svc.start_worker()
        svc.start_server()
        svc.publish(values, keys)
        svc.wait_consumed(traffic.sent, timeout=180)
        wait_for_port(svc.http_port, timeout=30, proc=svc.server.proc if svc.server else None)
        httpx.get(svc.url + "/api/v1/health", timeout=30).raise_for_status()
    except BaseException:
        fed.stop()
        raise
    return fed
