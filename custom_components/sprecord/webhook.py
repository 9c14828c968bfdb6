"""Webhook intake: the SpRecord cloud POSTs events to Home Assistant.

The hook's URL is a Home Assistant Cloud cloudhook when a subscription is
active, otherwise the instance's external URL (`webhook_subscription.py`
registers it with the cloud). This module answers the cloud's verification
POST with `{"result": md5_hex(payload)}` and hands the events, parsed by the
same `parse_event()` as the SSE stream's, to the link.

Anyone who knows the hook's URL can POST to it, and a POST carries no proof
of where it came from. So a webhook request never introduces a PBX: the
entry takes a PBX from the SSE stream, or from the verification POST that
arrives while its own `/sys/subscribe_events` call waits for the cloud (and
only when that call succeeds, and that POST was the only one). Webhook
events of a PBX the entry does not follow are answered, counted and
dropped.
"""

from __future__ import annotations

from collections.abc import Callable
import re
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.network import NoURLAvailableError

from .api import (
    ProtocolError,
    SpRecordEvent,
    VerificationEvent,
    parse_event,
    verification_response,
)
from .api.clean import for_log, is_pbx_id
from .const import CONF_CLOUDHOOK_URL, DOMAIN, LOGGER

MAX_BODY = 64 * 1024
"""The largest webhook body taken; an event is a few hundred bytes."""


class NoWebhookUrlError(Exception):
    """Neither Home Assistant Cloud nor an external URL can reach this instance."""


def cloud_component() -> Any:
    """Return Home Assistant's cloud component (imported only when loaded)."""
    from homeassistant.components import cloud  # noqa: PLC0415 (heavy, optional)

    return cloud


def cloud_active(hass: HomeAssistant) -> bool:
    """Tell whether a Home Assistant Cloud subscription can carry the hook."""
    if "cloud" not in hass.config.components:
        return False
    return bool(cloud_component().async_active_subscription(hass))


def webhook_url_available(hass: HomeAssistant) -> bool:
    """Tell whether the SpRecord cloud could reach a webhook of this instance."""
    if cloud_active(hass):
        return True
    try:
        external_url(hass, "0")
    except NoURLAvailableError:
        return False
    return True


def external_url(hass: HomeAssistant, webhook_id: str) -> str:
    """Return the hook's URL on the instance's external address."""
    return webhook.async_generate_url(
        hass, webhook_id, allow_internal=False, prefer_external=True
    )


async def async_webhook_url(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """Return the URL the SpRecord cloud should POST to.

    Raises `NoWebhookUrlError` when the instance cannot be reached from the
    internet.
    """
    webhook_id: str = entry.data[CONF_WEBHOOK_ID]
    if cloud_active(hass):
        if url := entry.data.get(CONF_CLOUDHOOK_URL):
            return str(url)
        url = await cloud_component().async_get_or_create_cloudhook(hass, webhook_id)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_CLOUDHOOK_URL: url}
        )
        return str(url)
    try:
        return external_url(hass, webhook_id)
    except NoURLAvailableError as err:
        raise NoWebhookUrlError from err


def json_response(data: dict[str, Any], status: int = 200) -> web.Response:
    """Return a JSON answer to the cloud."""
    return web.json_response(data, status=status)


class BodyTooLargeError(Exception):
    """The webhook body is larger than `MAX_BODY`."""


