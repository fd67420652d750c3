"""The worker's tables: their declarations, key and value schemas, and their store.

- :mod:`tables.tokens`: push tokens per user;
- :mod:`tables.sent`: what the join already did with each payment outcome;
- :mod:`tables.pending`: payments waiting for a late token;
- :mod:`tables.store`: RocksDB options, bulk restore, awaitable changelog writes;
- :mod:`tables.scan`: the one reader of a partition's local database.

Each declaration module has a ``declare(app, settings)`` that the
composition root (:mod:`app.main`) calls; importing this package builds nothing.
"""
