"""The OpenAPI document (`stream/readers/openapi.json`, served at /openapi.json) against the real
service fed by the simulator: every route `callkpi serve` has is documented and every documented
route is served; real answers of every endpoint, errors included, are documented responses whose
bodies validate against the documented schemas, with every field they carry documented."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from stream.cli.embedded import free_port
from stream.contract import format_ts
from stream.readers.api import OPENAPI_PATH
from tests.browser import EXPERIMENT, Fed, start_fed_pipeline

pytestmark = pytest.mark.integration

DOC: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
MIN = 60_000
TOKEN = "openapi-test-token"


def closed(schema: Any) -> Any:
    """The document with every object that lists its properties closed to others: clients must
    tolerate new fields (the document says `additionalProperties: true`), but the server must not
    send a field the document does not describe."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in out and out.get("additionalProperties", True) is True:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


BASE = "urn:callkpi:openapi"
REGISTRY = Registry().with_resource(BASE, DRAFT202012.create_resource(closed(DOC)))
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    """jsonschema only checks date-time with an optional package; check it here, strictly."""
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # calendar validity
    return True


def pointer(*parts: str) -> str:
    return BASE + "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def operation(path: str, method: str = "get") -> dict[str, Any]:
    assert path in DOC["paths"] and method in DOC["paths"][path], f"{method.upper()} {path} is not documented"
    return DOC["paths"][path][method]


