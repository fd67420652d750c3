"""The log-flood filter, driven with fake time and real records through a real handler."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.notify.log import NOTIFICATION_LOGGER
from app.ops.logfilter import (
    BROKER_TEMPLATES,
    LogFloodFilter,
    handler_emit,
    install,
    installed,
    is_broker_error,
    mask,
    seconds,
    tick_all,
)

BROKER = "127.0.0.1:9092"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    clock: FakeClock
    stream: io.StringIO
    handler: logging.Handler
    flood: LogFloodFilter

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def logger(self, name: str) -> logging.Logger:
        """A real logger: its records reach the root logger's handlers."""
        return logging.getLogger(name)


@pytest.fixture
def setup() -> Iterator[Setup]:
    # Our handler on the real root logger, as in the worker; the filter is put
    # on it alone, not on the capture handlers pytest keeps there.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    clock = FakeClock()
    flood = LogFloodFilter(handler_emit(handler), broker=BROKER, clock=clock)
    handler.addFilter(flood)
    root.addHandler(handler)
    yield Setup(clock, stream, handler, flood)
    root.removeHandler(handler)
    root.setLevel(level)


def broker_errors(s: Setup) -> list[tuple[logging.Logger, int, str, tuple[object, ...]]]:
    """The lines the worker wrote during a real outage, as aiokafka logs them."""
    client = s.logger("aiokafka.client")
    fetcher = s.logger("aiokafka.consumer.fetcher")
    coordinator = s.logger("aiokafka.consumer.group_coordinator")
    not_ready = (
        "NodeNotReadyError: Attempt to send a request to node which is not ready (node id 1)."
    )
    return [
        (
            client,
            logging.ERROR,
            "Unable connect to node with id %s: %s",
            (1, "[Errno 111] Connect"),
        ),
        (client, logging.ERROR, "Unable to update metadata from %s", ([1],)),
        (fetcher, logging.ERROR, "Failed fetch messages from %s: %s", (1, not_ready)),
        (coordinator, logging.ERROR, "Group Coordinator Request failed: %s", (not_ready,)),
        (client, logging.WARNING, "Unable to request metadata from node with id %s: %r", (1, "x")),
    ]


def flood(s: Setup, seconds_: float, per_second: int) -> int:
    """Log the outage's mix of broker errors for ``seconds_`` of fake time; return the count."""
    errors = broker_errors(s)
    start = s.clock.now
    total = int(seconds_ * per_second)
    for count in range(total):
        # From the start each time: summed steps would drift off the window edges.
        s.clock.now = start + count / per_second
        logger, level, msg, args = errors[count % len(errors)]
        logger.log(level, msg, *args)
    s.clock.now = start + seconds_
    return total


def test_the_first_broker_error_passes_and_its_repeats_do_not(setup):
    client = setup.logger("aiokafka.client")
    for node in range(5):
        client.error("Unable connect to node with id %s: %s", node, "refused")
    assert setup.lines() == [f"ERROR {client.name} Unable connect to node with id 0: refused"]


def test_every_known_broker_message_is_one_group(setup):
    for logger, level, msg, args in broker_errors(setup):
        logger.log(level, msg, *args)
    (line,) = setup.lines()
    assert "Unable connect to node with id 1" in line


def test_a_summary_every_interval_while_the_broker_is_down(setup):
    start = setup.clock.now
    flood(setup, 95, per_second=90)
    lines = setup.lines()
    summaries = [line for line in lines if "unreachable for" in line]
    assert len(summaries) == 3
    for n, line in enumerate(summaries, start=1):
        assert line.startswith("ERROR pushes.logfilter ")
        assert f"broker {BROKER} unreachable for {30 * n} s; " in line
    # 90 records a second: every one of a window but the first passes nowhere.
    counts = [int(line.split("; ")[1].split()[0].replace(",", "")) for line in summaries]
    assert counts[0] == 30 * 90 - 1
    assert counts[1:] == [30 * 90, 30 * 90]
    assert setup.clock.now - start >= 95
    assert len(lines) == 1 + len(summaries)


def test_recovery_is_one_line_from_tick_after_a_quiet_interval(setup):
    logged = flood(setup, 40, per_second=10)
    last_error = setup.clock.now
    setup.flood.tick(last_error + 29)
    before = setup.lines()
    setup.flood.tick(last_error + 30)
    (recovery,) = setup.lines()[len(before) :]
    assert recovery.startswith("INFO pushes.logfilter ")
    assert f"broker {BROKER} reachable again: no connection error for 30 s" in recovery
    assert f"{logged - 1:,} similar errors suppressed in all" in recovery
    assert "unreachable for 40 s" in recovery
    setup.flood.tick(last_error + 100)
    assert len(setup.lines()) == len(before) + 1  # said once


def test_recovery_is_written_lazily_before_the_next_record(setup):
    client = setup.logger("aiokafka.client")
    client.error("Unable to update metadata from %s", [1])
    client.error("Unable to update metadata from %s", [1])
    setup.clock.now += 31
    setup.logger("faust.worker").info("Ready")
    recovered, ready = setup.lines()[1:]
    assert "reachable again" in recovered and "1 similar errors suppressed in all" in recovered
    assert ready.endswith("Ready")


