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
from typing import Any, cast

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


def log_many(logger: logging.Logger, level: int, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Log ``records`` (message, extra fields) as ``logger.log`` would, one write per handler.

    Each line is the text the handler's formatter gives that record.  A
    stream handler writes the batch's lines at once and flushes once,
    instead of taking its lock and flushing for every line.  Records without
    extra fields, as the text log's notification lines are, are formatted
    once: every line of the batch then shares the prefix and suffix of that
    one record (its time, the batch's), and only the message differs.  A
    handler's filters see that record, whose message is a placeholder.
    """
    if not records or not logger.isEnabledFor(level):
        return
    plain_records = not any(extra for _, extra in records)
    template = logger.makeRecord(logger.name, level, "", 0, _PLACEHOLDER, (), None)
    made: list[logging.LogRecord] | None = None
    for handler in _handlers_of(logger):
        if level < handler.level:
            continue
        stream = getattr(handler, "stream", None)
        if type(handler).emit in _PLAIN_EMITS and stream is not None:
            plain = cast(logging.StreamHandler, handler)  # type: ignore[type-arg]
            end = plain.terminator
            shape = plain.format(template).split(_PLACEHOLDER) if plain_records else []
            if len(shape) == 2:
                if not plain.filter(template):
                    continue
                prefix, suffix = shape
                text = "".join(f"{prefix}{message}{suffix}{end}" for message, _ in records)
            else:
                made = made or _records(logger, level, records)
                text = "".join(plain.format(r) + end for r in made if plain.filter(r))
            with plain.lock:  # type: ignore[union-attr]
                stream.write(text)
                plain.flush()
        else:
            # A handler of its own kind (a capture in tests, a queue) gets each record.
            made = made or _records(logger, level, records)
            for record in made:
                handler.handle(record)


#: Stands for the message when one record is formatted for a whole batch; a
#: validated record can hold no control character, so no message contains it.
_PLACEHOLDER = "\x00message\x00"


def _records(
    logger: logging.Logger, level: int, records: list[tuple[str, dict[str, Any]]]
) -> list[logging.LogRecord]:
    return [
        logger.makeRecord(logger.name, level, "", 0, message, (), None, extra=extra or None)
        for message, extra in records
    ]


#: The stream handlers whose ``emit`` only formats and writes a record.
_PLAIN_EMITS = (logging.StreamHandler.emit, logging.FileHandler.emit)


def _handlers_of(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches, as ``Logger.callHandlers`` walks them."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    return handlers
