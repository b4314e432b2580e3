"""docker-compose.yml and the Dockerfile: validated by docker-compose 1.29 (`config -q`, no engine
needed) plus the structure the stack relies on."""

from __future__ import annotations

import importlib.metadata
import re

import pytest

from . import REPO, run

COMPOSE = REPO / "docker-compose.yml"


def _compose(*args: str) -> str:
    return run(["docker-compose", "-f", str(COMPOSE), *args]).stdout


def test_compose_file_is_valid_for_docker_compose_1_29():
    _compose("config", "-q")


def test_compose_file_is_valid_with_the_sim_profile():
    run(["docker-compose", "-f", str(COMPOSE), "--profile", "sim", "config", "-q"])


def test_no_top_level_name_key():
    assert not re.search(r"^name\s*:", COMPOSE.read_text(), re.M), "docker-compose 1.29 rejects a top-level name:"
    assert re.search(r'^version: "3\.8"$', COMPOSE.read_text(), re.M)


def test_services_and_named_volumes():
    services = set(_compose("config", "--services").split())
    assert services == {"kafka", "kafka-topics", "redis", "worker-1", "worker-2", "api", "prometheus",
                        "alertmanager", "grafana", "sim"}
    volumes = set(_compose("config", "--volumes").split())
    assert {"kafka-data", "redis-data", "prometheus-data", "grafana-data", "alertmanager-data"} <= volumes


def _service(config: str, name: str) -> str:
    m = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\s*\n)*)", config, re.M)
    assert m, f"service {name} not in the rendered config"
    return m.group(1)


@pytest.fixture(scope="module")
def rendered() -> str:
    return _compose("config")


def test_kafka_is_kraft_single_node_with_healthcheck(rendered):
    kafka = _service(rendered, "kafka")
    assert "image: apache/kafka:" in kafka
    assert "KAFKA_PROCESS_ROLES: broker,controller" in kafka
    assert "healthcheck:" in kafka and "kafka-broker-api-versions.sh" in kafka
    assert re.search(r"CLUSTER_ID: [A-Za-z0-9_-]{22}\n", kafka), "KRaft needs a base64url 16-byte cluster id"


def test_redis_7_with_aof_and_healthcheck(rendered):
    redis = _service(rendered, "redis")
    assert re.search(r"image: redis:7", redis)
    assert re.search(r"- --appendonly\n    - ['\"]?yes['\"]?\n", redis), "AOF persistence"
    assert re.search(r"- --appendfsync\n    - ['\"]?everysec['\"]?\n", redis), "AOF fsync"
    assert re.search(r"- --maxmemory-policy\n    - ['\"]?noeviction['\"]?\n", redis), \
        "never evict (docs/operations.md#redis-settings)"
    assert "redis-cli" in redis and "redis-data:/data" in redis


@pytest.mark.parametrize("name, command, deps", [
    ("worker-1", "worker", ("kafka", "redis")), ("worker-2", "worker", ("kafka", "redis")),
    ("api", "serve", ("redis",)),
])
def test_callkpi_services(rendered, name, command, deps):
    svc = _service(rendered, name)
    assert re.search(rf"command:\n    - {command}\n", svc)
    for var, value in [("CALLKPI_BOOTSTRAP", "kafka:9092"), ("CALLKPI_REDIS_URL", "redis://redis:6379/0"),
                       ("CALLKPI_INPUT_TOPIC", "dialer.events"), ("CALLKPI_HTTP_PORT", "8077")]:
        assert re.search(rf"{var}: ['\"]?{re.escape(value)}['\"]?\n", svc), (name, var)
    assert "CALLKPI_TIMEZONE:" in svc and "CALLKPI_CONFIG:" in svc
    for dep in deps:
        assert re.search(rf"      {dep}:\n        condition: service_healthy", svc), (name, dep)


def test_api_does_not_wait_for_kafka(rendered):
    """The exporter must run (and be scraped) exactly when Kafka or the workers are in trouble."""
    depends = re.search(r"    depends_on:\n((?:      .*\n)+)", _service(rendered, "api")).group(1)
    assert re.findall(r"^      (\S+):$", depends, re.M) == ["redis"]


def test_api_listens_on_all_interfaces_and_publishes_8077(rendered):
    api = _service(rendered, "api")
    assert "CALLKPI_HTTP_HOST: 0.0.0.0" in api, "the default 127.0.0.1 is unreachable from Prometheus"
    assert "published: 8077" in api or "8077:8077" in api
    assert "/api/v1/health" in api  # healthcheck: pings Redis, cheaper than a scrape


LONG_RUNNING = ("kafka", "redis", "api", "prometheus", "alertmanager", "grafana")


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_a_healthcheck(rendered, name):
    assert "    healthcheck:\n" in _service(rendered, name)


def test_start_order_waits_for_health(rendered):
    """Every dependency on a service with a healthcheck waits for it to be healthy; one-shot
    services (topic creation) are waited for until they complete."""
    for name in re.findall(r"^  (\S+):\n", rendered.split("\nvolumes:")[0].split("services:\n", 1)[1], re.M):
        for dep, condition in re.findall(r"^      (\S+):\n        condition: (\S+)$", _service(rendered, name), re.M):
            expected = "service_completed_successfully" if dep == "kafka-topics" else "service_healthy"
            assert condition == expected, (name, dep, condition)


def test_prometheus_alertmanager_grafana_mount_the_generated_files(rendered):
    text = COMPOSE.read_text()
    for mount in ("./dashboards/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                  "./dashboards/prometheus/rules.yml:/etc/prometheus/rules.yml:ro",
                  "./dashboards/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"):
        assert mount in text
        assert (REPO / mount.split(":")[0]).exists()
    for source in re.findall(r"- (\./[^:]+):", text):
        assert (REPO / source).exists(), f"bind mount source missing: {source}"
    grafana = _service(rendered, "grafana")
    assert re.search(r"GF_AUTH_ANONYMOUS_ENABLED: ['\"]?true['\"]?\n", grafana)
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer" in grafana
    assert "--storage.tsdb.retention.time=35d" in _service(rendered, "prometheus")


def test_sim_runs_only_with_its_profile(rendered):
    sim = _service(rendered, "sim")
    assert "profiles:\n    - sim" in sim
    assert re.search(r"command:\n    - simulate\n    - --bootstrap\n    - kafka:9092\n", sim)


def test_grafana_image_matches_the_dashboard_sdk():
    """The dashboards are built with the SDK for one Grafana minor; the image must be that minor."""
    image = re.search(r"image: grafana/grafana:(\d+)\.(\d+)\.(\d+)\n", COMPOSE.read_text())
    assert image, "pin grafana/grafana to an exact version"
    sdk = importlib.metadata.version("grafana-foundation-sdk")  # e.g. 1769699379!11.6.0
    sdk_minor = re.search(r"!?(\d+)\.(\d+)\.\d+$", sdk)
    assert sdk_minor and image.groups()[:2] == sdk_minor.groups(), (image.group(0), sdk)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"grafana-foundation-sdk=={sdk}"' in pyproject, "pin the installed SDK build in the test extra"


def test_dockerfile():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    # installed (not editable) into a virtual environment, compiled native there (the build
    # stage), and only that environment copied into the image that runs
    assert re.search(r"^RUN \S*pip install \.", text, re.M)
    assert "scripts/native_build.py --root" in text and "COPY --from=build /opt/callkpi" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in {"root", "0"}, "run as a non-root user"
    assert re.search(r'^ENTRYPOINT \["callkpi"\]\s*$', text, re.M)
    ignore = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignore)
