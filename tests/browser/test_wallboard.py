"""The built-in wallboard in headless Chromium against a real pipeline fed by the simulator:
the numbers are the API's, they follow new events, the page survives a server restart, kiosk mode,
the access token, no personal data, 500 agents, the banner, and a screenshot kept as an artifact."""

from __future__ import annotations

import json
import re
import secrets
import struct
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.browser import PHONE_RE, Fed, cdp
from tests.browser.board import api_view, client, differences, expected_alerts, read_board, settled, wait_rendered
from tests.browser.cdp import Page
from tests.browser.conftest import ARTIFACTS
from tests.harness import wait_until

pytestmark = pytest.mark.integration

CONN_JS = "document.getElementById('conn').dataset.state"
# Every route `callkpi serve` has that carries data (the token must guard all of them).
GUARDED = ("/", "/openapi.json", "/api/v1/kpis", "/api/v1/live", "/api/v1/scopes",
           "/api/v1/campaigns", "/api/v1/agents", "/api/v1/targets", "/api/v1/compliance",
           "/api/v1/health")


def open_board(page: Page, base_url: str, **params: str) -> dict:
    """Load the wallboard and wait until it shows data and its live stream is open."""
    page.navigate(f"{base_url}/?{urlencode(params)}" if params else f"{base_url}/")
    wait_rendered(page)
    page.wait_for(f"{CONN_JS} === 'live'", 30, "the live stream to open")
    return read_board(page)


def scope_of(fed: Fed, kind: str) -> str:
    ids = {"campaign": fed.traffic.campaigns, "team": fed.traffic.teams}.get(kind)
    return f"{kind}:{sorted(ids)[0]}" if ids else "center"


def assert_same_as_api(page: Page, base_url: str, scope: str, token: str | None = None,
                       store_still_since: float = 0.0) -> dict:
    board, view = settled(page, base_url, scope, token, store_still_since)
    problems = differences(board, view)
    assert not problems, "the wallboard differs from the API:\n" + "\n".join(problems[:40])
    return board


def publish_and_see(fed: Fed, page: Page) -> None:
    """Publish the next stretch of simulated traffic: the page must be told (an `update` arrives
    on its event stream; the server's side of timely updates is tests/integration/
    test_live_stream.py) and then show the new numbers, all of them the API's."""
    seen = len(page.sse)
    before = api_view(fed.svc.url, "center").campaigns
    wait_until(lambda: fed.catch_up() > 0, 30, "the simulator to have new events due")
    still = time.time()
    after = api_view(fed.svc.url, "center").campaigns
    assert after != before, "the new events changed nothing the campaign table shows"
    wait_until(lambda: any(m.get("eventName") == "update" for m in page.sse[seen:]), 15,
               lambda: f"an `update` on the page's event stream; got {page.sse[seen:]}")
    dialed = {c["campaign_id"]: str(c["kpis"]["dialed"]) for c in after["campaigns"]}
    page.wait_for(
        "JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll("
        "'#campaign-table tr[data-campaign-id]')).map((r) => [r.dataset.campaignId, "
        "r.querySelector('[data-kpi=dialed]').dataset.value]))) === " + json.dumps(json.dumps(
            dict(sorted(dialed.items())), separators=(",", ":"))),
        15, "the campaign table to show the new dial counts")
    assert_same_as_api(page, fed.svc.url, "center", store_still_since=still)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", ["center", "campaign", "team"])
def test_page_shows_the_api_numbers(fed: Fed, page: Page, kind: str) -> None:
    scope = scope_of(fed, kind)
    open_board(page, fed.svc.url, scope=scope)
    board = assert_same_as_api(page, fed.svc.url, scope)
    assert board["agents"] and board["campaigns"] and board["big"]["connect_rate"] != ""
    if kind == "center":
        shot = page.screenshot(ARTIFACTS / "wallboard.png")
        assert png_size(shot.read_bytes()) == (1920, 1080)


