"""`serve`'s own health in /metrics: the shared answer cache and the push stream's clients, so an
SRE sees a cache that never hits, boards refused at the cap or dropped as slow readers (issue 9,
item 16) without reading logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_api_errors import ask

pytestmark = pytest.mark.integration


def test_metrics_show_the_answer_cache_and_the_stream_clients(redis_url: str, tmp_path: Path) -> None:
    # three asks: the subscription's start makes the first answer stale once
    answers = ask(redis_url, tmp_path, [("/api/v1/kpis", {"window": "15m"})] * 3 + [("/metrics", None)])
    assert [status for status, _, _ in answers] == [200] * 4
    samples = {s.name: s.value for f in text_string_to_metric_families(answers[3][2]) for s in f.samples}
    assert samples["callcenter_api_response_cache_misses_total"] >= 1
    assert samples["callcenter_api_response_cache_hits_total"] >= 1
    assert samples["callcenter_api_stream_clients"] == 0
    assert samples["callcenter_api_stream_refused_total"] == 0
    assert samples["callcenter_api_stream_dropped_slow_total"] == 0
