"""The benchmark harness of the pushes worker: ``make bench`` (see bench/README.md).

Everything runs against the real local broker: the worker is a real
``faust -A app worker`` subprocess with its own topics, and the numbers come
from what it writes to its log sink, its changelogs and its ``/readyz``.
"""