def test_scope_picker_switches_and_keeps_the_scope_in_the_url(fed: Fed, page: Page) -> None:
    open_board(page, fed.svc.url)
    scopes = fed.get("/api/v1/scopes")
    options = page.evaluate("Array.from(document.querySelectorAll('#scope-picker option'), (o) => o.value)")
    assert options == ["center", *(f"campaign:{c}" for c in sorted(scopes["campaign"])),
                       *(f"team:{t}" for t in sorted(scopes["team"]))]
    scope = scope_of(fed, "campaign")
    page.evaluate(f"(() => {{ const s = document.getElementById('scope-picker'); s.value = "
                  f"{json.dumps(scope)}; s.dispatchEvent(new Event('change')); }})()")
    page.wait_for(f"document.body.dataset.scope === {json.dumps(scope)} && "
                  "document.body.dataset.updatedAt", 30, f"the page to show {scope}")
    assert_same_as_api(page, fed.svc.url, scope)
    assert f"scope={scope.replace(':', '%3A')}" in page.evaluate("location.search")


def test_updates_when_new_events_arrive(fed: Fed, page: Page) -> None:
    open_board(page, fed.svc.url)
    publish_and_see(fed, page)


def test_survives_a_server_restart(fed: Fed, page: Page) -> None:
    open_board(page, fed.svc.url)
    assert fed.svc.server is not None
    fed.svc.server.stop()
    page.wait_for(f"{CONN_JS} === 'reconnecting'", 30, "the page to notice the server is gone")
    fed.svc.start_server()
    page.wait_for(f"{CONN_JS} === 'live'", 60, "the page to reconnect by itself")
    publish_and_see(fed, page)


def test_kiosk_mode(fed: Fed, page: Page) -> None:
    open_board(page, fed.svc.url)
    desk_font = page.evaluate("parseFloat(getComputedStyle(document.getElementById('kpi-connect_rate')).fontSize)")
    board = open_board(page, fed.svc.url, kiosk="1")
    look = page.evaluate("""(() => {
      const shown = (n) => n.getClientRects().length > 0;
      const grid = document.getElementById('agent-grid');
      return {kiosk: document.body.classList.contains('kiosk'),
              cursor: getComputedStyle(document.body).cursor,
              controls: Array.from(document.querySelectorAll('#scope-picker, .view-toggle, #agent-head')).filter(shown).length,
              font: parseFloat(getComputedStyle(document.getElementById('kpi-connect_rate')).fontSize),
              pageFits: document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth,
              gridFits: grid.scrollHeight <= grid.clientHeight};
    })()""")
    assert look == {**look, "kiosk": True, "cursor": "none", "controls": 0, "pageFits": True,
                    "gridFits": True}, look
    assert look["font"] > desk_font
    assert len(board["agents"]) == len(fed.get("/api/v1/agents", window="today")["agents"])
    assert_same_as_api(page, fed.svc.url, "center")
    page.screenshot(ARTIFACTS / "wallboard-kiosk.png")


def test_access_token_guards_the_api_and_the_page(fed: Fed, page: Page) -> None:
    token = secrets.token_urlsafe(16)
    url = fed.extra_server({"CALLKPI_API_TOKEN": token})
    with client(url) as anonymous, client(url, token) as authorized:
        for path in GUARDED:
            assert anonymous.get(path).status_code == 401, path
            assert anonymous.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
            assert anonymous.get(path, params={"token": token[:-1]}).status_code == 401, path
            assert authorized.get(path).status_code == 200, path
            assert anonymous.get(path, params={"token": token}).status_code == 200, path
        with anonymous.stream("GET", "/api/v1/stream") as r:
            assert r.status_code == 401
        with authorized.stream("GET", "/api/v1/stream") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        # The static files hold no data (the page's code and style), and Prometheus scrapes
        # /metrics without a token.
        for path in ("/static/app.js", "/static/style.css", "/metrics"):
            assert anonymous.get(path).status_code == 200, path

    page.navigate(f"{url}/")
    assert "access token" in page.evaluate("document.body.innerText")
    open_board(page, url, token=token)
    assert_same_as_api(page, url, "center", token)