def test_a_new_outage_after_recovery_is_logged_again(setup):
    client = setup.logger("aiokafka.client")
    client.error("Unable to update metadata from %s", [1])
    client.error("Unable to update metadata from %s", [1])
    setup.clock.now += 60
    client.error("Unable to update metadata from %s", [2])
    lines = setup.lines()
    assert lines[0].endswith("from [1]") and lines[-1].endswith("from [2]")
    assert "reachable again" in lines[1]
    assert len(lines) == 3


def test_a_single_error_gets_neither_summary_nor_recovery_line(setup):
    setup.logger("app.web").error("could not produce %s", "x")
    for _ in range(5):
        setup.clock.now += 20
        setup.flood.tick()
    assert setup.lines() == ["ERROR app.web could not produce x"]


def test_other_repeats_get_the_generic_summary_and_recovery(setup):
    log = setup.logger("faust.transport")
    for offset in range(12):
        log.warning("Topic %s not found in cluster metadata", f"t-{offset}")
        setup.clock.now += 1
    setup.clock.now += 18  # 30 s after the first
    setup.flood.tick()
    lines = setup.lines()
    assert lines[0] == f"WARNING {log.name} Topic t-0 not found in cluster metadata"
    assert lines[1] == (
        f'WARNING pushes.logfilter {log.name}: "Topic t-0 not found in cluster metadata" '
        f"repeated 11 times in the last 30 s (suppressed)"
    )
    setup.clock.now += 30
    setup.flood.tick()
    assert (
        "stopped repeating (none for 30 s); 11 repeats over 11 s suppressed in all"
        in (setup.lines()[2])
    )


def test_numbers_in_a_preformatted_message_do_not_make_it_new(setup):
    log = setup.logger("mode.timers")
    for lag in (1.5, 2.25, 17.0):
        log.warning(f"Timer Monitor.sampler woke up too late, with a drift of +{lag}")
    log.warning("Timer Monitor.sampler woke up too late, with a drift of +abc")
    lines = setup.lines()
    assert len(lines) == 2
    assert lines[0].endswith("+1.5") and lines[1].endswith("+abc")


def test_same_template_on_another_logger_or_level_is_another_group(setup):
    setup.logger("a").warning("disk %s full", "/x")
    setup.logger("b").warning("disk %s full", "/x")
    setup.logger("a").error("disk %s full", "/x")
    setup.logger("a").warning("disk %s full", "/y")
    assert len(setup.lines()) == 3


def test_info_and_debug_pass_untouched(setup):
    log = setup.logger("aiokafka.consumer.group_coordinator")
    for _ in range(50):
        log.info("(Re-)joining group %s", "g")
        log.debug("Unable to update metadata from %s", [1])  # a broker text, but DEBUG
    assert len(setup.lines()) == 100


def test_the_notification_logger_is_never_held_back(setup):
    log = setup.logger(NOTIFICATION_LOGGER)
    child = log.getChild("fcm")
    for _ in range(20):
        log.warning("send notification to mobile app with token: %s and message: %s", "t", "m")
        child.error("Connect call failed %s", "NodeNotReadyError")
    assert len(setup.lines()) == 40


def test_the_real_notification_logger_name_is_exempt_by_default():
    records: list[logging.LogRecord] = []
    flood_filter = LogFloodFilter(records.append, clock=FakeClock())
    record = logging.LogRecord(NOTIFICATION_LOGGER, logging.ERROR, "", 0, "x %s", ("y",), None)
    assert all(flood_filter.filter(record) for _ in range(10))
    other = logging.LogRecord("pushes.web", logging.ERROR, "", 0, "x %s", ("y",), None)
    assert [flood_filter.filter(other) for _ in range(3)] == [True, False, False]


def test_the_workers_own_warnings_each_name_a_record_and_pass():
    flood_filter = LogFloodFilter([].append, clock=FakeClock())
    template = "dead-lettered invalid record %s[%d]@%d: %s"
    passed = [
        flood_filter.filter(
            logging.LogRecord("app.streams.engine", logging.WARNING, "", 0, template, args, None)
        )
        for args in [("payments", 1, offset, "not JSON") for offset in range(5)]
    ]
    assert passed == [True] * 5


def test_the_interval_is_settable():
    clock = FakeClock()
    out: list[logging.LogRecord] = []
    flood_filter = LogFloodFilter(out.append, broker=BROKER, interval=5, clock=clock)
    template = "Unable to update metadata from %s"
    record = logging.LogRecord("aiokafka", logging.ERROR, "", 0, template, ([1],), None)
    for _ in range(10):  # one a second, from 0 s to 9 s
        flood_filter.filter(record)
        clock.now += 1
    flood_filter.tick()
    assert [r.getMessage() for r in out] == [
        f"broker {BROKER} unreachable for 5 s; {5 - 1} similar errors suppressed",
        f"broker {BROKER} unreachable for 10 s; 5 similar errors suppressed",
    ]
    with pytest.raises(ValueError):
        LogFloodFilter(out.append, interval=0)


