"""RocksDB options shared by every table: bounded memory per partition database.

Faust opens one RocksDB database per table and partition, each with a 2 GiB
block cache and up to three 64 MiB memtables by default.  With three tables
and eight partitions that is far more than the machine has; these options
bound each database instead.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings

MIB = 1024 * 1024


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    """A fresh options mapping for one table (Faust's store pops keys out of it)."""
    return {
        "block_cache_size": settings.rocksdb_block_cache_mb * MIB,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * MIB,
        "max_write_buffer_number": 2,
        # Not used by rocksdict, but Faust's python-rocksdb driver would allocate it.
        "block_cache_compressed_size": 0,
    }
