"""Contract 1.1 end to end: inbound calls, disposition codes and variants through the real broker,
worker, Redis and API (and the CLI's table), equal to the reference calculator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stream.contract import format_ts
from tests.harness import running_service
from tests.reference.calculator import Reference
from tests.reference.test_calculator import T0, inbound_scenario

pytestmark = pytest.mark.integration
HOUR = 3_600_000


@pytest.mark.timeout(600)
def test_inbound_codes_and_variants_through_the_api(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    start = now - now % HOUR - HOUR  # the previous whole hour
    events = [dict(d, ts=d["ts"] - T0 + start) for d in inbound_scenario()]
    raws = [json.dumps(d).encode() for d in events]
    ref = Reference(raws, now_ms=now)
    with running_service(tmp_path) as svc:
        svc.publish(raws)
        svc.wait_consumed(len(raws), timeout=300)
        assert "B" in svc.get("/api/v1/scopes")["variant"]
        window = {"from": format_ts(start), "to": format_ts(start + HOUR)}
        for scope in ("center", "campaign:Q1", "campaign:K1", "agent:A3", "variant:A",
                      "variant:B", "list:L1"):
            got = svc.get("/api/v1/kpis", scope=scope, **window)["kpis"]
            for name, value in ref.kpis(scope, start, start + HOUR, now_ms=now).items():
                if name == "avg_call_gap_seconds":
                    continue
                assert got[name] == (pytest.approx(value) if isinstance(value, float) else value), (
                    scope, name)
        center = svc.get("/api/v1/kpis", scope="center", **window)["kpis"]
        assert center["offered"] == 3 and center["abandoned"] == 1
        assert center["wrapups_by_code"] == {"NI": 2, "SALE": 1}
        table = svc.run_cli(["kpis", "--scope", "variant:B", "--from", window["from"],
                             "--to", window["to"]])
        assert table.returncode == 0, table.stderr
        assert "wrapups_by_code" in table.stdout and "NI 1" in table.stdout
