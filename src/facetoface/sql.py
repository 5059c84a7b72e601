"""SQL building blocks that compile to the right function on each dialect.

They let one statement gather a user's whole context as JSON on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class json_object(FunctionElement[Any]):
    """`json_object('k', v, ...)`: `json_build_object` on PostgreSQL, `json_object` on SQLite."""

    type = JSON()
    inherit_cache = True


class json_array_agg(FunctionElement[Any]):
    """Aggregate values into a JSON array; an empty group gives `[]`, never NULL."""

    type = JSON()
    inherit_cache = True


@compiles(json_object, "postgresql")
def _json_object_pg(element: json_object, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "sqlite")
def _json_object_sqlite(element: json_object, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_array_agg, "postgresql")
def _json_agg_pg(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"coalesce(json_agg({compiler.process(element.clauses, **kw)}), '[]'::json)"


@compiles(json_array_agg, "sqlite")
def _json_agg_sqlite(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


def json_fields(**columns: Any) -> json_object:
    """`json_object` from keyword arguments: `json_fields(name=t.c.name)`."""
    args: list[Any] = []
    for key, column in columns.items():
        args.extend((_literal(key), column))
    return json_object(*args)


def _literal(key: str) -> Any:
    from sqlalchemy import literal_column

    # Keys are our own identifiers, never user input; inline them so statements cache well.
    assert key.isidentifier()
    return literal_column(f"'{key}'")


class embed_json(FunctionElement[Any]):
    """A JSON column placed inside `json_object` as JSON, not as a quoted string (SQLite)."""

    type = JSON()
    inherit_cache = True


@compiles(embed_json, "postgresql")
def _embed_json_pg(element: embed_json, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(embed_json, "sqlite")
def _embed_json_sqlite(element: embed_json, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json({compiler.process(element.clauses, **kw)})"
