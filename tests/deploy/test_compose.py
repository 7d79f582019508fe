"""deploy/compose: the trial stack's structure, checked against the repository (no Docker engine needed).

Every referenced file must exist, every CUSTODES_* variable must be a real setting with a valid value, and
every port must agree between the services, their health checks and the Prometheus/Grafana configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stream.cli import main as cli
from stream.contract.settings import REPO_CONFIG, Settings, load

from .common import DEPLOY, REPO, ROLE_PORT, SETTINGS_ENV, load_yaml

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = load_yaml(COMPOSE_DIR / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CUSTODES = {name: svc for name, svc in SERVICES.items() if "build" in svc}
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / ${VAR}, with nothing set in the environment."""
    def sub(m: re.Match[str]) -> str:
        if m["op"] in (":-", "-"):
            return m["arg"]
        if m["op"] in (":?", "?"):
            return "set-by-the-operator"
        return ""
    return _INTERPOLATION.sub(sub, value)


def env(service: str) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in (SERVICES[service].get("environment") or {}).items()}


def settings_of(service: str) -> Settings:
    return load(REPO_CONFIG, env=env(service))


def port_of(service: str) -> int:
    role = SERVICES[service]["command"][0]
    return getattr(settings_of(service), ROLE_PORT[role])


def test_the_stack_has_every_part():
    assert {"kafka", "postgres", "migrate", "worker", "sink", "review", "prometheus", "grafana"} <= set(SERVICES)
    assert set(CUSTODES) == {"migrate", "worker", "sink", "review"}


def test_kafka_is_the_official_image_in_kraft_mode():
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    e = env("kafka")
    assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in e)
    assert "PLAINTEXT://kafka:9092" in e["KAFKA_ADVERTISED_LISTENERS"].split(",")


def test_custodes_image_is_built_from_the_dockerfile():
    for name, svc in CUSTODES.items():
        context = (COMPOSE_DIR / svc["build"]["context"]).resolve()
        assert context == REPO, name
        assert (context / svc["build"]["dockerfile"]).is_file(), name
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert 'pip wheel --wheel-dir /wheels ".[postgres]"' in dockerfile
    assert '"custodes[postgres]"' in dockerfile
    for source in re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, re.M):
        assert source == "." or (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert 'ENTRYPOINT ["custodes"]' in dockerfile
    for name in re.findall(r"\b(CUSTODES_[A-Z_]+)=", dockerfile):
        assert name in SETTINGS_ENV, f"Dockerfile sets {name}, which is no setting"


@pytest.mark.parametrize("service", sorted(CUSTODES))
def test_custodes_services_use_real_commands_and_settings(service):
    svc = SERVICES[service]
    command = svc["command"]
    assert command[0] in set(cli.commands) | {"review"}, f"`custodes {command[0]}` does not exist"
    if command[0] == "db":
        assert command[1] in cli.commands["db"].commands
    variables = env(service)
    unknown = set(variables) - SETTINGS_ENV
    assert not unknown, f"{service}: {unknown} are not fields of stream.contract.settings.Settings"
    settings = settings_of(service)  # every value must validate, with the config file shipped in the image
    assert settings.broker == "kafka:9092"
    assert settings.web_bind == "0.0.0.0"
    if command[0] == "review":
        review_config = pytest.importorskip("review.config")
        review_config.ReviewConfig.from_env(variables)  # the review app's own knobs validate too


def test_database_url_points_at_the_postgres_service():
    pg = env("postgres")
    for service in ("migrate", "sink", "review"):
        url = urlsplit(env(service)["CUSTODES_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg"
        assert url.hostname == "postgres" and (url.port or 5432) == 5432
        assert url.username == pg["POSTGRES_USER"] and url.password == pg["POSTGRES_PASSWORD"]
        assert url.path.lstrip("/") == pg["POSTGRES_DB"]
    assert "CUSTODES_DATABASE_URL" not in env("worker"), "the worker needs no database credentials"


@pytest.mark.parametrize("service", ["worker", "sink", "review"])
def test_ports_and_health_checks_match_the_settings(service):
    svc = SERVICES[service]
    port = port_of(service)
    exposed = {int(str(p).split(":")[-1]) for p in svc.get("expose", [])}
    published = {int(str(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])}
    assert port in exposed | published, f"{service} listens on {port}, which is neither exposed nor published"
    check = " ".join(svc["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/health" in check


def test_published_ports_bind_to_loopback_only():
    for name, svc in SERVICES.items():
        for mapping in svc.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} on every interface"


def test_prometheus_in_the_stack_scrapes_the_services_on_their_ports():
    prom = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    worker = jobs["custodes-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"] and worker["port"] == port_of("worker")
    assert jobs["custodes-sink"]["static_configs"][0]["targets"] == [f"sink:{port_of('sink')}"]
    assert jobs["custodes-review"]["static_configs"][0]["targets"] == [f"review:{port_of('review')}"]
    listen = next(a for a in SERVICES["prometheus"]["command"] if a.startswith("--web.listen-address="))
    assert listen.endswith(":9090")


def _mounts(service: str) -> dict[str, Path]:
    """container path -> host path of the service's bind mounts (relative sources)."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            out[target] = (COMPOSE_DIR / source).resolve()
    return out


def test_every_mounted_file_exists():
    for name in SERVICES:
        for target, host in _mounts(name).items():
            assert host.exists(), f"{name} mounts {host} at {target}, which does not exist"


def test_prometheus_gets_the_config_and_rules_it_references():
    mounts = _mounts("prometheus")
    assert mounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus" / "prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == DEPLOY / "prometheus" / "rules"
    config = next(a for a in SERVICES["prometheus"]["command"] if a.startswith("--config.file="))
    assert config == "--config.file=/etc/prometheus/prometheus.yml"


def test_grafana_gets_provisioning_and_dashboards():
    mounts = _mounts("grafana")
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/custodes.yaml")["providers"][0]
    assert mounts[provider["options"]["path"]] == DEPLOY / "grafana" / "dashboards"
    assert mounts["/etc/grafana/provisioning/datasources"] == DEPLOY / "grafana/provisioning/datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == DEPLOY / "grafana/provisioning/dashboards"
    source = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert urlsplit(source["url"]).hostname == "prometheus" and urlsplit(source["url"]).port == 9090
    home = env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    directory, _, file = home.rpartition("/")
    assert (mounts[directory] / file).is_file()


def test_depends_on_names_real_services():
    for name, svc in SERVICES.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
    assert SERVICES["sink"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_no_secret_is_committed():
    env_key = SERVICES["worker"]["environment"]["CUSTODES_PSEUDONYM_KEY"]
    assert env_key.startswith("${CUSTODES_PSEUDONYM_KEY:?"), "the pseudonym key must come from the operator"
    audit_key = SERVICES["sink"]["environment"]["CUSTODES_AUDIT_KEY"]
    assert audit_key.startswith("${CUSTODES_AUDIT_KEY:?"), "the audit key must come from the operator"
    assert SERVICES["review"]["environment"]["CUSTODES_AUDIT_KEY"] == audit_key  # one key for the chain
    if (COMPOSE_DIR / ".env").exists():  # an operator's own file: it must never be committed
        gitignore = REPO / ".gitignore"
        assert gitignore.exists() and ".env" in gitignore.read_text(), "deploy/compose/.env is not ignored"
