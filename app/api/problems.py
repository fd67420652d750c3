"""A request the API refuses: one exception, carrying the HTTP status to answer."""

from __future__ import annotations


class Problem(Exception):
    """A request the API refuses, with the HTTP status and a sentence for the caller.

    The sentence never echoes the request: no token can come back in one.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
