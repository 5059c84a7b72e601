"""deploy/compose, checked without Docker (part of `make test`; `make deploy-test` runs it).

What the running stack cannot show here, or shows only slowly: the file's start order and
isolation of secrets, the images an operator can replace, and Grafana's provisioning, which
the deploy test cannot start (Grafana is not in Debian and no image registry is reachable),
checked statically against what compose mounts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import COMPOSE_DIR, DEPLOY, ROOT, missing, require_tool

COMPOSE = COMPOSE_DIR / "compose.yaml"
#: The official images for real use, each replaceable through an environment variable.
OFFICIAL_IMAGES = {
    "postgres": ("POSTGRES_IMAGE", "postgres:"),
    "caddy": ("CADDY_IMAGE", "caddy:"),
    "prometheus": ("PROMETHEUS_IMAGE", "prom/prometheus:"),
    "grafana": ("GRAFANA_IMAGE", "grafana/grafana:"),
    "pgbouncer": ("PGBOUNCER_IMAGE", "facetoface-pgbouncer:"),
    "app-1": ("FACETOFACE_IMAGE", "facetoface:"),
    "migrate": ("FACETOFACE_IMAGE", "facetoface:"),
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def mounts(service: str) -> dict[str, Path]:
    """The service's bind mounts: path in the container → file or folder in the repository."""
    found = {}
    for volume in services()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (COMPOSE_DIR / source).resolve()
    return found


@pytest.mark.parametrize("service", sorted(OFFICIAL_IMAGES))
def test_every_image_is_the_official_one_unless_replaced(service: str) -> None:
    variable, official = OFFICIAL_IMAGES[service]
    image = services()[service]["image"]
    assert re.fullmatch(rf"\$\{{{variable}:-{re.escape(official)}[^}}]+\}}", image), image


def test_start_is_gated_on_health() -> None:
    defined = services()

    def gate(service: str) -> dict[str, str]:
        return {dep: c["condition"] for dep, c in defined[service]["depends_on"].items()}

    assert gate("migrate") == {"postgres": "service_healthy"}
    assert gate("pgbouncer") == {"postgres": "service_healthy"}
    for replica in ("app-1", "app-2"):
        assert gate(replica) == {
            "migrate": "service_completed_successfully",
            "pgbouncer": "service_healthy",
        }
    assert gate("caddy") == {"app-1": "service_healthy", "app-2": "service_healthy"}
    assert gate("grafana") == {"prometheus": "service_healthy"}
    for service in ("postgres", "pgbouncer", "caddy", "prometheus"):
        assert defined[service]["healthcheck"]["test"][0] == "CMD"
    assert defined["migrate"]["entrypoint"] == ["facetoface-db-init"]
    assert defined["migrate"]["restart"] == "no"


def test_the_replicas_hold_the_login_roles_password_only() -> None:
    for replica in ("app-1", "app-2"):
        definition = services()[replica]
        text = json.dumps(definition)
        assert "POSTGRES_PASSWORD" not in text
        url = definition["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql://facetoface_app:${APP_DB_PASSWORD")
        assert "@pgbouncer:6432/" in url
        assert definition["environment"]["DB_POOLER_MODE"] == "transaction"
        assert definition["read_only"] is True
        assert definition["cap_drop"] == ["ALL"]
    # Required secrets fail loudly when the env file lacks them.
    for name in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "SITE_ADDRESS"):
        assert re.search(rf"\$\{{{name}:\?", COMPOSE.read_text()), name


def test_the_examples_name_every_variable_compose_requires() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    example = (COMPOSE_DIR / "env.example").read_text()
    assert required <= set(re.findall(r"^(\w+)=", example, re.M))
    service = (COMPOSE_DIR / "facetoface.env.example").read_text()
    assert "ENVIRONMENT=production" in service
    assert not re.search(r"^(DATABASE_URL|POSTGRES_PASSWORD)=", service, re.M)


def test_every_mounted_file_exists() -> None:
    for service in services():
        for target, source in mounts(service).items():
            assert source.exists(), f"{service}: {source} (mounted at {target}) is missing"


def test_prometheus_scrapes_the_replicas_as_the_alert_rules_expect() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "facetoface"  # deploy/prometheus/alerts.yml's job
    assert 'job="facetoface"' in (DEPLOY / "prometheus" / "alerts.yml").read_text()
    targets = job["static_configs"][0]["targets"]
    assert targets == ["app-1:8000", "app-2:8000"]
    rules = mounts("prometheus")
    (rule_target,) = [t for t, s in rules.items() if s.name == "alerts.yml"]
    assert Path(rule_target).match(config["rule_files"][0])


def test_prometheus_configuration_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing(
            "promtool (Debian's `prometheus`)",
            "the compose Prometheus configuration is NOT checked",
        )
    result = subprocess.run(
        [str(promtool), "check", "config", str(COMPOSE_DIR / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_loads_the_dashboard_from_prometheus() -> None:
    """Statically, since the deploy test cannot start Grafana (see the module docstring)."""
    provisioned = mounts("grafana")
    provisioning = provisioned["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    # The datasource's URL is the compose service, on the port Prometheus listens on.
    assert datasource["url"] == "http://prometheus:9090"
    assert "--web.listen-address=:9090" in services()["prometheus"]["command"]

    (provider,) = yaml.safe_load((provisioning / "dashboards" / "facetoface.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    dashboards = {t: s for t, s in provisioned.items() if Path(t).parent == Path(folder)}
    assert [s.name for s in dashboards.values()] == ["facetoface.json"]

    dashboard = json.loads((DEPLOY / "grafana" / "facetoface.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # The dashboard's data source is a variable of type prometheus: Grafana picks the
    # provisioned default.
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    uids = set(re.findall(r'"uid":\s*"([^"]+)"', json.dumps(dashboard["panels"])))
    assert uids == {"${datasource}"}


def test_docker_compose_accepts_the_file() -> None:
    docker_compose = require_tool(
        "docker-compose",
        "compose.yaml is NOT validated by compose itself",
        "Debian's docker-compose",
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "POSTGRES_PASSWORD": "x" * 24,
        "APP_DB_PASSWORD": "y" * 24,
        "GRAFANA_ADMIN_PASSWORD": "z" * 24,
        "SITE_ADDRESS": "facetoface.example.com",
        "FACETOFACE_ENV_FILE": str(COMPOSE_DIR / "facetoface.env.example"),
    }
    result = subprocess.run(
        [docker_compose, "--project-directory", str(COMPOSE_DIR), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == set(services())
    assert rendered["services"]["app-2"]["environment"]["ENVIRONMENT"] == "production"


def test_the_readme_shows_the_commands_the_deploy_test_runs() -> None:
    from tests.deploy import test_compose

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying: the image") :]
    section = section[: section.index("\n## ", 1)]
    assert f"make image IMAGE={test_compose.APP_IMAGE} PYTHON_IMAGE={test_compose.BASE_IMAGE}" in (
        section
    )
    assert f"make image PYTHON_IMAGE={test_compose.BASE_IMAGE}" in section
    assert "up --detach --no-build " + " ".join(test_compose.SERVICES) in section
    assert "-f tests/deploy/compose.hostnet.yaml build pgbouncer" in section
    for path in set(re.findall(r"(?:deploy|tests/deploy)/[\w./-]*\w", section)):
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"
