"""Plain aiokafka clients: topic creation and checks, direct reads, security options.

Nothing here uses Faust; the worker's own consumer and producer are Faust's
(:mod:`app.faust_fixes.transport`).
"""