def test_a_handler_level_above_info_gets_no_recovery_line(setup):
    setup.handler.setLevel(logging.WARNING)
    flood(setup, 31, per_second=10)
    setup.clock.now += 60
    setup.flood.tick()
    lines = setup.lines()
    assert len(lines) == 2 and "unreachable for 30 s" in lines[1]


def test_install_puts_one_filter_per_handler_and_is_idempotent():
    # A private logger stands in for the root: install() takes every handler.
    logger = logging.getLogger(f"flood-test-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    streams = [io.StringIO(), io.StringIO()]
    for stream in streams:
        logger.addHandler(logging.StreamHandler(stream))
    clock = FakeClock()
    filters = install(logger, broker=BROKER, clock=clock)
    assert install(logger, broker=BROKER, clock=clock) == filters
    assert len(filters) == 2 and filters[0] is not filters[1]
    assert installed(logger) == filters
    count = 0
    while count < 310:
        logger.error("Unable connect to node with id %s: %s", 1, "refused")
        count += 1
        clock.now += 0.1
    clock.now += 30
    tick_all(logger=logger)
    # Each handler gets the first error, one summary and the recovery: not twice as many.
    for stream in streams:
        lines = stream.getvalue().splitlines()
        assert len(lines) == 3, lines
        assert f"{count - 1:,} similar errors suppressed in all" in lines[-1]


def test_an_outage_minute_writes_a_handful_of_lines(setup):
    flood(setup, 60, per_second=90)
    setup.clock.now += 30
    setup.flood.tick()
    lines = setup.lines()
    # The first error, the summary at 30 s and the recovery line, whose total
    # includes the last half-minute's repeats.
    assert len(lines) == 3 and "reachable again" in lines[-1]
    assert f"{60 * 90 - 1:,} similar errors suppressed in all" in lines[-1]


def test_every_known_template_is_recognised_without_the_markers():
    for template in BROKER_TEMPLATES:
        args = tuple("x" for _ in range(template.count("%")))
        record = logging.LogRecord("aiokafka", logging.ERROR, "", 0, template, args, None)
        assert is_broker_error(record), template


def test_a_general_template_is_a_broker_error_only_with_a_connection_error_in_it():
    template = "Group Coordinator Request failed: %s"
    not_ready = "NodeNotReadyError: Attempt to send a request to node which is not ready"
    down = logging.LogRecord("aiokafka", logging.ERROR, "", 0, template, (not_ready,), None)
    loading = "[Error 15] GroupCoordinatorNotAvailableError"
    starting = logging.LogRecord("aiokafka", logging.ERROR, "", 0, template, (loading,), None)
    assert is_broker_error(down) and not is_broker_error(starting)
    marked = logging.LogRecord(
        "faust", logging.ERROR, "", 0, "Crashed: %r", ("KafkaConnectionError()",), None
    )
    assert is_broker_error(marked)


def test_a_start_up_error_does_not_hide_the_first_line_of_an_outage(setup):
    # What a worker logs while the group coordinator is still loading.
    coordinator = setup.logger("aiokafka.consumer.group_coordinator")
    coordinator.error("Group Coordinator Request failed: %s", "GroupCoordinatorNotAvailableError")
    coordinator.warning("Marking the coordinator dead (node %s)for group %s.", 1, "pushes")
    setup.clock.now += 10
    flood(setup, 5, per_second=10)
    lines = setup.lines()
    assert len(lines) == 3
    assert lines[2].endswith("Unable connect to node with id 1: [Errno 111] Connect")


def test_a_summary_with_a_percent_sign_survives_modes_formatter(capsys):
    # The worker's console formatter re-formats a record's arguments.
    from mode.utils.logging import ExtensionFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ExtensionFormatter(stream, fmt="%(levelname)s %(message)s"))
    clock = FakeClock()
    flood_filter = LogFloodFilter(handler_emit(handler), clock=clock)
    handler.addFilter(flood_filter)
    record = logging.LogRecord("x", logging.WARNING, "", 0, "disk %s 100%% full", ("/a",), None)
    handler.handle(record)
    handler.handle(record)
    clock.now += 30
    flood_filter.tick()
    lines = stream.getvalue().splitlines()
    # A record that cannot be formatted is reported on stderr by logging itself.
    assert "Logging error" not in capsys.readouterr().err
    assert len(lines) == 2 and lines[1].startswith('INFO x: "disk /a 100% full" stopped repeating')


def test_mask_hides_numbers_and_hex_ids():
    assert mask("node 12 at offset 345") == mask("node 7 at offset 8")
    assert mask("id deadbeef12 0xff") == mask("id 0123456789 0x1")
    assert mask("node %s") == "node %s"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.4, "0 s"), (45.2, "45 s"), (119, "119 s"), (200, "3 min 20 s"), (240, "4 min")],
)
def test_seconds(value, text):
    assert seconds(value) == text
