"""The worker's stateful, changelog-backed tables."""

# The tables are made by the app and the app's agents use them, so the app
# package must finish loading first, whichever of the two is imported first.
import app  # noqa: F401
