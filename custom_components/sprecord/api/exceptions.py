"""Exceptions raised by the SpRecord client library."""

from __future__ import annotations


class SpRecordError(Exception):
    """Base of every error the library raises.

    `status` holds the HTTP status when the server answered with an error.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Keep the message and the HTTP status, if there was one."""
        super().__init__(message)
        self.status = status


class AuthenticationError(SpRecordError):
    """The server refused the API key (401 or 403)."""


class TooManyConnectionsError(SpRecordError):
    """The server already holds its maximum of event streams (429).

    `retry_after` is the server's Retry-After hint in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        """Keep the Retry-After hint beside the message."""
        super().__init__(message, status=status)
        self.retry_after = retry_after


class SpRecordConnectionError(SpRecordError):
    """The server could not be reached, or the connection broke or closed."""


class SpRecordTimeoutError(SpRecordConnectionError):
    """The server sent nothing within the time allowed."""


class RedirectRefusedError(SpRecordConnectionError):
    """The server redirected a request that carries the API key elsewhere.

    A redirect is followed only to the server's own origin (scheme, host and
    port); the key never goes to another one, and neither does the request.
    Too many redirects, or one to a location that is not an http(s) URL, are
    refused the same way.
    """


class ProtocolError(SpRecordError):
    """The server sent something that does not follow the protocol.

    Raised for a malformed event (the message names the field) and for an SSE
    line longer than the parser's bound.
    """
