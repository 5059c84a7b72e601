"""structlog, configured once: console output for people, JSON for pipelines.

Standard-library loggers (uvicorn, sqlalchemy, alembic) go through the same processors, so
every line has the same shape. uvicorn's access log is off: it prints raw paths, and callback
paths carry secret tokens; `RequestContextMiddleware` logs route templates instead.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO", fmt: str = "console", *, cache: bool = True) -> None:
    """Configure structlog and the standard library's logging (idempotent).

    `cache=False` keeps loggers re-reading the configuration (tests that capture logs need
    it: a logger cached on first use ignores a later `structlog.testing.capture_logs`).
    """
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # Plain tracebacks: rich ones print local variables, which can hold tokens.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        renderer,
                    ],
                    "foreign_pre_chain": _SHARED,
                }
            },
            "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structlog"}},
            "root": {"handlers": ["default"], "level": level.upper()},
            "loggers": {
                "uvicorn.access": {"level": "WARNING", "propagate": True},
                "uvicorn.error": {"level": level.upper(), "propagate": True, "handlers": []},
                "sqlalchemy.engine": {"level": "WARNING"},
                "httpx": {"level": "WARNING"},
                "httpcore": {"level": "WARNING"},
                # At DEBUG it prints every statement with its parameters (transcripts,
                # names, callback URLs): never, whatever LOG_LEVEL says.
                # Alembic announces its plugins and every step at INFO; commands print their
                # own one-line result instead.
                "alembic": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[
            # Drop below-level events before any processor spends time on them.
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache,
    )
