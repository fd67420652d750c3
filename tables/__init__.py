"""The worker's stateful, changelog-backed tables."""
