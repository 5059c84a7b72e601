"""Reading tavus_contract.json and checking requests and responses against it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).with_name("tavus_contract.json")
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@cache
def contract() -> dict[str, Any]:
    """The whole contract file."""
    data: dict[str, Any] = json.loads(CONTRACT_FILE.read_text("utf-8"))
    return data


def endpoint(name: str) -> dict[str, Any]:
    """One endpoint's entry."""
    entry: dict[str, Any] = contract()["endpoints"][name]
    return entry


def error(name: str) -> dict[str, Any]:
    """One documented error answer (status and body)."""
    entry: dict[str, Any] = contract()["errors"][name]
    return entry


@dataclass(frozen=True)
class Field:
    """One documented field: its type and constraints."""

    type: str
    required: bool = False
    nullable: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: int | None = None
    pattern: str | None = None


def field_spec(spec: str | dict[str, Any]) -> Field:
    """A field entry, written either as a bare type name or as an object."""
    if isinstance(spec, str):
        return Field(type=spec)
    return Field(
        type=spec["type"],
        required=spec.get("required", False),
        nullable=spec.get("nullable", False),
        enum=tuple(spec["enum"]) if "enum" in spec else None,
        minimum=spec.get("minimum"),
        pattern=spec.get("pattern"),
    )


def fields(specs: dict[str, Any]) -> dict[str, Field]:
    """A field map of the contract, normalised."""
    return {name: field_spec(spec) for name, spec in specs.items()}


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string[]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "timestamp":
        return isinstance(value, str) and bool(_ISO.match(value))
    raise ValueError(f"unknown contract type {kind!r}")


def value_problems(name: str, value: Any, spec: Field) -> list[str]:
    """What is wrong with one value, by its documented spec."""
    if value is None:
        return [] if spec.nullable else [f"{name}: null is not allowed"]
    if not _has_type(value, spec.type):
        return [f"{name}: expected {spec.type}, got {type(value).__name__} {value!r}"]
    problems = []
    if spec.enum is not None and value not in spec.enum:
        problems.append(f"{name}: {value!r} is not one of {list(spec.enum)}")
    if spec.minimum is not None and value < spec.minimum:
        problems.append(f"{name}: {value!r} is below {spec.minimum}")
    if spec.pattern is not None and not re.search(spec.pattern, value):
        problems.append(f"{name}: {value!r} does not match {spec.pattern}")
    return problems


def body_problems(
    body: Any, specs: dict[str, Field], *, closed: bool, where: str = "body"
) -> list[str]:
    """What is wrong with a JSON object against documented fields.

    Required fields must be present; present documented fields must fit their spec; with
    ``closed``, no undocumented field may appear (what a client sends).
    """
    if not isinstance(body, dict):
        return [f"{where}: expected an object, got {type(body).__name__}"]
    problems = [
        f"{where}.{name}: required but missing"
        for name, spec in specs.items()
        if spec.required and name not in body
    ]
    for name, value in body.items():
        spec = specs.get(name)
        if spec is None:
            if closed:
                problems.append(f"{where}.{name}: not a documented field")
            continue
        problems.extend(value_problems(f"{where}.{name}", value, spec))
    return problems


def query_problems(query: dict[str, str], specs: dict[str, Any]) -> list[str]:
    """What is wrong with a query string against documented parameters (values are text)."""
    normalised = fields(specs)
    problems = []
    for name, raw in query.items():
        spec = normalised.get(name)
        if spec is None:
            problems.append(f"query {name}: not a documented parameter")
        elif spec.type == "integer" and not raw.isdigit():
            problems.append(f"query {name}: expected an integer, got {raw!r}")
        elif spec.type == "boolean" and raw not in ("true", "false"):
            problems.append(f"query {name}: expected true or false, got {raw!r}")
        elif spec.enum is not None and raw not in spec.enum:
            problems.append(f"query {name}: {raw!r} is not one of {list(spec.enum)}")
    return problems


def path_matches(template: str, path: str) -> bool:
    """Whether a concrete path (after the version prefix) fits a template like ``/a/{id}``."""
    pattern = re.sub(r"\\{[a-z_]+\\}", "[A-Za-z0-9_-]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def response_fields(name: str) -> dict[str, Field]:
    """The documented response fields of an endpoint."""
    return fields(endpoint(name)["response"].get("fields", {}))


def item_fields(name: str) -> dict[str, Field]:
    """The fields of each entry of a list endpoint's ``data``."""
    items = endpoint(name)["response"]["fields"]["data"]["items"]
    shapes = contract()["shapes"]
    if items in shapes:
        return fields(shapes[items])
    return response_fields(items)


def parse_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp of the contract as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