def test_no_phone_numbers_in_the_api_or_the_page(fed: Fed, page: Page) -> None:
    """The dialer leaked the called number in an extra field of every dial: it must not come out
    anywhere. Caller IDs (the center's own outbound numbers) are scope ids of the API, by design,
    and not on the page."""
    leaked = fed.traffic.leaked
    assert leaked
    digits = {re.sub(r"\D", "", n) for n in leaked}
    scopes = fed.get("/api/v1/scopes")
    answers = {}
    for kind in ("center", "campaign", "team", "agent", "caller_id", "list"):
        scope = kind if kind == "center" else f"{kind}:{sorted(scopes[kind])[0]}"
        for path, params in (("kpis", {"window": "today"}), ("live", {}), ("agents", {"window": "today"})):
            answers[f"{path}?scope={scope}"] = httpx.get(f"{fed.svc.url}/api/v1/{path}",
                                                         params={"scope": scope, **params}, timeout=60).text
    for path in ("scopes", "campaigns?window=today", "targets", "compliance", "health"):
        answers[path] = httpx.get(f"{fed.svc.url}/api/v1/{path}", timeout=60).text
    answers["metrics"] = httpx.get(f"{fed.svc.url}/metrics", timeout=60).text
    for where, text in answers.items():
        flat = re.sub(r"\D", "", text)
        found = [n for n in leaked if n in text] + [d for d in digits if d in flat]
        assert not found, f"{where} contains the called party's number {found[:3]}"

    open_board(page, fed.svc.url)
    html = page.evaluate("document.documentElement.outerHTML + '\\n' + document.body.innerText")
    assert not [n for n in leaked if n in html]
    assert not PHONE_RE.findall(html), PHONE_RE.findall(html)[:5]


def expected_order(agents: list[dict], key: str, descending: bool) -> list[str]:
    """The grid order the page promises: by the column, missing values last, ties by agent id."""
    def value(a: dict) -> Any:
        if key == "agent_id":
            return a["id"]
        v = a["kpis"].get(key)
        return None if v in (None, "") else float(v)
    present = sorted((a for a in agents if value(a) is not None), key=lambda a: a["id"])
    present.sort(key=value, reverse=descending)  # stable: ties stay by id
    missing = sorted((a for a in agents if value(a) is None), key=lambda a: a["id"])
    return [a["id"] for a in [*present, *missing]]


GRID_ORDER_JS = "Array.from(document.querySelectorAll('#agent-grid [data-agent-id]'), (n) => n.dataset.agentId)"


def test_agent_grid_with_500_agents_fits_and_sorts(fed: Fed, page: Page) -> None:
    board = open_board(page, fed.svc.url)
    api_agents = fed.get("/api/v1/agents", window="today")["agents"]
    assert len(api_agents) == 500
    assert sorted(a["id"] for a in board["agents"]) == sorted(a["agent_id"] for a in api_agents)
    layout = page.evaluate("""(() => {
      const grid = document.getElementById('agent-grid');
      const box = grid.getBoundingClientRect();
      const tiles = Array.from(grid.children);
      const outside = tiles.filter((t) => { const r = t.getBoundingClientRect();
        return r.top < box.top || r.bottom > box.bottom + 0.5 || r.left < box.left || r.right > box.right + 0.5
          || r.bottom > innerHeight; }).length;
      const cutIds = tiles.filter((t) => { const n = t.querySelector('.a-id'); return n.scrollWidth > n.clientWidth; }).length;
      const labels = tiles.map((t) => t.querySelector('.a-id').textContent);
      return {outside, cutIds, distinct: new Set(labels).size, scrolls: grid.scrollHeight > grid.clientHeight};
    })()""")
    assert layout == {"outside": 0, "cutIds": 0, "distinct": 500, "scrolls": False}, \
        f"500 agents do not fit one 1080p screen readably: {layout}"

    for key, first_dir in (("handled", "desc"), ("aht_seconds", "desc"), ("agent_id", "asc")):
        for direction in (first_dir, "asc" if first_dir == "desc" else "desc"):
            page.click(f"#agent-head button[data-sort='{key}']")
            aria = "descending" if direction == "desc" else "ascending"
            page.wait_for(f"document.querySelector(\"#agent-head button[data-sort='{key}']\")"
                          f".getAttribute('aria-sort') === '{aria}'", 10, f"sort by {key} {direction}")
            agents = read_board(page)["agents"]
            assert page.evaluate(GRID_ORDER_JS) == expected_order(agents, key, direction == "desc"), \
                f"grid not sorted by {key} {direction}"
            assert f"sort={key}&dir={direction}" in page.evaluate("location.search")

    # The sort survives a reload (it is in the URL), and the table view has the same rows.
    order = page.evaluate(GRID_ORDER_JS)
    page.navigate(page.evaluate("location.href"))
    wait_rendered(page)
    assert page.evaluate(GRID_ORDER_JS) == order
    page.click(".view-toggle button[data-view='table']")
    page.wait_for("document.getElementById('agent-grid').classList.contains('table')", 10, "the table view")
    assert page.evaluate(GRID_ORDER_JS) == order
    assert "view=table" in page.evaluate("location.search")


