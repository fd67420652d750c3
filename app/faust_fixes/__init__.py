"""Every workaround of a faust-streaming 0.15.3 bug or limitation: one per module.

Each module's docstring says what Faust does wrong, what it replaces, the
test that proves it and when to delete it.  The index:

=====================  ==========================================================
module                 symptom
=====================  ==========================================================
``engine_inputs``      Faust's stream loses records around rebalances (its commit
                       passes an unprocessed record, it acks the records it skips,
                       an in-flight fetch leaves a hole, a revocation forgets the
                       acked offsets before committing them): the join reads its
                       inputs itself, Faust's consumer stays the group member
                       and commits what the join marked done
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
slow) and ``tables.store.PartitionStore`` (the join reads one partition's
database and writes each batch itself, with the changelog offset, instead of
a changelog record per write through the current event's partition).
"""
