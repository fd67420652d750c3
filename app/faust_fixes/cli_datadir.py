"""Fix: ``faust --datadir`` and ``faust worker --web-port`` override the app's settings.

What Faust does wrong (faust-streaming 0.15.3): the CLI imports ``-A app``
*before* it exports ``--datadir`` as ``F_DATADIR``, so a data dir fixed when
the app is built wins over the flag.  ``faust worker --web-port`` likewise
overwrites ``canonical_url`` with ``http://<hostname>:<port>``, which is
unreachable in most containers, over ``PUSHES_CANONICAL_URL``.

Replaced: nothing of Faust's; the worker, which the CLI creates after both,
reads the environment again and applies the two settings.

Proved by: ``tests/integration/test_cli.py`` and every integration test (each
worker runs with ``--datadir`` and ``--web-port``).

Delete when: Faust exports the flags before importing the app.
"""

from __future__ import annotations

import faust

from app.config import Settings


class CliSettingsWorker(faust.Worker):
    """Faust's worker, with ``faust --datadir`` and ``PUSHES_CANONICAL_URL`` made to work."""

    def __init__(self, app: faust.App, *services: object, **kwargs: object) -> None:
        current = Settings.from_env()
        app.conf.datadir = current.data_dir  # type: ignore[assignment]
        if current.canonical_url:
            app.conf.canonical_url = current.canonical_url  # type: ignore[assignment]
        super().__init__(app, *services, **kwargs)  # type: ignore[arg-type]
