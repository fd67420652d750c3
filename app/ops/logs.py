"""Log output: human-readable by default, JSON lines with ``PUSHES_LOG_FORMAT=json``.

A JSON line carries the log message word for word (the notification line
included) and, as separate fields, the record attributes listed in
:data:`FIELDS` when a log call passes them with ``extra=``.  Nothing else is
copied from the record, so a secret can only reach a log line by being
written into a message on purpose.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

#: Record attributes copied into a JSON line when a log call sets them.
FIELDS = (
    "token",
    "payment_id",
    "user_id",
    "device_id",
    "topic",
    "partition",
    "offset",
    "reason",
)


def json_log_line(record: logging.LogRecord) -> str:
    """One JSON object for one record, without a trailing newline."""
    line: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
            timespec="milliseconds"
        ),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            line[name] = value if isinstance(value, (int, float, bool)) else str(value)
    if record.exc_info and record.exc_info[0] is not None:
        line["exception"] = logging.Formatter().formatException(record.exc_info)
    return json.dumps(line, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """A :class:`logging.Formatter` writing :func:`json_log_line`."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one JSON line."""
        return json_log_line(record)


def use_json_logs(logger: logging.Logger) -> None:
    """Make every handler of ``logger`` (the root, once Faust set it up) write JSON."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