def documented_response(path: str, status: int, method: str = "get") -> tuple[dict[str, Any], list[str]]:
    """The response object for `status` (following a $ref) and its location in the document."""
    responses = operation(path, method)["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which is not documented"
    spec, where = responses[str(status)], ["paths", path, method, "responses", str(status)]
    if "$ref" in spec:
        where = spec["$ref"].removeprefix("#/").split("/")
        spec = DOC
        for part in where:
            spec = spec[part]
    return spec, where


def media_type(documented: dict[str, Any], actual: str) -> str:
    for name in documented:
        if name == actual or (name.endswith("/*") and actual.startswith(name[:-1])):
            return name
    raise AssertionError(f"content type {actual} is not one of the documented {list(documented)}")


def allowed_params(path: str, method: str = "get") -> set[str]:
    op = operation(path, method)
    params = [*DOC["paths"][path].get("parameters", []), *op.get("parameters", [])]
    names = {p["name"] if "$ref" not in p else DOC["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"]
             for p in params}
    if op.get("security", DOC["security"]):  # the token may come as a query parameter
        names.add("token")
    return names


def conforms(r: httpx.Response, path: str, status: int) -> Any:
    """Assert the answer is documented (status, content type, schema); return the parsed body."""
    assert r.status_code == status, f"{r.request.url}: {r.status_code} {r.text[:300]}"
    spec, where = documented_response(path, status)
    if "content" not in spec:
        return None
    actual = r.headers.get("content-type", "").split(";")[0].strip()
    name = media_type(spec["content"], actual)
    if actual != "application/json" or "schema" not in spec["content"][name]:
        return r.text
    body = r.json()
    validator = Draft202012Validator({"$ref": pointer(*where, "content", name, "schema")},
                                     registry=REGISTRY, format_checker=FORMATS)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{r.request.url} does not match the documented schema:\n" + "\n".join(errors[:20])
    return body


class Api:
    """GET requests that may only use documented parameters, checked against the document."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60)

    def get(self, path: str, status: int = 200, /, doc_path: str | None = None, **params: Any) -> Any:
        doc_path = doc_path or path
        unknown = set(params) - allowed_params(doc_path)
        assert not unknown, f"the test uses undocumented parameters {unknown} of {doc_path}"
        return conforms(self.http.get(path, params=params), doc_path, status)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    pipeline = start_fed_pipeline(tmp_path_factory.mktemp("openapi"), agents=20, minutes=45)
    try:
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture(scope="module")
def api(fed: Fed) -> Iterator[Api]:
    client = Api(fed.svc.url)
    yield client
    client.http.close()


def served_routes(fed: Fed) -> set[tuple[str, str]]:
    """(path, method) of every route of the app `callkpi serve` runs, built as it builds it."""
    import asyncio

    from stream.cli.commands import build_api
    from stream.readers.service import create_service_app
    from stream.settings import Settings
    ctx = build_api(Settings.from_env(fed.svc.env))
    app = create_service_app(ctx)
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp answers HEAD for every GET, as HTTP says it may
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info["prefix"] + "/{file}"
        out.add((path, route.method.lower()))
    asyncio.run(ctx.store.close())
    return out


def test_every_served_route_is_documented_and_every_documented_route_served(fed: Fed) -> None:
    documented = {(p, m) for p, item in DOC["paths"].items() for m in item if m in HTTP_METHODS}
    served = served_routes(fed)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    served_doc = httpx.get(fed.svc.url + "/openapi.json", timeout=30)
    assert served_doc.json() == DOC


def test_kpis(fed: Fed, api: Api) -> None:
    scopes = api.get("/api/v1/scopes")
    assert all(scopes[k] for k in ("campaign", "team", "agent", "caller_id", "list"))
    now = int(time.time() * 1000)
    start, end = now - now % MIN - 30 * MIN, now - now % MIN
    for kind in ("center", "campaign", "team", "agent", "caller_id", "list"):
        scope = kind if kind == "center" else f"{kind}:{scopes[kind][0]}"
        for window in ("5m", "15m", "1h", "8h", "24h", "30d", "today"):
            body = api.get("/api/v1/kpis", scope=scope, window=window)
            assert (body["scope"], body["window"]) == (scope, window)
        ranged = api.get("/api/v1/kpis", scope=scope, **{"from": format_ts(start), "to": format_ts(end)})
        assert ranged["window"] is None and ranged["from"] == format_ts(start)
        assert api.get("/api/v1/kpis", scope=scope, **{"from": str(start), "to": str(end)})["kpis"] == ranged["kpis"]
    default = api.get("/api/v1/kpis")
    assert (default["scope"], default["window"], default["currency"]) == ("center", "15m", "EUR")
    assert default["kpis"]["dialed"] > 0 and default["kpis"]["cost"] > 0


def test_live_agents_campaigns(fed: Fed, api: Api) -> None:
    scopes = api.get("/api/v1/scopes")
    for scope in ("center", f"campaign:{scopes['campaign'][0]}", f"team:{scopes['team'][0]}",
                  f"agent:{scopes['agent'][0]}"):
        live = api.get("/api/v1/live", scope=scope)
        assert live["scope"] == scope
    assert api.get("/api/v1/live")["agents"]["list"]
    agents = api.get("/api/v1/agents")
    assert agents["window"] == "today" and len(agents["agents"]) == 20
    api.get("/api/v1/agents", scope=f"team:{scopes['team'][0]}", window="1h")
    now = int(time.time() * 1000)
    rng = {"from": format_ts(now - now % MIN - 10 * MIN), "to": format_ts(now - now % MIN)}
    assert api.get("/api/v1/agents", **rng)["window"] is None
    campaigns = api.get("/api/v1/campaigns", window="today")
    assert sorted(c["campaign_id"] for c in campaigns["campaigns"]) == sorted(scopes["campaign"])
    api.get("/api/v1/campaigns")
    api.get("/api/v1/campaigns", **rng)


def test_series_and_breakdowns(fed: Fed, api: Api) -> None:
    scopes = api.get("/api/v1/scopes")
    body = api.get("/api/v1/series", scope=f"campaign:{scopes['campaign'][0]}", window="today",
                   step="1h", kpis="connect_rate,handled", compare="previous_period")
    assert body["points"] and "compare" in body["points"][0]
    assert api.get("/api/v1/series")["step"] == "1d"
    api.get("/api/v1/series", window="8h", step="15m", compare="previous_period")
    api.get("/api/v1/series", window="today", step="1h", compare="previous_week")
    api.get("/api/v1/series", window="month", step="1d", compare="previous_year")
    api.get("/api/v1/series", window="year", step="1mo")
    rows = api.get("/api/v1/breakdown", by="agent", kpis="handled,aht_seconds", sort="handled", limit=5)
    assert rows["rows"]
    api.get("/api/v1/breakdown", by="campaign", window="month")
    cells = api.get("/api/v1/breakdown", by="weekday_hour", window="30d")["cells"]
    assert cells and "weekday" in cells[0]
    api.get("/api/v1/breakdown", by="hour_of_day", sort="connect_rate:asc", limit=3)
    api.get("/api/v1/breakdown", by="disposition_code", scope=f"campaign:{scopes['campaign'][0]}")


def test_targets_compliance_health_stream_metrics_page(fed: Fed, api: Api) -> None:
    targets = api.get("/api/v1/targets")["targets"]
    assert {t["status"] for t in targets} >= {"warn", "critical"}
    assert any(t["deadline"] and t["projected"] is not None for t in targets)
    compliance = api.get("/api/v1/compliance")["campaigns"]
    assert any(e["group"] for e in compliance) and any(not e["group"] for e in compliance)
    assert api.get("/api/v1/health") == {"redis": True}
    assert "callcenter_" in api.get("/metrics")
    assert "<html" in api.get("/", scope="center", kiosk="1", view="table")
    for name in ("app.js", "style.css"):
        api.get(f"/static/{name}", doc_path="/static/{file}")
    api.get("/static/nope.js", 404, doc_path="/static/{file}")
    with api.http.stream("GET", "/api/v1/stream") as r:
        conforms_stream(r)


def test_experiments(fed: Fed, api: Api) -> None:
    (listed,) = api.get("/api/v1/experiments")["experiments"]
    one_path = "/api/v1/experiments/{name}"
    one = api.get(f"/api/v1/experiments/{EXPERIMENT}", doc_path=one_path)
    assert one["name"] == listed["name"] == EXPERIMENT and one["verdict"] == "not enough data"
    now = int(time.time() * 1000)
    rng = {"from": format_ts(now - now % MIN - 10 * MIN), "to": format_ts(now - now % MIN)}
    assert api.get(f"/api/v1/experiments/{EXPERIMENT}", doc_path=one_path, **rng)["window"] is None
    api.get("/api/v1/experiments", window="1h")
    assert api.get("/api/v1/experiments/nope", 404, doc_path=one_path)["error"]
    api.get(f"/api/v1/experiments/{EXPERIMENT}", 400, doc_path=one_path, window="2h")


def test_retention(fed: Fed, api: Api) -> None:
    scopes = api.get("/api/v1/scopes")
    for params in ({}, {"period": "month"}, {"scope": f"campaign:{scopes['campaign'][0]}"}):
        body = api.get("/api/v1/retention", **params)
        assert body["current"]["buying_customers"] >= body["current"]["repeat_customers"]
    assert api.get("/api/v1/retention", 400, scope="team:x")["error"]
    assert api.get("/api/v1/retention", 400, period="year")["error"]


def test_reports(fed: Fed, api: Api) -> None:
    for params in ({}, {"period": "week"}, {"period": "month", "format": "json"}):
        body = api.get("/api/v1/report", **params)
        assert body["scopes"][0]["scope"] == "center"
    for fmt in ("html", "csv", "md"):
        assert api.get("/api/v1/report", format=fmt)
    assert api.get("/api/v1/report", 400, period="year")["error"]
    assert api.get("/api/v1/reports/scheduled")["reports"] == []
    assert api.get("/reports")


def conforms_stream(r: httpx.Response) -> None:
    assert r.status_code == 200
    spec, _ = documented_response("/api/v1/stream", 200)
    media_type(spec["content"], r.headers["content-type"].split(";")[0].strip())
    first = next(r.iter_text())
    assert first.startswith("retry: 2000"), first


def test_health_when_redis_does_not_answer(fed: Fed) -> None:
    """The documented 503: a serve whose Redis is down still answers, and says so."""
    url = fed.extra_server({"CALLKPI_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with httpx.Client(base_url=url, timeout=30) as c:
        assert conforms(c.get("/api/v1/health"), "/api/v1/health", 503) == {"redis": False}


BAD_REQUESTS = [  # path?query as a client sends it
    "/api/v1/kpis?scope=nowhere",
    "/api/v1/kpis?scope=campaign:",
    "/api/v1/kpis?window=2h",
    "/api/v1/kpis?window=15m&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
    "/api/v1/kpis?from=2026-01-01T00:00:00Z",
    "/api/v1/kpis?from=yesterday&to=today",
    "/api/v1/kpis?from=2026-01-01T00:00:30Z&to=2026-01-01T01:00:00Z",
    "/api/v1/kpis?from=2026-01-01T01:00:00Z&to=2026-01-01T00:00:00Z",
    "/api/v1/kpis?from=2000-01-01T00:00:00Z&to=2000-01-01T01:00:00Z",
    "/api/v1/live?scope=planet:mars",
    "/api/v1/series?step=2h",
    "/api/v1/series?window=last_quarter&step=1mo&compare=previous_year",
    "/api/v1/series?window=24h&step=15m&compare=previous_week",
    "/api/v1/series?kpis=happiness",
    "/api/v1/series?compare=last_century",
    "/api/v1/series?window=year&step=15m",
    "/api/v1/series?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z&step=1d",
    "/api/v1/breakdown?by=planet",
    "/api/v1/breakdown?by=agent&scope=campaign:c1",
    "/api/v1/breakdown?by=agent&sort=csat_avg",
    "/api/v1/breakdown?by=agent&limit=0",
    "/api/v1/breakdown?by=hour_of_day&window=last_quarter",
    "/api/v1/agents?window=forever",
    "/api/v1/agents?scope=bogus",
    "/api/v1/campaigns?to=2026-01-01T00:00:00Z",
    "/api/v1/experiments?window=forever",
    "/api/v1/experiments?from=2000-01-01T00:00:00Z&to=2000-01-01T01:00:00Z",
]


@pytest.mark.parametrize("request_url", BAD_REQUESTS)
def test_bad_requests_are_documented_400s(api: Api, request_url: str) -> None:
    path, _, query = request_url.partition("?")
    body = api.get(path, 400, **dict(parse_qsl(query)))
    assert body["error"]


def test_with_a_token_every_guarded_route_answers_401_without_it(fed: Fed) -> None:
    # /metrics is guarded too once `api.metrics = "token"` (by default it stays open).
    base = Path(fed.svc.env["CALLKPI_CONFIG"])
    config = base.with_name("metrics-token.toml")
    config.write_text(base.read_text() + '\n[api]\nmetrics = "token"\n')
    url = fed.extra_server({"CALLKPI_API_TOKEN": TOKEN, "CALLKPI_CONFIG": str(config)})
    anonymous, authorized = Api(url), Api(url, TOKEN)
    try:
        for path, item in DOC["paths"].items():
            concrete = (path.replace("/static/shared/{file}", "/static/shared/reports/charts.js")
                        .replace("{file}", "app.js").replace("{name}", EXPERIMENT))
            guarded = "401" in item["get"]["responses"]
            assert bool(item["get"].get("security", DOC["security"])) == guarded, \
                f"{path}: the security requirement and the 401 response disagree"
            if path == "/api/v1/stream":
                with anonymous.http.stream("GET", path) as r:
                    r.read()
                    conforms(r, path, 401)
                with authorized.http.stream("GET", path) as r:
                    conforms_stream(r)
                continue
            if guarded:
                assert anonymous.get(concrete, 401, doc_path=path)["error"]
                assert anonymous.get(concrete, 401, doc_path=path, token="wrong")["error"]
                authorized.get(concrete, doc_path=path)
                anonymous.get(concrete, doc_path=path, token=TOKEN)
            else:
                anonymous.get(concrete, doc_path=path)
    finally:
        anonymous.http.close()
        authorized.http.close()


def test_the_document_is_valid_openapi_3_1_json_schema() -> None:
    """Every schema in the document is a valid JSON Schema 2020-12 (what OpenAPI 3.1 uses), and
    every $ref points somewhere."""
    assert DOC["openapi"].startswith("3.1")
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    refs = re.findall(r'"\$ref": "#/([^"]+)"', OPENAPI_PATH.read_text())
    for ref in refs:
        node: Any = DOC
        for part in ref.split("/"):
            assert part in node, f"dangling $ref #/{ref}"
            node = node[part]
