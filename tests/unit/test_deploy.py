"""The deployment files say what operators rely on: probes, non-root, resources, restarts,
a scalable fetcher. Their structure is checked, and Docker Compose (v2, or Debian's v1
where the plugin is missing) validates the compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.local._proc import apt_install

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("config", "fetcher", "processor", "sender")


def k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_every_k8s_file_parses_into_named_objects() -> None:
    objects = k8s_objects()
    assert {o["kind"] for o in objects} >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Kustomization",
    }
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")
    for o in objects:
        if o["kind"] != "Kustomization":
            assert o["metadata"]["namespace" if o["kind"] != "Namespace" else "name"] == "mailroom"


@pytest.mark.parametrize("service", SERVICES)
def test_each_deployment_has_probes_resources_and_runs_as_non_root(service: str) -> None:
    deployment = of_kind("Deployment")[f"mailroom-{service}"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert deployment["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert f"services.{service}.app:app" in container["command"]
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"mailroom"}


def test_fetchers_run_as_two_replicas_and_the_config_api_has_a_service() -> None:
    deployments = of_kind("Deployment")
    assert deployments["mailroom-fetcher"]["spec"]["replicas"] == 2
    api = of_kind("Service")["mailroom-config"]
    config_pod = deployments["mailroom-config"]["spec"]["template"]
    assert api["spec"]["selector"].items() <= config_pod["metadata"]["labels"].items()
    (container,) = config_pod["spec"]["containers"]
    assert api["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}


def test_the_example_secret_holds_only_placeholders() -> None:
    secret = of_kind("Secret")["mailroom"]["stringData"]
    assert {"MAILROOM_SECRET_KEY", "MAILROOM_API_TOKEN", "MAILROOM_BROKER_URL"} <= set(secret)
    for key, value in secret.items():
        if "://" in value:
            password = re.search(r"://[^:/@]+:([^@]*)@", value)
            assert password is None or password.group(1) == "changethis", key
        else:
            assert value == "changethis", key


def test_compose_services_have_readiness_checks_restarts_and_a_scalable_fetcher() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        service = services[name]
        assert service["restart"] in {"unless-stopped", "always", "on-failure"}, name
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name
    fetcher = services["fetcher"]
    assert "container_name" not in fetcher and "ports" not in fetcher
    for name in ("rabbitmq", "mongodb"):
        assert services[name]["restart"] == "unless-stopped" and services[name]["healthcheck"]


def test_the_image_checks_liveness_and_runs_as_non_root() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def compose_command() -> list[str]:
    """Docker Compose v2 where the plugin exists, else Debian's ``docker-compose`` (installed
    here if missing: CI runs as root), so the file is validated on every machine."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose") is None:
        apt_install("docker-compose")
    return ["docker-compose"]


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_docker_compose_accepts_the_file() -> None:
    result = compose_config(DEPLOY / "compose.yaml")
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    # The validator really validates: a service with an unknown key is refused.
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  fetcher:\n    image: mailroom\n    restart_policy: always\n")
    assert compose_config(broken).returncode != 0


def test_the_image_build_script_is_executable_bash_named_by_make_and_readme() -> None:
    # The build itself is slow (mmdebstrap + podman): `make image` runs it, not `make test`.
    script = DEPLOY / "build-image.sh"
    assert script.stat().st_mode & 0o111, "deploy/build-image.sh is not executable"
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    root = DEPLOY.parent
    assert re.search(r"^image:.*\n\tdeploy/build-image\.sh", (root / "Makefile").read_text(), re.M)
    assert "deploy/build-image.sh" in (root / "README.md").read_text()


def test_the_image_takes_its_base_as_a_build_argument() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=\S+", dockerfile, re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE}", "${BASE}"]