def test_banner_lists_every_target_and_compliance_entry_in_warn_or_critical(fed: Fed, page: Page) -> None:
    open_board(page, fed.svc.url)
    board, view = settled(page, fed.svc.url, "center")
    expected = expected_alerts(view)
    kinds = {(kind, severity) for kind, _, severity in expected}
    # The configuration makes sure there is something of each kind to show.
    assert {("target", "critical"), ("target", "warn")} <= kinds and any(k == "compliance" for k, _ in kinds)
    shown = sorted((a["kind"], a["key"], a["severity"]) for a in board["alerts"])
    assert shown == expected
    severities = [a["severity"] for a in board["alerts"]]
    assert severities == sorted(severities, key=lambda s: s != "critical"), "critical entries first"
    assert page.evaluate("!document.getElementById('banner').hidden")
    # What does not fit the banner's lines is counted, not silently cut off.
    hidden = sum(not a["shown"] for a in board["alerts"])
    if hidden:
        assert board["more"] == f"+{hidden} more", board["more"]
    else:
        assert board["more"] is None


def test_missing_chromium_fails_naming_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Chromium the browser tests fail (never skip), saying what to install."""
    monkeypatch.setattr(cdp, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.setenv("CALLKPI_CHROMIUM", "/nonexistent/chromium-too")
    with pytest.raises(AssertionError, match="apt-get install chromium chromium-driver"):
        cdp.chromium_binary()


def test_a_restricted_token_shows_only_its_scopes(fed: Fed, page: Page) -> None:
    """A supervisor's token restricted to one campaign (issue 9, item 18): the board opens on
    that campaign (the center is not theirs), the picker and the campaign table list only it, and
    no other campaign's or team's id is anywhere on the page; the numbers are still the API's."""
    from pathlib import Path

    from stream.readers.auth import hash_token
    own, *others = sorted(fed.traffic.campaigns)
    token = secrets.token_urlsafe(16)
    base = Path(fed.svc.env["CALLKPI_CONFIG"])
    config = base.with_name("restricted.toml")
    config.write_text(base.read_text() + "\n[api]\n[[api.tokens]]\nname = \"supervisor\"\n"
                      f'sha256 = "{hash_token(token)}"\nscopes = ["campaign:{own}"]\n')
    url = fed.extra_server({"CALLKPI_CONFIG": str(config)})
    open_board(page, url, token=token)
    assert page.evaluate("document.body.dataset.scope") == f"campaign:{own}"
    options = page.evaluate("Array.from(document.querySelectorAll('#scope-picker option')).map(o => o.value)")
    assert options == [f"campaign:{own}"]
    rows = page.evaluate("Array.from(document.querySelectorAll('#campaign-table tr[data-campaign-id]'))"
                         ".map(r => r.dataset.campaignId)")
    assert rows == [own]
    text = page.evaluate("document.documentElement.outerHTML")
    teams = page.evaluate("Array.from(document.querySelectorAll('#agent-grid [data-agent-id]'))"
                          ".map(a => a.dataset.teamId || '')")
    assert not [c for c in others if c in text], "another campaign is on the page"
    assert all(t == "" for t in teams), "an agent's team is shown to a campaign-only token"
    assert_same_as_api(page, url, f"campaign:{own}", token)
