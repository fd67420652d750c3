"""pushes: payment outcomes joined with push tokens, as a Faust worker.

``faust -A app worker`` finds :data:`app` here.  Importing the agents, views
and commands registers them with the app (and the faust CLI).
"""

from app import agents, cli, ops, web  # noqa: F401  (registers agents, views, commands)
from app.application import app

__all__ = ["app"]
