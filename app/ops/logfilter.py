"""A log-flood filter: a repeated warning or error is written once, then summarised.

When the broker goes away, aiokafka retries every few hundred milliseconds and
logs every failed attempt (``Unable connect to node with id 1``,
``NodeNotReadyError``, ``Unable to update metadata from [1]``, ...): dozens of
ERROR lines a second that bury everything else.  :class:`LogFloodFilter` sits
on the root logger's *handlers* (so neither Faust nor aiokafka is patched) and
turns such a flood into:

- the first record of each kind, as it was;
- one summary line every ``interval`` seconds while it repeats;
- one line once it has not repeated for ``interval`` seconds (from :meth:`tick`,
  or lazily on the next record that passes through).

What counts as "the same record": the logger, the level and the message
*template* (``record.msg``), with numbers and hex ids masked, so a message
formatted before the log call (an f-string with a node id or an offset) is
grouped like one with ``%s`` arguments.  The arguments themselves are ignored:
``Unable connect to node with id %s: %s`` is one error whatever node and errno
it names.  Every broker-connection message, from any logger, is one group,
"broker unreachable", summarised in those words: the templates aiokafka logs
only when a broker cannot be reached, and any message whose text names a
connection error (``NodeNotReadyError``, ``KafkaConnectionError``, ...).

Records below WARNING, every record of the notification logger and of the
worker's own modules pass untouched: the notification line is the product,
the worker's own warnings each name one record, and INFO lines are not the
flood.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: Seconds between summaries, and without a repeat before a group is over.
DEFAULT_INTERVAL = 30.0

#: Loggers whose records are never held back (and their children): the
#: notification line, and the worker's own code, whose warnings each name
#: one record, user or device (a dead letter, an eviction, a failed send) and
#: which holds back its own repeats where it retries.
DEFAULT_EXEMPT = ("pushes.notifications", "app", "tables")

#: Set on the records this filter writes itself, so they pass it.
SUMMARY_ATTRIBUTE = "pushes_flood_summary"

#: The summaries' logger name.
SUMMARY_LOGGER = "pushes.logfilter"

BROKER_GROUP = "broker unreachable"

#: Message templates aiokafka logs only when it cannot reach a broker.
BROKER_TEMPLATES = frozenset(
    {
        'Unable connect to "%s:%s": %s',
        "Unable connect to node with id %s: %s",
        "Unable to update metadata from %s",
        "Unable to request metadata from node with id %s: %r",
    }
)

#: Words in a formatted message that mean the broker could not be reached.
#: Templates such as "Failed fetch messages from %s: %s" or "Group Coordinator
#: Request failed: %s" join the group only with one of these in their
#: arguments: with another error (a coordinator still loading at start-up,
#: say) they are no outage, and counting them in would hide the first line of
#: an outage that follows within the interval.
BROKER_MARKERS = (
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connect call failed",
)

_VOLATILE = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8,}\b|\d+")


def mask(template: str) -> str:
    """``template`` with numbers and hex ids replaced, so their values do not matter."""
    return _VOLATILE.sub("#", template)


def is_broker_error(record: logging.LogRecord) -> bool:
    """Whether ``record`` is one of the messages a lost broker connection floods."""
    if isinstance(record.msg, str) and record.msg in BROKER_TEMPLATES:
        return True
    message = _message(record)
    return any(marker in message for marker in BROKER_MARKERS)


def group_key(record: logging.LogRecord) -> tuple[str, ...]:
    """The group a record belongs to: the broker group, or logger, level and masked template."""
    if is_broker_error(record):
        return (BROKER_GROUP,)
    return (record.name, record.levelname, mask(str(record.msg)))


def seconds(value: float) -> str:
    """``45 s``, ``3 min 20 s``: a duration for a log line."""
    total = round(value)
    if total < 120:
        return f"{total} s"
    minutes, rest = divmod(total, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@dataclass
class Group:
    """One kind of record while it repeats."""

    key: tuple[str, ...]
    first_seen: float
    last_seen: float
    window_start: float
    #: The first record's logger and text, for the summaries.
    logger: str
    message: str
    suppressed_window: int = 0
    suppressed_total: int = 0
    #: The highest level among the repeats since the last summary: the summary's level.
    level_window: int = field(default=logging.NOTSET)

    @property
    def is_broker(self) -> bool:
        """Whether this is the broker-unreachable group."""
        return self.key == (BROKER_GROUP,)


def summary_text(group: Group, now: float, broker: str) -> str:
    """The line written every ``interval`` while ``group`` repeats."""
    n = group.suppressed_window
    if group.is_broker:
        return (
            f"broker {broker} unreachable for {seconds(now - group.first_seen)}; "
            f"{n:,} similar errors suppressed"
        )
    times = "time" if n == 1 else "times"
    return (
        f"{group.logger}: {_quote(group.message)} repeated {n:,} {times} "
        f"in the last {seconds(now - group.window_start)} (suppressed)"
    )


def recovery_text(group: Group, interval: float, broker: str) -> str:
    """The line written once ``group`` has not repeated for ``interval``."""
    lasted = seconds(group.last_seen - group.first_seen)
    n = group.suppressed_total
    if group.is_broker:
        return (
            f"broker {broker} reachable again: no connection error for {seconds(interval)}; "
            f"it was unreachable for {lasted}, {n:,} similar errors suppressed in all"
        )
    return (
        f"{group.logger}: {_quote(group.message)} stopped repeating "
        f"(none for {seconds(interval)}); {n:,} repeats over {lasted} suppressed in all"
    )


class LogFloodFilter(logging.Filter):
    """Deduplicate repeated WARNING+ records on one handler; see the module docstring.

    ``emit`` receives the summary records (normally the handler's own
    ``handle``, see :func:`install`).  ``clock`` is injected so the filter can be
    driven with fake time; it must be monotonic.
    """

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        *,
        broker: str = "",
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        exempt: Iterable[str] = DEFAULT_EXEMPT,
        min_level: int = logging.WARNING,
    ) -> None:
        super().__init__()
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._emit = emit
        self.broker = broker or "(broker)"
        self.interval = interval
        self._clock = clock
        self._exempt = frozenset(exempt)
        self._exempt_children = tuple(name + "." for name in self._exempt)
        self._min_level = min_level
        self._groups: dict[tuple[str, ...], Group] = {}
        # Summaries are written outside the lock: writing one goes through
        # the handler and so through this filter again.
        self._lock = threading.Lock()

    def _is_exempt(self, name: str) -> bool:
        # On the path of every notification line: kept to a set lookup.
        return name in self._exempt or name.startswith(self._exempt_children)

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass ``record`` unless it repeats a record of a group still repeating."""
        if getattr(record, SUMMARY_ATTRIBUTE, False) or self._is_exempt(record.name):
            return True
        if record.levelno < self._min_level:
            if self._groups:
                self.tick()
            return True
        now = self._clock()
        key = group_key(record)
        with self._lock:
            pending = self._due(now)
            group = self._groups.get(key)
            if group is None:
                self._groups[key] = Group(
                    key=key,
                    first_seen=now,
                    last_seen=now,
                    window_start=now,
                    logger=record.name,
                    message=_message(record),
                )
                passed = True
            else:
                group.last_seen = now
                group.suppressed_window += 1
                group.suppressed_total += 1
                group.level_window = max(group.level_window, record.levelno)
                passed = False
        self._write(pending)
        return passed

    def tick(self, now: float | None = None) -> None:
        """Write the summaries and recovery lines that are due (call it every few seconds)."""
        when = self._clock() if now is None else now
        with self._lock:
            pending = self._due(when)
        self._write(pending)

    def _due(self, now: float) -> list[logging.LogRecord]:
        """Under the lock: close quiet groups, summarise repeating ones."""
        lines: list[logging.LogRecord] = []
        for key, group in list(self._groups.items()):
            if now - group.last_seen >= self.interval:
                del self._groups[key]
                if group.suppressed_total:
                    text = recovery_text(group, self.interval, self.broker)
                    lines.append(self._record(logging.INFO, text))
            elif now - group.window_start >= self.interval:
                if group.suppressed_window:
                    text = summary_text(group, now, self.broker)
                    lines.append(self._record(group.level_window, text))
                group.window_start = now
                group.suppressed_window = 0
                group.level_window = logging.NOTSET
        return lines

    def _record(self, level: int, text: str) -> logging.LogRecord:
        # No arguments: the text is final, and a "%" in a quoted message must stay one.
        record = logging.LogRecord(SUMMARY_LOGGER, level, __file__, 0, text, (), None)
        setattr(record, SUMMARY_ATTRIBUTE, True)
        return record

    def _write(self, records: list[logging.LogRecord]) -> None:
        for record in records:
            self._emit(record)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        # A record whose arguments do not fit its template: logging itself
        # reports that when it formats the record; here it only needs a text.
        return str(record.msg)


