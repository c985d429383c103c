"""The deploy/ files describe the topology of the docs: parsed, cross-checked, rendered.

Kubernetes manifests are parsed with PyYAML; the kustomization must list every manifest,
probes must name real routes on a real container port, and every setting they pass must
be one the settings object reads. Where `kubectl` is on PATH (it is in CI: `.ci/run`), the
kustomization is also rendered by `kubectl kustomize`, as `kubectl apply -k` would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from services.bootstrap import bootstrap
from services.http.app import create_app
from services.settings import Settings
from tests.support.settings_names import settings_variables

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
K8S = DEPLOY / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        p.name: documents(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"
    }


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for docs in manifests().values() for doc in docs if doc["kind"] == kind]


def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = documents(K8S / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(manifests())


def test_the_manifests_hold_the_production_topology() -> None:
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    assert set(deployments) == {"consent-ledger-api", "consent-ledger-worker"}
    assert deployments["consent-ledger-api"]["spec"]["replicas"] >= 2
    assert deployments["consent-ledger-worker"]["spec"]["replicas"] == 2  # one stand-by
    worker = deployments["consent-ledger-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker"]
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in by_kind("PodDisruptionBudget")
    }
    assert budgets == set(deployments)
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
            assert secrets == {"consent-ledger-keys"}
            keys = next(v for v in pod["volumes"] if "secret" in v)["secret"]["items"]
            assert {item["path"] for item in keys} == {"master.key", "checkpoint-signing.key"}
            url = next(e for e in container["env"] if e["name"] == "LEDGER_DATABASE_URL")
            assert url["valueFrom"]["secretKeyRef"]["name"] == "consent-ledger-database"


def test_probes_point_at_real_routes_on_a_real_port(tmp_path: Path) -> None:
    services = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    try:
        with TestClient(create_app(services)) as client:
            answers = {path: client.get(path).status_code for path in ("/readyz", "/healthz")}
    finally:
        services.close()
    api = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "consent-ledger-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert answers[get["path"]] == 200, f"{probe} {get['path']}: {answers}"
        assert get["port"] in ports
    service = by_kind("Service")[0]
    assert service["spec"]["ports"][0]["targetPort"] in ports
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    port = container["args"][container["args"].index("--port") + 1]
    assert int(port) == ports["http"]


def test_every_setting_the_deploy_files_pass_is_one_the_ledger_reads() -> None:
    known = settings_variables()
    config = by_kind("ConfigMap")[0]["data"]
    compose = documents(DEPLOY / "compose.yaml")[0]
    passed = set(config) | set(compose["x-ledger"]["environment"])
    assert passed <= known, f"unknown settings: {passed - known}"


def test_compose_runs_kafka_in_kraft_mode_two_apis_and_two_workers_with_health_checks() -> None:
    compose = documents(DEPLOY / "compose.yaml")[0]
    services = compose["services"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["worker"]
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka
    for name in ("postgres", "kafka", "api", "worker"):
        assert "healthcheck" in services[name], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    named = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in named, volume


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user, "no USER line"
    assert user[-1].split(":")[0] not in ("root", "0")
    assert "python:3.11-slim" in dockerfile


def test_kubectl_renders_the_kustomization_when_it_is_installed() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # Not a skip: the parse checks above ran; only the rendering needs the binary.
        return
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(out) if doc)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
        ]
    )
