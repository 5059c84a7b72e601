"""`APP_WEBHOOK_URL` and `APP_WEBHOOK_SECRET` are checked at startup, in every environment: one
line naming the variable and what to set, never the secret's value."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from facetoface.config import ConfigurationError
from tests.conftest import base_settings
from tests.support.cli import clean_environment, cli
from tests.webhooks.conftest import SECRET

URL = "https://app.example.com/hooks/facetoface"
#: Secrets the service must refuse, and the rule each breaks.
BAD_SECRETS = {
    base64.b64encode(b"x" * 32).decode(): "must start with whsec_",
    "whsec_not base64 at all!": "is not whsec_ followed by base64",
    "whsec_" + base64.b64encode(b"short").decode(): "24 to 64 random bytes",
    "whsec_" + base64.b64encode(b"y" * 65).decode(): "24 to 64 random bytes",
}


def problems(**values: Any) -> str:
    settings = base_settings(**values)
    with pytest.raises(ConfigurationError) as refused:
        settings.check_production_ready()
    return str(refused.value)


def test_a_standard_webhooks_secret_is_accepted_and_decoded() -> None:
    settings = base_settings(app_webhook_url=URL, app_webhook_secret=SECRET)
    settings.check_production_ready()
    assert settings.webhook_problems() == []
    assert settings.app_webhook_signing_key == bytes(range(7, 39))
    assert settings.webhooks_enabled


@pytest.mark.parametrize(("secret", "rule"), list(BAD_SECRETS.items()))
@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_a_bad_secret_refuses_to_start_in_one_line(
    secret: str, rule: str, environment: str
) -> None:
    message = problems(environment=environment, app_webhook_url=URL, app_webhook_secret=secret)
    assert "APP_WEBHOOK_SECRET" in message
    assert rule in message
    assert "\n" not in message
    assert secret not in message
    assert secret.removeprefix("whsec_") not in message


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"app_webhook_url": URL}, "APP_WEBHOOK_SECRET is required"),
        ({"app_webhook_secret": SECRET}, "APP_WEBHOOK_URL is not"),
        ({"app_webhook_url": "ftp://app.example.com/x", "app_webhook_secret": SECRET}, "http(s)"),
        (
            {
                "environment": "production",
                "app_webhook_url": "http://app.example.com/x",
                "app_webhook_secret": SECRET,
            },
            "https:// in production",
        ),
    ],
)
def test_incomplete_webhook_settings_refuse_to_start(values: dict[str, Any], named: str) -> None:
    message = problems(**values)
    assert named in message
    assert SECRET not in message


def test_serve_refuses_a_bad_secret_in_one_line(tmp_path: Path) -> None:
    env = clean_environment(
        ENVIRONMENT="development",
        DATA_DIR=str(tmp_path / "data"),
        APP_WEBHOOK_URL=URL,
        APP_WEBHOOK_SECRET="whsec_tooshort",
    )
    run = cli("serve", env=env, cwd=tmp_path, check=False)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "APP_WEBHOOK_SECRET" in lines[0]
    assert "tooshort" not in lines[0]
    assert "Traceback" not in run.stderr
