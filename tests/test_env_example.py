"""`.env.example` lists every setting with a comment, and what it sets uncommented is a
production configuration `serve` accepts (so it names every variable production needs)."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from facetoface.config import Environment, Settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def test_every_setting_is_listed_with_a_comment() -> None:
    lines = EXAMPLE.read_text("utf-8").splitlines()
    listed = {}
    for number, line in enumerate(lines):
        found = re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=", line)
        if found:
            listed[found.group(1)] = number
    assert set(listed) == {name.upper() for name in Settings.model_fields}
    for name, number in listed.items():
        above = lines[number - 1] if number else ""
        assert above.startswith("# "), f"{name} has no comment"
        assert not re.match(r"^# [A-Z][A-Z0-9_]*=", above), f"{name} has no comment"


def test_the_uncommented_values_are_a_production_configuration() -> None:
    values = {k: v for k, v in dotenv_values(EXAMPLE).items() if v is not None}
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in values.items()})  # type: ignore[call-arg]
    assert settings.environment is Environment.production
    settings.check_production_ready()  # a variable production needs missing would fail here