def _quote(message: str, limit: int = 160) -> str:
    first = message.splitlines()[0] if message else ""
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    return f'"{first}"'


def handler_emit(handler: logging.Handler) -> Callable[[logging.LogRecord], None]:
    """What a filter on ``handler`` writes its own lines with: the handler, at its level."""

    def emit(record: logging.LogRecord) -> None:
        # Called directly, a handler does not check its own level.
        if record.levelno >= handler.level:
            handler.handle(record)

    return emit


def install(
    logger: logging.Logger,
    *,
    broker: str = "",
    interval: float = DEFAULT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> list[LogFloodFilter]:
    """Put one :class:`LogFloodFilter` on every handler of ``logger`` that has none yet.

    One filter per handler: a filter shared by two handlers would see every
    record twice.  Returns the filters of all handlers, new and old.
    """
    for handler in logger.handlers:
        if not any(isinstance(f, LogFloodFilter) for f in handler.filters):
            handler.addFilter(
                LogFloodFilter(handler_emit(handler), broker=broker, interval=interval, clock=clock)
            )
    return installed(logger)


def installed(logger: logging.Logger | None = None) -> list[LogFloodFilter]:
    """The flood filters on the handlers of ``logger`` (default: the root logger)."""
    target = logger if logger is not None else logging.getLogger()
    return [f for h in target.handlers for f in h.filters if isinstance(f, LogFloodFilter)]


def tick_all(now: float | None = None, logger: logging.Logger | None = None) -> None:
    """Call :meth:`LogFloodFilter.tick` on every installed filter (from a periodic timer)."""
    for flood_filter in installed(logger):
        flood_filter.tick(now)
