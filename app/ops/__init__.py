"""Operating the worker: readiness, metrics, table sizes, consumer lag and logs."""
