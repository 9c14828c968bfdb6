"""How the API key is sent, and how to find out when nobody says.

The vendor does not document it. The server is a FastAPI application (its
schemas page is `/docs`), so `/openapi.json` most likely names the scheme
exactly; otherwise the usual schemes are tried, one probe stream at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

AuthKind = Literal["bearer", "header", "query"]


@dataclass(frozen=True, slots=True)
class AuthScheme:
    """One way of sending the key: a bearer token, a header, a query parameter."""

    kind: AuthKind
    name: str = ""
    """The header's or the query parameter's name (unused for bearer)."""

    def apply(self, key: str, headers: dict[str, str], params: dict[str, str]) -> None:
        """Put the key where this scheme sends it."""
        if self.kind == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif self.kind == "header":
            headers[self.name] = key
        else:
            params[self.name] = key

    def __str__(self) -> str:
        """Return the scheme as it is stored: `bearer`, `header:X`, `query:x`."""
        return self.kind if self.kind == "bearer" else f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> AuthScheme:
        """Read a scheme written by `str()`; raise ValueError if it is not one."""
        kind, _, name = text.partition(":")
        if kind == "bearer" and not name:
            return BEARER
        if kind in ("header", "query") and name.strip() == name and name:
            return cls(kind, name)  # type: ignore[arg-type]
        raise ValueError(f"not an authentication scheme: {text!r}")


BEARER = AuthScheme("bearer")
CANDIDATES: tuple[AuthScheme, ...] = (
    BEARER,
    AuthScheme("header", "X-API-Key"),
    AuthScheme("query", "token"),
    AuthScheme("query", "api_key"),
)
"""Tried in this order when the server does not say (FastAPI's usual schemes,
and the `?token=` of a sister product of the vendor)."""


def scheme_from_openapi(document: Any, path: str) -> AuthScheme | None:
    """Return the scheme an OpenAPI document declares for GET `path`, if any.

    The operation's own `security` wins over the document's; the first
    requirement whose scheme this client can use is taken.
    """
    if not isinstance(document, Mapping):
        return None
    components = document.get("components")
    schemes = (
        components.get("securitySchemes") if isinstance(components, Mapping) else None
    )
    if not isinstance(schemes, Mapping):
        return None
    operation = _operation(document, path)
    security = operation.get("security") if operation is not None else None
    if security is None:
        security = document.get("security")
    if not isinstance(security, list):
        return None
    for requirement in security:
        if not isinstance(requirement, Mapping):
            continue
        for name in requirement:
            if (scheme := _scheme(schemes.get(name))) is not None:
                return scheme
    return None


def _operation(document: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """Return the GET operation of `path` in the document."""
    paths = document.get("paths")
    item = paths.get(path) if isinstance(paths, Mapping) else None
    operation = item.get("get") if isinstance(item, Mapping) else None
    return operation if isinstance(operation, Mapping) else None


def _scheme(declared: Any) -> AuthScheme | None:
    """Return the scheme an OpenAPI security scheme object describes."""
    if not isinstance(declared, Mapping):
        return None
    kind = declared.get("type")
    if kind == "http" and str(declared.get("scheme", "")).lower() == "bearer":
        return BEARER
    name = declared.get("name")
    if kind == "apiKey" and isinstance(name, str) and name:
        where = declared.get("in")
        if where == "header":
            return AuthScheme("header", name)
        if where == "query":
            return AuthScheme("query", name)
    return None
