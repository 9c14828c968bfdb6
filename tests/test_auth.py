"""How the key is sent: the stored form, and what an OpenAPI document says."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from custom_components.sprecord.api import (
    BEARER,
    AuthenticationError,
    AuthScheme,
    SpRecordClient,
    scheme_from_openapi,
)
from emulator import SpRecordEmulator


@pytest.mark.parametrize(
    "text", ["bearer", "header:X-API-Key", "query:token", "query:api_key"]
)
def test_a_scheme_reads_back_what_it_writes(text: str) -> None:
    assert str(AuthScheme.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["", "auto", "bearer:x", "header:", "query:", "cookie:x", "header: X"]
)
def test_what_is_not_a_scheme_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an authentication scheme"):
        AuthScheme.parse(text)


def test_the_schemes_put_the_key_where_they_say() -> None:
    for scheme, where in [
        (BEARER, ({"Authorization": "Bearer k"}, {})),
        (AuthScheme("header", "X-Key"), ({"X-Key": "k"}, {})),
        (AuthScheme("query", "token"), ({}, {"token": "k"})),
    ]:
        headers: dict[str, str] = {}
        params: dict[str, str] = {}
        scheme.apply("k", headers, params)
        assert (headers, params) == where


def document(declared: Any, security: Any = None, top: Any = None) -> Any:
    """Return an OpenAPI document with one scheme, as FastAPI writes it."""
    operation = {} if security is None else {"security": security}
    doc: dict[str, Any] = {
        "paths": {"/sys/events": {"get": operation}},
        "components": {"securitySchemes": {"Key": declared}},
    }
    if top is not None:
        doc["security"] = top
    return doc


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ({"type": "http", "scheme": "bearer"}, "bearer"),
        ({"type": "http", "scheme": "Bearer"}, "bearer"),
        (
            {"type": "apiKey", "in": "header", "name": "X-Sprecord-Key"},
            "header:X-Sprecord-Key",
        ),
        ({"type": "apiKey", "in": "query", "name": "key"}, "query:key"),
        ({"type": "apiKey", "in": "cookie", "name": "session"}, None),
        ({"type": "http", "scheme": "basic"}, None),
        ({"type": "apiKey", "in": "header"}, None),
        ("not an object", None),
    ],
)
def test_the_scheme_declared_for_the_stream(
    declared: Any, expected: str | None
) -> None:
    found = scheme_from_openapi(document(declared, [{"Key": []}]), "/sys/events")
    assert (None if found is None else str(found)) == expected


def test_the_documents_own_security_counts_when_the_path_has_none() -> None:
    declared = {"type": "apiKey", "in": "query", "name": "token"}
    doc = document(declared, top=[{"Other": []}, {"Key": []}])
    assert str(scheme_from_openapi(doc, "/sys/events")) == "query:token"
    assert scheme_from_openapi(document(declared), "/sys/events") is None


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"components": []},
        {"components": {"securitySchemes": {}}, "paths": []},
        {"components": {"securitySchemes": {}}, "security": "x"},
        {"components": {"securitySchemes": {}}, "security": ["x"]},
    ],
)
def test_documents_that_say_nothing(doc: Any) -> None:
    assert scheme_from_openapi(doc, "/sys/events") is None


async def test_a_document_that_is_not_json_means_probing(
    emulator: SpRecordEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.set_auth_scheme("query:api_key", openapi=True)
    monkeypatch.setattr(emulator, "openapi_document", lambda: "{not json")
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        assert str(await client.discover_auth()) == "query:api_key"
        assert str(client.auth) == "query:api_key"
        client = SpRecordClient(session, emulator.url, "wrong")
        with pytest.raises(AuthenticationError):
            await client.discover_auth()


async def test_an_unreachable_document_means_probing(
    emulator: SpRecordEmulator,
) -> None:
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(
            session, "http://127.0.0.1:9", "demo", request_timeout=0.5
        )
        assert await client._declared_scheme() is None