async def read_body(request: web.Request) -> bytes:
    """Return the whole body of a webhook request, at most `MAX_BODY` bytes.

    Works for aiohttp's requests and for the `MockRequest` that Home
    Assistant Cloud hands a cloudhook delivery on as (it has no
    `content_length`, and each read of `content` is a new reader). A body
    arrives in pieces (chunked, a proxy): read to its end, not what is
    buffered. Raises `BodyTooLargeError` past the cap, without reading on.
    """
    length = getattr(request, "content_length", None)
    if length is not None and length > MAX_BODY:
        raise BodyTooLargeError
    reader = request.content
    body = bytearray()
    while chunk := await reader.read(MAX_BODY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLargeError
    return bytes(body)


def form_verification(body: bytes) -> VerificationEvent | None:
    """Return a verification request that is not JSON, if it is one.

    The vendor's page writes the verification request as `key = value` pairs
    in braces, not as JSON; a server may send it that way or form-encoded
    (`device_id=...&event_type=verification&payload=...`). Both are answered;
    events themselves are JSON.
    """
    try:
        text = body.decode().strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    fields: dict[str, str] = {}
    for pair in re.split(r"[&,\n]", text):
        key, equals, value = pair.partition("=")
        if equals:
            fields[unquote_plus(key).strip()] = unquote_plus(value).strip()
    if fields.get("event_type") != "verification" or not fields.get("payload"):
        return None
    device_id = fields.get("device_id", "")
    return VerificationEvent(
        device_id=device_id if is_pbx_id(device_id) else "",
        payload=fields["payload"],
    )


async def async_parse_request(request: web.Request) -> SpRecordEvent:
    """Read and parse a webhook request; raise what makes it a bad request.

    Raises `BodyTooLargeError` or `ProtocolError`.
    """
    body = await read_body(request)
    try:
        return parse_event(body)
    except ProtocolError:
        verification = form_verification(body)
        if verification is None:
            raise
        return verification


type Deliver = Callable[[SpRecordEvent, str], None]
"""Where events go: the link's delivery (event, transport)."""


class WebhookIntake:
    """Takes the entry's webhook requests: verification answered, events on."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        deliver: Deliver,
        follows_pbx: Callable[[str], bool],
    ) -> None:
        """Prepare the intake; `async_start()` registers the webhook."""
        self.hass = hass
        self.entry = entry
        self._deliver = deliver
        self._follows_pbx = follows_pbx
        self.webhook_id: str = entry.data[CONF_WEBHOOK_ID]
        self.bad_requests = 0
        self._bad_logged = False
        self.unknown_pbx_requests = 0
        """Webhook events of a PBX the entry does not follow (dropped)."""
        self._unknown_pbx_logged = False
        self.verified_ids: list[str] | None = None
        """PBX ids of the verification POSTs while our subscription waits
        (a list only while it does)."""

    @callback
    def async_start(self) -> None:
        """Register the webhook with Home Assistant."""
        webhook.async_register(
            self.hass,
            DOMAIN,
            f"SpRecord {self.entry.title}",
            self.webhook_id,
            self._handle,
            local_only=False,
            allowed_methods=["POST"],
        )

    @callback
    def async_stop(self) -> None:
        """Unregister the webhook (the entry unloads)."""
        webhook.async_unregister(self.hass, self.webhook_id)

    async def _handle(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        """Answer the verification, take events; bad bodies get a 400."""
        try:
            event = await async_parse_request(request)
        except BodyTooLargeError:
            return self._bad_request("body too large")
        except ProtocolError as err:
            return self._bad_request(str(err))
        if isinstance(event, VerificationEvent):
            if self.verified_ids is not None and event.device_id:
                self.verified_ids.append(event.device_id)
            return json_response(verification_response(event.payload))
        if not self._follows_pbx(event.device_id):
            # Anyone with the URL can POST: a PBX comes from SSE or from the
            # verification of our own subscription, never from a POST.
            self._unknown_pbx()
            return json_response({})
        self._deliver(event, "webhook")
        return json_response({})

    @callback
    def _unknown_pbx(self) -> None:
        """Drop an event of a PBX the entry does not follow; log it once."""
        self.unknown_pbx_requests += 1
        if not self._unknown_pbx_logged:
            self._unknown_pbx_logged = True
            LOGGER.warning(
                "Dropped a webhook event of a PBX this entry does not follow (yet): "
                "a PBX is taken from the event stream or the webhook's "
                "verification, never from a webhook request"
            )

    @callback
    def _bad_request(self, reason: str) -> web.Response:
        """Refuse a body; log the first at warning, later ones at debug."""
        self.bad_requests += 1
        if not self._bad_logged:
            self._bad_logged = True
            LOGGER.warning("Refused a webhook request: %s", for_log(reason))
        else:
            LOGGER.debug("Refused a webhook request: %s", for_log(reason))
        return json_response({"error": reason}, status=400)


async def verify_only(
    hass: HomeAssistant, webhook_id: str, request: web.Request
) -> web.Response:
    """Answer the cloud's verification, and nothing else (while unsubscribing)."""
    try:
        event = await async_parse_request(request)
    except (BodyTooLargeError, ProtocolError):
        return json_response({"error": "gone"}, status=410)
    if isinstance(event, VerificationEvent):
        return json_response(verification_response(event.payload))
    return json_response({"error": "gone"}, status=410)
