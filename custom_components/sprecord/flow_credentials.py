"""The checks of the config flow: a server URL and an API key, before saving."""

from __future__ import annotations

import hashlib

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from yarl import URL

from .api import (
    BEARER,
    AuthenticationError,
    AuthScheme,
    ProtocolError,
    SpRecordClient,
    SpRecordConnectionError,
    SpRecordError,
    TooManyConnectionsError,
    normalize_base_url,
)
from .const import DOMAIN, LOGGER

VALIDATE_TIMEOUT = 10.0
"""Seconds a flow waits for a server when it checks what the user gave."""
REDACTED_URL = "**REDACTED**"
"""Shown instead of a URL that cannot be read (it may hold a password)."""


def without_userinfo(url: str) -> str:
    """Return `url` without its `user:password@`, to show it to people.

    The flow refuses such a URL; an entry saved before may still hold one.
    """
    try:
        return str(URL(url).with_user(None))
    except ValueError:
        return REDACTED_URL


def url_errors(url: str) -> dict[str, str]:
    """Return the form errors of a server URL the user typed, before any request.

    A `user:password@` would be saved and shown in plain text, and the API
    takes only the key: it is refused, saying what to remove.
    """
    try:
        parsed = URL(url.strip())
    except ValueError:
        return {}  # `validate` says it is not an address
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return {CONF_URL: "url_has_credentials"}
    return {}


def account_id(api_key: str) -> str:
    """Return the entry's unique id: a digest of the key, never the key."""
    return hashlib.sha256(f"{DOMAIN}:{api_key}".encode()).hexdigest()[:16]


async def validate(
    hass: HomeAssistant, url: str, api_key: str, scheme: AuthScheme | None = None
) -> tuple[dict[str, str], AuthScheme]:
    """Open the event stream with these credentials; return form errors, scheme.

    Without `scheme`, how the server takes the key is found out (its
    `/openapi.json`, else the usual schemes one probe at a time).
    """
    try:
        base_url = normalize_base_url(url)
    except ValueError:
        return {CONF_URL: "invalid_url"}, BEARER
    client = SpRecordClient(
        async_get_clientsession(hass),
        base_url,
        api_key,
        request_timeout=VALIDATE_TIMEOUT,
        auth=scheme or BEARER,
    )
    return await _check(client, discover=scheme is None), client.auth


async def _check(  # noqa: PLR0911 (one return per outcome)
    client: SpRecordClient, *, discover: bool
) -> dict[str, str]:
    """Prove the client's credentials; return the form errors."""
    try:
        if discover:
            await client.discover_auth()
        else:
            await client.verify()
    except AuthenticationError:
        return {"base": "invalid_auth"}
    except TooManyConnectionsError:
        return {"base": "too_many_connections"}
    except SpRecordConnectionError:
        return {"base": "cannot_connect"}
    except ProtocolError:
        return {"base": "not_sprecord"}
    except SpRecordError as err:
        return {
            "base": "not_sprecord" if err.status in (404, 405) else "cannot_connect"
        }
    except Exception:  # noqa: BLE001 (the form must show something)
        LOGGER.exception("Unexpected error while checking the SpRecord credentials")
        return {"base": "unknown"}
    return {}
