"""The wallboard where no answer has an answering-machine verdict (a PBX source): the connect-rate
card shows the answer rate and says why (real pipeline, real Chromium)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.browser.cdp import Browser
from tests.browser.test_wallboard import open_board
from tests.harness import Service, jsonl, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()


def calls(campaign: str, answered_by: str, t: int) -> list[dict]:
    out = []
    for i in range(4):
        cid = f"{campaign}-{i}"
        out.append({"event_id": f"{cid}:d", "type": "call.dialed", "ts": t + i, "call_id": cid,
                    "campaign_id": campaign})
        if i < 3:
            out.append({"event_id": f"{cid}:a", "type": "call.answered", "ts": t + i + 5,
                        "call_id": cid, "campaign_id": campaign, "answered_by": answered_by})
        else:
            out.append({"event_id": f"{cid}:u", "type": "call.unanswered", "ts": t + i + 20,
                        "call_id": cid, "campaign_id": campaign, "reason": "no_answer"})
    return out


def test_connect_rate_card_shows_answer_rate_without_verdicts(pipeline: Service,
                                                             browser: Browser) -> None:
    t = int(time.time() * 1000) - 120_000
    events = calls("e2e-board-pbx", "unknown", t) + calls("e2e-board-amd", "human", t)
    consumed = pipeline.pipeline_counter("consumed")
    pipeline.publish(jsonl(events))
    pipeline.wait_consumed(int(consumed) + len(events))
    wait_until(lambda: pipeline.get("/api/v1/kpis", scope="campaign:e2e-board-pbx",
                                    window="today")["kpis"]["answered"] == 3, 60)
    page = browser.new_page()
    try:
        open_board(page, pipeline.url, scope="campaign:e2e-board-pbx")
        page.wait_for("document.querySelector('#card-connect_rate .label').textContent === "
                      "'Answer rate today'", 30, "the card to switch to the answer rate")
        shown = page.evaluate("(() => { const c = document.getElementById('card-connect_rate');"
                              " return [c.querySelector('.value').textContent, c.title,"
                              " c.dataset.substitute]; })()")
        assert shown[0] == "75.0%"
        assert shown[1].startswith("Connect rate cannot be known: no answer in this scope has an "
                                   "answering-machine verdict")
        assert shown[2] == "answer_rate"
        open_board(page, pipeline.url, scope="campaign:e2e-board-amd")
        page.wait_for("document.querySelector('#card-connect_rate .label').textContent === "
                      "'Connect rate today' && document.getElementById('kpi-connect_rate')"
                      ".textContent === '75.0%'", 30, "a campaign with verdicts to show its connect rate")
        assert page.evaluate("document.getElementById('card-connect_rate').dataset.substitute"
                             " === undefined")
        assert not page.log.script_errors()
    finally:
        page.close()
