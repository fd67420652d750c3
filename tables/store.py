"""How the tables are stored: bounded RocksDB, bulk restore, awaitable changelog writes.

Three things Faust's RocksDB tables do not do on their own:

- **Bounded memory** (:func:`rocksdb_options`).  Faust opens one RocksDB
  database per table and partition, each with a 2 GiB block cache and up to
  three 64 MiB memtables by default; these options bound each database.
- **Bulk restore** (:class:`BulkRestoreStore`).  Faust recovers a table by
  streaming the changelog through the machinery of any other topic: a
  consumer hand-off, an ``Event`` and a dispatch per record, far slower than
  a plain consumer reads the same changelog.  Faust's RocksDB store keeps a
  changelog record's raw key and value bytes as they are, and a tombstone
  deletes the key; the last offset it applied sits under its own key in the
  same database.  So when a worker is assigned a table partition, the store
  first copies the records that database lacks straight from the changelog,
  in write batches that also carry that offset key, so the data and its
  offset can never disagree.  Faust's recovery then starts from that offset
  and has only what arrived in the meantime to read.  Anything the copy
  leaves undone (the worker stopping, a new group generation, a fetch that
  comes back empty) is left to Faust's recovery in the same way.  The copy
  runs inside the rebalance callback, before Faust's recovery reads the
  stored offsets; the worker is not ready (``/readyz``) until both are done.
- **The join's own reads and writes** (:class:`PartitionStore`).  The join
  does not write through Faust's table API, which sends a changelog record
  per write and uses the partition of the *current event*: it reads one
  partition's database directly, and writes each batch's changes to the
  changelog itself (:mod:`app.streams.task`) and then here, in one RocksDB
  write batch together with the changelog offset they reach, as Faust's
  store keeps it.  Faust's recovery and standbys read that offset as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.stores import rocksdb
from faust.types import TP, StoreT
from rocksdict import WriteBatch, WriteOptions
from yarl import URL

from app.config import Settings
from app.kafka.reader import standalone_consumer
from tables.scan import scan_db

log = logging.getLogger(__name__)

#: Records handed over per ``getmany``: large write batches, few loop turns.
FETCH_RECORDS = 20_000
#: Fetch sizes: large enough to stream, small enough to bound memory.
MIB = 1024 * 1024
#: Log progress at most this often (seconds).
PROGRESS_EVERY = 5.0
#: How long a fetch may wait for records before the copy leaves the rest to
#: Faust: with records left before the end offsets the broker answers at once,
#: so an empty fetch means a gap it cannot fill (or a broker in trouble).
FETCH_WAIT_MS = 1000


class ChangelogRecord(Protocol):
    """What the copy reads of a consumed record (aiokafka's ``ConsumerRecord``)."""

    offset: int
    key: bytes | None
    value: bytes | None


class Batch(Protocol):
    """The writes the copy makes (rocksdict's ``WriteBatch``)."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


def restore_start(persisted: int | None, beginning: int, end: int) -> int | None:
    """The first changelog offset to copy, or ``None`` when there is nothing to copy.

    ``persisted`` is the offset of the last record already in the database
    (Faust's stored offset), ``beginning`` and ``end`` the partition's first
    and next offsets.  A database ahead of the changelog (a broker that was
    reset) is left to Faust's recovery, which refuses it with a clear error.
    """
    start = beginning if persisted is None else max(persisted + 1, beginning)
    return start if start < end else None


def fill_batch(batch: Batch, records: Sequence[ChangelogRecord], offset_key: bytes) -> int:
    """Write ``records`` into ``batch`` as Faust's store would; return the last offset.

    The offset is written into the same batch, under ``offset_key``, so the
    database never holds records newer than its stored offset says, or older.
    Records without a key cannot be table rows and are skipped.
    """
    for record in records:
        if record.key is None:
            continue
        if record.value is None:
            batch.delete(record.key)
        else:
            batch.put(record.key, record.value)
    last = records[-1].offset
    batch.put(offset_key, str(last).encode())
    return last


class _Progress:
    """Progress lines for a copy that can take a while."""

    def __init__(self, table: str, partitions: int, total: int) -> None:
        self.table, self.total = table, total
        self.copied = 0
        self.started = self.logged = time.monotonic()
        log.info(
            "Bulk restore of table %s: copying up to %s changelog records of %d partitions",
            table,
            f"{total:,}",
            partitions,
        )

    def add(self, records: int) -> None:
        now = time.monotonic()
        self.copied += records
        if now - self.logged >= PROGRESS_EVERY:
            self.logged = now
            log.info(
                "Bulk restore of table %s: %s of up to %s records (%s/s)",
                self.table,
                f"{self.copied:,}",
                f"{self.total:,}",
                f"{self.rate(now):,.0f}",
            )

    def rate(self, now: float) -> float:
        return self.copied / max(now - self.started, 1e-6)

    def done(self, left: int) -> None:
        now = time.monotonic()
        log.info(
            "Bulk restore of table %s: %s records copied in %.1fs (%s/s)%s",
            self.table,
            f"{self.copied:,}",
            now - self.started,
            f"{self.rate(now):,.0f}",
            f"; {left} partitions left to Faust's recovery" if left else "",
        )


def _without_wal() -> WriteOptions:
    options = WriteOptions()
    # A property at run time; rocksdict's stub wrongly declares a method.
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


#: The copy's writes skip RocksDB's write-ahead log (a third of their cost),
#: and each database is flushed when the copy ends.  A crash before that
#: loses a tail of the copy together with the offset stored in its batches,
#: so the database still never holds data its offset does not account for.
_NO_WAL = _without_wal()


class BulkRestoreStore(rocksdb.Store):
    """Faust's RocksDB store, which copies a newly assigned partition's changelog first."""

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        """Open the new partition databases (Faust), then bring them up to date."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if not self._settings.bulk_restore:
            return
        topics = self.table.changelog_topic.topics
        # Standby partitions get no database here; Faust keeps those up to date.
        mine = [tp for tp in newly_assigned if tp.topic in topics and tp.partition in self._dbs]
        if mine:
            async with self.db_lock:
                await self._copy(mine, generation_id)

    @property
    def _settings(self) -> Settings:
        # The app carries the settings it was built from (app.application.PushesApp).
        settings: Settings = self.app.settings  # type: ignore[attr-defined]
        return settings

    async def _copy(self, tps: Iterable[TP], generation_id: int) -> None:
        consumer = await standalone_consumer(
            self._settings,
            max_partition_fetch_bytes=2 * MIB,
            fetch_max_bytes=16 * MIB,
            # Its first offset lookup waits this long for topic metadata (100 ms by default).
            retry_backoff_ms=10,
        )
        try:
            wanted = [TopicPartition(tp.topic, tp.partition) for tp in tps]
            spans = await self._start(consumer, wanted)
            if not spans:
                return
            ends = {tp: end for tp, (_, end) in spans.items()}
            progress = _Progress(self.table.name, len(spans), sum(e - s for s, e in spans.values()))
            written: set[int] = set()
            try:
                while ends and not self.should_stop:
                    if generation_id != self.app.consumer_generation_id:
                        break
                    fetched = await consumer.getmany(
                        timeout_ms=FETCH_WAIT_MS, max_records=FETCH_RECORDS
                    )
                    if not fetched:
                        break
                    for tp, records in fetched.items():
                        batch = WriteBatch(raw_mode=True)
                        fill_batch(batch, records, self.offset_key)
                        self._db_for_partition(tp.partition).write(batch, _NO_WAL)
                        written.add(tp.partition)
                    progress.add(sum(len(records) for records in fetched.values()))
                    for tp in list(ends):
                        if await consumer.position(tp) >= ends[tp]:
                            consumer.pause(tp)
                            del ends[tp]
            finally:
                # Written without the write-ahead log: on disk before Faust
                # writes (with the log) on top of them.
                for partition in written:
                    self._db_for_partition(partition).flush(True)
            progress.done(left=len(ends))
        finally:
            await consumer.stop()

    async def _start(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Assign and seek the partitions with records to copy: their first and end offsets."""
        beginnings = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        starts = {}
        for tp in tps:
            persisted = self.persisted_offset(TP(tp.topic, tp.partition))
            start = restore_start(persisted, beginnings[tp], ends[tp])
            if start is not None:
                starts[tp] = start
        consumer.assign(list(starts))
        for tp, start in starts.items():
            consumer.seek(tp, start)
        return {tp: (start, ends[tp]) for tp, start in starts.items()}


KT = TypeVar("KT")
VT = TypeVar("VT")


class BulkRestoreTable(faust.Table[KT, VT]):
    """Faust's table, kept in a :class:`BulkRestoreStore` when the store is RocksDB."""

    def _new_store_by_url(self, url: str | URL) -> StoreT[KT, VT]:
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        # The same arguments Faust's own Collection._new_store_by_url passes.
        store: Any = BulkRestoreStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )
        return store  # type: ignore[no-any-return]


def declare_table(app: Any, name: str, settings: Settings, help: str) -> Any:
    """A RocksDB table of ``app`` keyed by raw bytes, with the bounded options."""
    return app.Table(
        name,
        partitions=settings.partitions,
        options=rocksdb_options(settings),
        # bytes keys use the raw codec: the same bytes as the topic key.  A str key
        # type would be JSON-encoded ('"42"') and hash to another partition.
        key_type=bytes,
        help=help,
    )


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    """A fresh options mapping for one table (Faust's store pops keys out of it)."""
    return {
        "block_cache_size": settings.rocksdb_block_cache_mb * MIB,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * MIB,
        "max_write_buffer_number": 2,
        # Not used by rocksdict, but Faust's python-rocksdb driver would allocate it.
        "block_cache_compressed_size": 0,
    }


class PartitionStore:
    """The local database of one table partition, for the join's reads and batched writes."""

    def __init__(self, table: Any, partition: int) -> None:
        store = table.data
        self.partition = partition
        #: The table's changelog topic: its partition ``partition`` mirrors this database.
        self.changelog = table.changelog_topic.get_topic_name()
        self._db = store._db_for_partition(partition)
        self._offset_key: bytes = store.offset_key

    def get(self, key: bytes) -> bytes | None:
        """The raw value of ``key``, or ``None``."""
        value: bytes | None = self._db.get(key)
        return value

    def scan(self, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` raw ``(key, value)`` pairs after key ``after``, in key order."""
        return scan_db(self._db, after, limit)

    def write(self, writes: Iterable[tuple[bytes, bytes | None]], changelog_offset: int) -> None:
        """Apply ``writes`` (``None`` deletes) and the changelog offset they reach, atomically.

        Without the write-ahead log: the data and its offset are one batch,
        so a crash loses both together and recovery reads the changelog
        from the offset the database still has.
        """
        batch = WriteBatch(raw_mode=True)
        for key, value in writes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self._offset_key, str(changelog_offset).encode())
        self._db.write(batch, _NO_WAL)
