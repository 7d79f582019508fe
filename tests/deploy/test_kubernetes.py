"""deploy/kubernetes: manifests parse, probes hit the real paths and ports, env names are real settings."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from stream.cli import main as cli
from stream.contract.settings import REPO_CONFIG, Settings, load

from .common import DEPLOY, ROLE_PORT, SETTINGS_ENV

K8S = DEPLOY / "kubernetes"
FILES = sorted(K8S.glob("*.yaml"))
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                doc["__file__"] = path.name
                docs.append(doc)
    return docs


DOCS = documents()
MANIFESTS = [d for d in DOCS if d.get("kind") != "Kustomization"]
CONFIG = next(d for d in DOCS if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "custodes-config")
SECRET = next(d for d in DOCS if d["kind"] == "Secret")
PODS = [d for d in DOCS if d["kind"] in WORKLOADS]


def containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for doc in PODS:
        spec = doc["spec"]["template"]["spec"]
        for c in spec["containers"]:
            out.append((f"{doc['kind']}/{doc['metadata']['name']}", doc, c))
    return out


CONTAINERS = containers()
IDS = [name for name, _, _ in CONTAINERS]


def test_every_manifest_parses_and_is_a_kubernetes_object():
    assert {"kustomization.yaml", "configmap.yaml", "secret.template.yaml", "worker.yaml", "sink.yaml",
            "review.yaml"} <= {p.name for p in FILES}
    for doc in MANIFESTS:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc["__file__"]


def test_kustomization_lists_existing_files_but_never_the_secret_template():
    kustomization = next(d for d in DOCS if d["kind"] == "Kustomization")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.template.yaml" not in kustomization["resources"]
    assert kustomization["namespace"] == "custodes"


def test_the_three_roles_are_deployed():
    roles = {c["args"][0]: doc["kind"] for _, doc, c in CONTAINERS}
    assert roles["worker"] in {"StatefulSet", "Deployment"}
    assert roles["sink"] == "Deployment" and roles["review"] == "Deployment"
    assert roles["db"] == "Job"


def test_configmap_holds_only_real_settings_with_valid_values():
    data = CONFIG["data"]
    assert set(data) <= SETTINGS_ENV, set(data) - SETTINGS_ENV
    assert "CUSTODES_DATABASE_URL" not in data and "CUSTODES_PSEUDONYM_KEY" not in data
    assert "CUSTODES_AUDIT_KEY" not in data
    load(REPO_CONFIG, env=data)  # raises on an invalid value


def test_secret_template_has_placeholders_only():
    values = SECRET["stringData"]
    assert set(values) == {"CUSTODES_DATABASE_URL", "CUSTODES_PSEUDONYM_KEY", "CUSTODES_AUDIT_KEY"}
    for key, value in values.items():
        assert "REPLACE_ME" in value, f"{key} in the template must be a placeholder"
    assert "data" not in SECRET


def _settings_for(container: dict[str, Any]) -> Settings:
    env = dict(CONFIG["data"]) if any(
        e.get("configMapRef", {}).get("name") == "custodes-config" for e in container.get("envFrom", [])
    ) else {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    return load(REPO_CONFIG, env=env)


@pytest.mark.parametrize("name, doc, container", CONTAINERS, ids=IDS)
def test_env_names_are_settings_and_secrets_come_from_the_secret(name, doc, container):
    assert container["args"][0] in cli.commands or container["args"][0] == "review", name
    for e in container.get("env", []):
        assert e["name"] in SETTINGS_ENV, f"{name}: {e['name']} is not a setting"
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == SECRET["metadata"]["name"] and ref["key"] in SECRET["stringData"], name
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == CONFIG["metadata"]["name"], name
    _settings_for(container)


@pytest.mark.parametrize("name, doc, container", [c for c in CONTAINERS if c[2]["args"][0] in ROLE_PORT],
                         ids=[n for n, _, c in CONTAINERS if c["args"][0] in ROLE_PORT])
def test_probes_hit_health_and_ready_on_the_configured_port(name, doc, container):
    role = container["args"][0]
    port = getattr(_settings_for(container), ROLE_PORT[role])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in ports.values(), f"{name} listens on {port}, not declared in ports {ports}"

    def resolve(probe: dict[str, Any]) -> tuple[str, int]:
        http = probe["httpGet"]
        target = http["port"]
        return http["path"], ports[target] if isinstance(target, str) else target

    assert resolve(container["livenessProbe"]) == ("/health", port)
    assert resolve(container["readinessProbe"]) == ("/ready", port)
    if "startupProbe" in container:
        assert resolve(container["startupProbe"]) == ("/health", port)
    notes = doc["spec"]["template"]["metadata"].get("annotations", {})
    assert notes.get("prometheus.io/scrape") == "true" and int(notes["prometheus.io/port"]) == port
    assert notes.get("prometheus.io/path") == "/metrics"


@pytest.mark.parametrize("name, doc, container", CONTAINERS, ids=IDS)
def test_resources_and_hardening(name, doc, container):
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
    assert resources["limits"]["memory"], name
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounts, f"{name}: a read-only root file system needs a writable /tmp"


def test_services_select_pods_and_target_declared_ports():
    for svc in (d for d in DOCS if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        matching = [d for d in PODS if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert matching, f"Service {svc['metadata']['name']} selects no pod"
        names = {p["name"] for d in matching for c in d["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in names, svc["metadata"]["name"]


def test_worker_statefulset_scales_by_partitions():
    worker = next(d for d in PODS if d["kind"] == "StatefulSet")
    partitions = int(CONFIG["data"]["CUSTODES_PARTITIONS"])
    assert 1 <= worker["spec"]["replicas"] <= partitions
    assert worker["spec"]["podManagementPolicy"] == "Parallel"


def test_kubectl_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (optional: the other tests parse the manifests themselves)")
    proc = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(proc.stdout) if d)
    assert kinds == sorted(["Namespace", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget",
                            "Service", "Deployment", "Service", "Deployment"])
    assert all(d["metadata"].get("namespace") == "custodes"
               for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] != "Namespace")
