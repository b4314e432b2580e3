"""Access control (issue 9, item 18), in process (aiohttp's test server over a real redis-server
filled by the worker's batch step from the simulator): named tokens from the configuration file,
stored as sha256 hashes, restricted to scope patterns; every endpoint with an allowed and a
forbidden token; answers never name a scope the token may not see; /metrics with its own token;
CALLKPI_API_TOKEN still an unrestricted token."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from stream.cli.commands import build_api
from stream.cli.embedded import free_port, start_redis
from stream.readers.auth import hash_token
from stream.readers.service import create_service_app
from stream.settings import Settings
from tests.harness import bench_module

pytestmark = pytest.mark.integration
OWN = "insure-renew"  # the restricted token's campaign (matched by the pattern campaign:insure-*)
OWN_TEAM = "team-01"
TOKENS = {"supervisor": "tok-supervisor-7f3a", "prometheus": "tok-prometheus-91c2",
          "admin": "tok-admin-55d0", "legacy": "tok-legacy-0b8e"}


def _fill(url: str) -> None:
    module = bench_module("scrape")
    asyncio.run(module.fill(url, agents=40, hours=1.0, copies=0, seed=11))


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("access")
    server = start_redis(free_port(), workdir)
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        _fill(url)
        r = redis.Redis.from_url(url, decode_responses=True)
        scopes = {k: sorted(r.zrange(f"ck:seen:{k}", 0, -1)) for k in ("campaign", "team", "agent", "caller_id", "list")}
        live = {a: json.loads(v) for a, v in r.hgetall("ck:live:agents").items()}
        r.close()
        assert OWN in scopes["campaign"] and OWN_TEAM in scopes["team"], scopes
        yield {"url": url, "scopes": scopes, "live": live, "workdir": workdir}
    finally:
        server.stop()


CONFIG = f'''
[api]
metrics = "token"

[[api.tokens]]
name = "insure supervisor"
sha256 = "{hash_token(TOKENS["supervisor"])}"
scopes = ["campaign:insure-*", "team:{OWN_TEAM}"]

[[api.tokens]]
name = "prometheus"
sha256 = "{hash_token(TOKENS["prometheus"])}"
scopes = []
metrics = true

[[api.tokens]]
name = "operations"
sha256 = "{hash_token(TOKENS["admin"])}"

[[compliance.groups]]
name = "pooled"
campaigns = ["{OWN}", "solar-q4"]

[[targets]]
name = "Abandon per campaign"
kpi = "abandon_rate"
scope = "campaign:*"
window = "today"
goal = 0.03
direction = "lower"

[[targets]]
name = "Center connects"
kpi = "connect_rate"
scope = "center"
window = "today"
goal = 0.3

[[targets]]
name = "Team productivity"
kpi = "calls_per_agent_hour"
scope = "agent:*@team:{OWN_TEAM}"
window = "1h"
goal = 8
'''


def visible_agents(known: dict[str, Any]) -> set[str]:
    return {a for a, v in known["live"].items() if v.get("team") == OWN_TEAM or v.get("campaign") == OWN}


def forbidden_names(known: dict[str, Any]) -> list[str]:
    """Every id a supervisor of insure-renew and team-01 must never be shown."""
    s = known["scopes"]
    out = [c for c in s["campaign"] if c != OWN] + [t for t in s["team"] if t != OWN_TEAM]
    out += [a for a in s["agent"] if a not in visible_agents(known)]
    return out + s["caller_id"] + s["list"]


def fetch_all(known: dict[str, Any], tmp: Path, requests: list[tuple[str, str]],
              legacy: str = "") -> list[tuple[int, str]]:
    """(status, body) of each (token name, path) against one in-process `serve`."""
    config = tmp / "callkpi.toml"
    config.write_text(CONFIG)
    settings = Settings(redis_url=known["url"], config=str(config), api_token=legacy)

    async def main() -> list[tuple[int, str]]:
        from aiohttp.test_utils import TestServer
        server = TestServer(create_service_app(build_api(settings)), host="127.0.0.1")
        await server.start_server()
        out = []
        try:
            async with aiohttp.ClientSession() as session:
                for who, path in requests:
                    headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
                    url = str(server.make_url(path))
                    if path.startswith("/api/v1/stream"):
                        async with session.get(url, headers=headers) as r:
                            body = (await r.content.readline()).decode() if r.status == 200 else await r.text()
                            out.append((r.status, body))
                        continue
                    async with session.get(url, headers=headers) as r:
                        out.append((r.status, await r.text()))
        finally:
            await server.close()
        return out
    return asyncio.run(main())


def test_a_restricted_token_reads_its_scopes_and_only_them(known: dict[str, Any], tmp_path: Path) -> None:
    agent_in = sorted(visible_agents(known))[0]
    agent_out = sorted(set(known["scopes"]["agent"]) - visible_agents(known))[0]
    allowed = [f"/api/v1/kpis?scope=campaign:{OWN}", f"/api/v1/kpis?scope=team:{OWN_TEAM}",
               f"/api/v1/kpis?scope=agent:{agent_in}", f"/api/v1/live?scope=campaign:{OWN}",
               f"/api/v1/live?scope=team:{OWN_TEAM}", f"/api/v1/agents?scope=campaign:{OWN}",
               f"/api/v1/agents?scope=team:{OWN_TEAM}", "/api/v1/scopes", "/api/v1/campaigns",
               "/api/v1/targets", "/api/v1/compliance", "/api/v1/health", "/api/v1/stream", "/",
               "/openapi.json", f"/api/v1/series?scope=campaign:{OWN}&window=today&step=1h",
               "/api/v1/breakdown?by=agent", "/api/v1/breakdown?by=campaign",
               "/api/v1/breakdown?by=team", "/api/v1/breakdown?by=caller_id",
               f"/api/v1/breakdown?by=weekday_hour&scope=campaign:{OWN}",
               f"/api/v1/breakdown?by=disposition_code&scope=team:{OWN_TEAM}"]
    refused = ["/api/v1/kpis", "/api/v1/kpis?scope=campaign:solar-q4", "/api/v1/kpis?scope=team:team-02",
               f"/api/v1/kpis?scope=agent:{agent_out}", "/api/v1/kpis?scope=campaign:does-not-exist",
               f"/api/v1/kpis?scope=caller_id:{known['scopes']['caller_id'][0]}",
               "/api/v1/live", "/api/v1/live?scope=campaign:solar-q4", "/api/v1/agents",
               "/api/v1/agents?scope=team:team-02", "/metrics",
               "/api/v1/series", "/api/v1/series?scope=campaign:solar-q4",
               "/api/v1/breakdown?by=hour_of_day", "/api/v1/breakdown?by=disposition_code"]
    answers = fetch_all(known, tmp_path, [("supervisor", p) for p in allowed + refused])
    bad = forbidden_names(known)
    for path, (status, body) in zip(allowed, answers[:len(allowed)], strict=True):
        assert status == 200, (path, status, body[:300])
        leaked = [n for n in bad if f'"{n}"' in body or f":{n}\"" in body]
        assert not leaked, (path, leaked[:5])
    for path, (status, body) in zip(refused, answers[len(allowed):], strict=True):
        assert status == 403, (path, status, body[:300])
        assert not [n for n in bad if n in body and n not in path], path
    # The same 403 for a scope that exists and one that does not: nothing to learn from it.
    exists, missing = answers[len(allowed) + 1][1], answers[len(allowed) + 4][1]
    assert json.loads(exists)["error"].replace("solar-q4", "X") == \
        json.loads(missing)["error"].replace("does-not-exist", "X")

    by_path: dict[str, Any] = {p: json.loads(b) if p.startswith("/api/v1/") and "stream" not in p else b
                               for p, (_, b) in zip(allowed, answers[:len(allowed)], strict=True)}
    scopes = by_path["/api/v1/scopes"]
    assert scopes["campaign"] == [OWN] and scopes["team"] == [OWN_TEAM] and scopes["center"] is False
    assert scopes["caller_id"] == [] and scopes["list"] == []
    assert set(scopes["agent"]) == visible_agents(known) & set(known["scopes"]["agent"])
    assert [c["campaign_id"] for c in by_path["/api/v1/campaigns"]["campaigns"]] == [OWN]
    assert {t["scope"] for t in by_path["/api/v1/targets"]["targets"]} <= \
        {f"campaign:{OWN}"} | {f"agent:{a}" for a in visible_agents(known)}
    assert f"campaign:{OWN}" in {t["scope"] for t in by_path["/api/v1/targets"]["targets"]}
    assert [e["campaign_id"] for e in by_path["/api/v1/compliance"]["campaigns"]] == [OWN]  # not the group it shares
    assert [r["id"] for r in by_path["/api/v1/breakdown?by=campaign"]["rows"]] == [OWN]
    assert {r["id"] for r in by_path["/api/v1/breakdown?by=agent"]["rows"]} <= visible_agents(known)
    assert by_path["/api/v1/breakdown?by=caller_id"]["rows"] == []
    rows = by_path[f"/api/v1/agents?scope=campaign:{OWN}"]["agents"]
    assert rows and all(r["team_id"] in (OWN_TEAM, None) for r in rows)
    assert by_path["/api/v1/stream"].startswith("retry:")


def test_an_unrestricted_token_and_the_legacy_token_read_everything(known: dict[str, Any], tmp_path: Path) -> None:
    paths = ["/api/v1/kpis", "/api/v1/kpis?scope=campaign:solar-q4", "/api/v1/live", "/api/v1/agents",
             "/api/v1/scopes", "/api/v1/campaigns", "/api/v1/targets", "/api/v1/compliance"]
    answers = fetch_all(known, tmp_path, [(who, p) for who in ("admin", "legacy") for p in paths]
                        + [("legacy", "/metrics"), ("admin", "/metrics")], legacy=TOKENS["legacy"])
    assert [s for s, _ in answers[:-2]] == [200] * (2 * len(paths))
    campaigns = json.loads(answers[paths.index("/api/v1/campaigns")][1])["campaigns"]
    assert {c["campaign_id"] for c in campaigns} == set(known["scopes"]["campaign"])
    assert json.loads(answers[paths.index("/api/v1/scopes")][1])["center"] is True
    assert answers[-2][0] == 200  # CALLKPI_API_TOKEN: unrestricted, /metrics included
    assert answers[-1][0] == 403  # a named token reads /metrics only with metrics = true


def test_metrics_has_its_own_token(known: dict[str, Any], tmp_path: Path) -> None:
    answers = fetch_all(known, tmp_path, [("prometheus", "/metrics"), ("", "/metrics"),
                                          ("supervisor", "/metrics"), ("prometheus", "/api/v1/kpis"),
                                          ("prometheus", "/api/v1/scopes"), ("", "/api/v1/scopes"),
                                          ("", "/api/v1/stream")])
    status = [s for s, _ in answers]
    assert status == [200, 401, 403, 403, 200, 401, 401], status
    assert "callcenter_" in answers[0][1]
    scopes = json.loads(answers[4][1])
    assert all(v in ([], False) for v in scopes.values()), scopes


def test_hash_token_command(tmp_path: Path) -> None:
    given = subprocess.run([sys.executable, "-m", "stream.cli.main", "hash-token"], input="s3cret\n",
                           capture_output=True, text=True, timeout=60)
    assert given.returncode == 0, given.stderr
    assert f'sha256 = "{hash_token("s3cret")}"' in given.stdout
    made = subprocess.run([sys.executable, "-m", "stream.cli.main", "hash-token", "--new"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = next(line.split(":", 1)[1].strip() for line in made.stdout.splitlines()
                 if line.startswith("token:"))
    assert len(token) >= 32 and f'sha256 = "{hash_token(token)}"' in made.stdout


def test_past_rankings_and_series_keep_the_agents_of_a_team_who_logged_out(
        known: dict[str, Any], tmp_path: Path) -> None:
    """A team's agents who have logged out since still belong to it in the past (its counters
    hold their calls): a team supervisor's ranking over the period lists them and their series
    is readable; agents of other teams stay hidden, logged in or not."""
    r = redis.Redis.from_url(known["url"], decode_responses=True)
    live = r.hgetall("ck:live:agents")
    ours = sorted(a for a, v in known["live"].items() if v.get("team") == OWN_TEAM)
    others = sorted(a for a, v in known["live"].items()
                    if v.get("team") != OWN_TEAM and v.get("campaign") != OWN)
    assert len(ours) >= 2 and others
    gone = ours + others[:3]  # the end of their shift: off the live board
    r.hdel("ck:live:agents", *gone)
    try:
        answers = fetch_all(known, tmp_path, [
            ("supervisor", "/api/v1/breakdown?by=agent&window=24h&limit=1000"),
            ("supervisor", f"/api/v1/series?scope=agent:{ours[0]}&window=today&step=1h"),
            ("supervisor", f"/api/v1/kpis?scope=agent:{ours[1]}&window=24h"),
            ("supervisor", f"/api/v1/series?scope=agent:{others[0]}&window=today&step=1h")])
    finally:
        r.hset("ck:live:agents", mapping={a: live[a] for a in gone})
        r.close()
    (s1, ranking), (s2, series), (s3, kpis), (s4, hidden) = answers
    assert (s1, s2, s3, s4) == (200, 200, 200, 403), (ranking[:300], series[:300], hidden[:300])
    rows = {row["id"] for row in json.loads(ranking)["rows"]}
    assert set(ours) <= rows, sorted(set(ours) - rows)
    assert not rows & set(others[:3])
    assert json.loads(series)["points"]
