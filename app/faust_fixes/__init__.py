"""Every workaround of a faust-streaming 0.15.3 bug or limitation: one per module.

Each module's docstring says what Faust does wrong, what it replaces, the
test that proves it and when to delete it.  The index:

=====================  ==========================================================
module                 symptom
=====================  ==========================================================
``commit_gap``         the offset commit passes a record that was never processed
                       (``Consumer._new_offset``); payments lost after rebalances
``stale_events``       records skipped in a rebalance are acked, so the next commit
                       passes them; refusing the ack stalls ``wait_empty``
``skipped_records``    a stream gets a partition's records with a hole in the
                       offsets after a rebalance (an in-flight fetch moves the
                       read position); the hole is read directly
``fetch_wait``         every rebalance request queues behind a fixed 1.5 s fetch
``topic_redeclare``    every topic is declared again at start (CreateTopics and a
                       metadata refresh each)
``recovery_sleep``     the table manager sleeps 1 s before recovery starts
``cli_datadir``        ``faust --datadir`` and ``--web-port`` override the settings
``commit_clock``       no reliable time of a partition's last commit: Faust stamps
                       it before the commit, and whether or not it succeeds
``transport``          not a fix: composes the consumer fixes into one transport
=====================  ==========================================================

Two workarounds live with the tables, since they are about the store:
``tables.store.BulkRestoreStore`` (Faust's per-record changelog recovery is
slow) and ``tables.store.on_partition`` (Faust's tables use the current
event's partition).
"""
