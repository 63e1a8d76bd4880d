"""Logging for the HTTP server: nothing secret in a URL path reaches a log line.

A one-time share link carries its token in the path (`/s/<token>`); whoever reads the
journal before the recipient opens the link could take the peer's private key. uvicorn's
access log (and its error log, which names WebSocket paths) gets a filter on the loggers
themselves, so every handler — the console, journald, one a test adds — sees the path with
the token replaced.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# Paths whose last part is a bearer secret.
SECRET_PATHS = re.compile(r"(/s/)[^/?#\s\"']+")
REDACTED = r"\1[redacted]"
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    return SECRET_PATHS.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def server_log_config(level: str) -> dict[str, Any]:
    """uvicorn's own logging configuration, with the filter on its loggers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"secrets": {"()": f"{__name__}.RedactSecrets"}}
    for name in SERVER_LOGGERS:
        logger = config["loggers"].setdefault(name, {})
        logger["filters"] = ["secrets"]
        logger["level"] = level.upper()
    return config
