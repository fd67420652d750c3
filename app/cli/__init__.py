"""The worker's own ``faust -A app`` commands: producers for demos and load.

Defining an :class:`faust.cli.AppCommand` registers it with the faust CLI, so
the composition root (:mod:`app.main`) imports :mod:`app.cli.commands`.
"""
