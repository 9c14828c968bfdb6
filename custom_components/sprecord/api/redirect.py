"""Redirects of the cloud API, followed only within the server's origin.

The client follows them itself (`SpRecordClient._follow()`), not aiohttp:
aiohttp would strip `Authorization` alone on the way to another origin and
carry a key in any other header there.
"""

from __future__ import annotations

from yarl import URL

from .exceptions import RedirectRefusedError

MAX_REDIRECTS = 10
"""Redirects followed for one request (within the server's origin)."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_SHOWN = 100
"""Characters of a server-given location an error shows at most."""


def _redirect_target(url: URL, location: str) -> URL:
    """Return the URL a `Location` header leads to from `url`.

    Raises `RedirectRefusedError` for one that is not an http(s) URL with a
    host, or that carries a user name or password.
    """
    try:
        target = url.join(URL(location))
        target.origin()
    except ValueError:
        target = None
    if (
        target is None
        or target.scheme not in ("http", "https")
        or not target.host
        or target.user is not None
        or target.password is not None
    ):
        raise RedirectRefusedError(
            "The server redirected to a location that is not an http(s) URL"
        )
    return target


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    """Return a URL's origin: scheme, host and port (its default if unsaid)."""
    return url.scheme, url.host, url.port


def _shown_origin(url: URL) -> str:
    """Return a URL's origin as an error names it: quoted and bounded."""
    shown = f"{url.scheme}://{url.host_port_subcomponent}"
    return repr(shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "…")
