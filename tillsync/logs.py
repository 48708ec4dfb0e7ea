"""Logging, configured once for a process: every tillsync logger under ``tillsync.``, as text
lines or as JSON lines for a log shipper.

The worker hands this dict to Faust's worker, which applies it with ``dictConfig`` in place of
its own set-up; other commands apply it themselves with :func:`configure`.
"""

from __future__ import annotations

import logging.config
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"
# One line per API call at info would drown the log (and cost CPU) at hundreds of calls/s: calls
# are counted in metrics, and failures are logged by the clients' callers.
QUIET_BELOW_DEBUG = ("httpx", "httpcore")


def config(level: str = "info", fmt: LogFormat = "text") -> dict[str, Any]:
    """The ``dictConfig`` of a tillsync process."""
    level = level.upper()
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS}
        if fmt == "json"
        else {"format": TEXT_FORMAT}
    )
    quiet = "DEBUG" if level == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": quiet} for name in QUIET_BELOW_DEBUG},
    }


def configure(level: str = "info", fmt: LogFormat = "text") -> None:
    logging.config.dictConfig(config(level, fmt))
