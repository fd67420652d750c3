"""The rules of the service, as pure functions and plain data.

Nothing in this package imports Faust, Kafka clients or RocksDB, and nothing
does I/O: every module here imports on a bare Python interpreter, and the
tests drive it without a broker.  The stream handlers (:mod:`app.streams`),
the HTTP API (:mod:`app.api`) and the CLI all decide through these functions.
"""
