"""deploy/kubernetes: rendered by kustomize and checked without a cluster.

Every object of the base and of the production overlay, as `kubectl kustomize` renders them,
is validated against Kubernetes' own JSON schemas (kubernetes-validate, strict: an unknown
field is an error) for the oldest and newest Kubernetes versions we claim; then the
properties that matter are asserted: probes, the restricted security context, the drain,
the disruption budget, the autoscaler, the migration Job and where secrets come from.

kubectl (with its built-in kustomize) is part of this project's machine image but is not in
Debian's archive (Debian's `kubernetes-client` is 1.20, whose kustomize is too old): without
it these tests are skipped loudly, and fail under `CI=true`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import KUBERNETES_DIR, require_tool

#: The oldest Kubernetes we support (autoscaling/v2 and policy/v1 are GA from 1.23/1.21; the
#: schemas bundled start at 1.25) and the newest the validator knows.
VERSIONS = ("1.28", kubernetes_validate.latest_version())
TARGETS = ("base", "overlays/production")
SERVER = {"app.kubernetes.io/name": "facetoface", "app.kubernetes.io/component": "server"}
#: A path in the container (not on this machine): its one writable place.
SCRATCH = "/tmp"  # noqa: S108


@cache
def _render_cached(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = require_tool(
        "kubectl", "the Kubernetes manifests are NOT checked", "kubectl with kustomize v5"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES_DIR / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(target: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize deploy/kubernetes/<target>` renders."""
    return list(_render_cached(target))


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec["containers"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_valid_against_the_kubernetes_schemas(target: str, version: str) -> None:
    objects = render(target)
    assert objects
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {path}: {exc}")


@pytest.mark.parametrize("target", TARGETS)
def test_the_deployment_probes_drains_and_runs_restricted(target: str) -> None:
    objects = render(target)
    deployment = only(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]

    assert "replicas" not in spec  # the autoscaler owns the count
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:1] == ["serve"]
    # The drain: out of the endpoints during preStop, then SIGTERM and the service's own
    # bounded drain (SHUTDOWN_GRACE_SECONDS), all before the kubelet's SIGKILL.
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    config = only(objects, "ConfigMap")["data"]
    grace = float(config["SHUTDOWN_GRACE_SECONDS"])
    assert float(config["SHUTDOWN_READINESS_DELAY_SECONDS"]) <= grace / 2
    assert int(sleep[1]) + grace < pod["terminationGracePeriodSeconds"] <= 120
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    assert container["resources"]["limits"].keys() == {"cpu", "memory"}
    config_maps = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert [name.startswith("facetoface-config-") for name in config_maps] == [True]  # hashed
    assert {"secretRef": {"name": "facetoface-secrets"}} in container["envFrom"]
    assert pod["automountServiceAccountToken"] is False
    assert spec["selector"]["matchLabels"] == SERVER


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_meet_the_restricted_pod_security_standard(target: str, kind: str) -> None:
    pod = only(render(target), kind)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's fixed uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in containers(pod):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert SCRATCH in mounts
        (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[SCRATCH]]
        assert "emptyDir" in volume
        assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC"))


@pytest.mark.parametrize("target", TARGETS)
def test_service_budget_and_autoscaler_select_the_servers_only(target: str) -> None:
    objects = render(target)
    service = only(objects, "Service")
    assert service["spec"]["selector"] == SERVER
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == SERVER
    assert budget["spec"]["maxUnavailable"] == 1
    hpa = only(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": only(objects, "Deployment")["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2  # one replica can always go away
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The migration Job's pods are not servers: they must not receive traffic or count.
    job_labels = only(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not SERVER.items() <= job_labels.items()


@pytest.mark.parametrize("target", TARGETS)
def test_the_migration_job_runs_db_init_as_the_owner(target: str) -> None:
    job = only(render(target), "Job")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["facetoface-db-init"]
    assert {"secretRef": {"name": "facetoface-migrate"}} in container["envFrom"]
    deployment = only(render(target), "Deployment")
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == server["image"]  # migrations of the version that serves
    # The owner's credentials reach the Job only.
    assert {"secretRef": {"name": "facetoface-migrate"}} not in server["envFrom"]


def test_production_uses_its_namespace_image_and_settings_and_ships_no_secret() -> None:
    objects = render("overlays/production")
    namespace = only(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"]
    assert not [o for o in objects if o["kind"] == "Secret"]  # created in the cluster instead
    (server,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert server["image"].startswith("registry.example.com/")
    config = only(objects, "ConfigMap")["data"]
    assert config["ENVIRONMENT"] == "production"
    assert config["PUBLIC_BASE_URL"].startswith("https://")
    assert config["DEPLOYMENT_NAME"] not in {"facetoface", "example"}
    assert config["DB_POOLER_MODE"] == "transaction"


def test_the_base_secrets_are_placeholders() -> None:
    for secret in [o for o in render("base") if o["kind"] == "Secret"]:
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{secret['metadata']['name']}.{key} looks real"
