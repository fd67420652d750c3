"""pushes: payment outcomes joined with push tokens, as a Faust worker.

``faust -A app worker`` finds :data:`app` here.  Importing the agents and
views registers them with the app.
"""

from app import agents, web  # noqa: F401  (registers agents and views)
from app.application import app

__all__ = ["app"]
