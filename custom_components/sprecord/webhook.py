"""Webhook transport: the SpRecord cloud POSTs events to Home Assistant.

The hook's URL is a Home Assistant Cloud cloudhook when a subscription is
active, otherwise the instance's external URL. Once Home Assistant has
started, the integration registers that URL with `/sys/subscribe_events`;
the cloud checks it with a verification POST, answered here with
`{"result": md5_hex(payload)}`. Events then arrive as POSTs and go through
the same `parse_event()` and coordinator path as the SSE stream.

Anyone who knows the hook's URL can POST to it, and a POST carries no proof
of where it came from. So a webhook request never introduces a PBX: the
entry takes a PBX from the SSE stream, or from the verification POST that
arrives while its own `/sys/subscribe_events` call waits for the cloud (and
only when that call succeeds, and that POST was the only one). Webhook
events of a PBX the entry does not follow are answered, counted and
dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.const import CONF_WEBHOOK_ID, EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.start import async_at_started

from .api import (
    SUBSCRIBABLE_EVENT_TYPES,
    ProtocolError,
    SpRecordClient,
    SpRecordError,
    SpRecordEvent,
    VerificationEvent,
    parse_event,
    verification_response,
)
from .api.clean import for_log, is_pbx_id
from .const import (
    CONF_CLOUDHOOK_URL,
    CONF_HOOK_URL,
    CONF_TRANSPORT,
    DOMAIN,
    LOGGER,
    TRANSPORT_SSE,
)

if TYPE_CHECKING:
    from .coordinator import SpRecordConfigEntry, SpRecordCoordinator

MAX_BODY = 64 * 1024
"""The largest webhook body taken; an event is a few hundred bytes."""
RETRY_MIN = 30.0
RETRY_MAX = 1800.0
EVENT_TYPES = [str(event_type) for event_type in SUBSCRIBABLE_EVENT_TYPES]


class NoWebhookUrlError(Exception):
    """Neither Home Assistant Cloud nor an external URL can reach this instance."""


def _cloud() -> Any:
    """Return Home Assistant's cloud component (imported only when loaded)."""
    from homeassistant.components import cloud  # noqa: PLC0415 (heavy, optional)

    return cloud


def cloud_active(hass: HomeAssistant) -> bool:
    """Tell whether a Home Assistant Cloud subscription can carry the hook."""
    if "cloud" not in hass.config.components:
        return False
    return bool(_cloud().async_active_subscription(hass))


def webhook_url_available(hass: HomeAssistant) -> bool:
    """Tell whether the SpRecord cloud could reach a webhook of this instance."""
    if cloud_active(hass):
        return True
    try:
        _external_url(hass, "0")
    except NoURLAvailableError:
        return False
    return True


def _external_url(hass: HomeAssistant, webhook_id: str) -> str:
    """Return the hook's URL on the instance's external address."""
    return webhook.async_generate_url(
        hass, webhook_id, allow_internal=False, prefer_external=True
    )


async def async_webhook_url(hass: HomeAssistant, entry: SpRecordConfigEntry) -> str:
    """Return the URL the SpRecord cloud should POST to.

    Raises `NoWebhookUrlError` when the instance cannot be reached from the
    internet.
    """
    webhook_id: str = entry.data[CONF_WEBHOOK_ID]
    if cloud_active(hass):
        if url := entry.data.get(CONF_CLOUDHOOK_URL):
            return str(url)
        url = await _cloud().async_get_or_create_cloudhook(hass, webhook_id)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_CLOUDHOOK_URL: url}
        )
        return str(url)
    try:
        return _external_url(hass, webhook_id)
    except NoURLAvailableError as err:
        raise NoWebhookUrlError from err


def _json_response(data: dict[str, Any], status: int = 200) -> web.Response:
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


async def _backoff(delay: float) -> float:
    """Wait about `delay` seconds; return the next, longer delay."""
    await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
    return min(delay * 2, RETRY_MAX)


class WebhookTransport:
    """Registers the entry's webhook, keeps it subscribed, takes its events."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SpRecordConfigEntry,
        coordinator: SpRecordCoordinator,
        on_status: Callable[[bool], None],
    ) -> None:
        """Prepare the transport; `async_start()` registers the webhook.

        `on_status(True)` is called when the hook is registered with the
        cloud, `on_status(False)` when it cannot be (no URL, refused).
        """
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self._on_status = on_status
        self.webhook_id: str = entry.data[CONF_WEBHOOK_ID]
        self.url: str | None = None
        """The URL the cloud holds, once registered."""
        self.registered = False
        self.last_error: str | None = None
        self.bad_requests = 0
        self._bad_logged = False
        self.unknown_pbx_requests = 0
        """Webhook events of a PBX the entry does not follow (dropped)."""
        self._unknown_pbx_logged = False
        self._verified_ids: list[str] | None = None
        """PBX ids of the verification POSTs while our subscription waits."""
        self._task: asyncio.Task[None] | None = None
        self._unsubs: list[CALLBACK_TYPE] = []

    @callback
    def async_start(self) -> None:
        """Register the webhook; subscribe once Home Assistant has started."""
        webhook.async_register(
            self.hass,
            DOMAIN,
            f"SpRecord {self.entry.title}",
            self.webhook_id,
            self._handle,
            local_only=False,
            allowed_methods=["POST"],
        )
        self._unsubs.append(async_at_started(self.hass, self._started))
        self._unsubs.append(
            self.hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, self._config_changed)
        )
        if "cloud" in self.hass.config.components:
            self._unsubs.append(
                _cloud().async_listen_connection_change(self.hass, self._cloud_changed)
            )

    @callback
    def async_stop(self) -> None:
        """Unregister the webhook and stop subscribing (the entry unloads)."""
        webhook.async_unregister(self.hass, self.webhook_id)
        while self._unsubs:
            self._unsubs.pop()()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @callback
    def _started(self, _hass: HomeAssistant) -> None:
        self.async_resubscribe()

    @callback
    def _config_changed(self, _event: Event) -> None:
        """Subscribe again if the instance's external URL changed."""
        self.async_resubscribe(only_if_url_changed=True)

    @callback
    def _cloud_changed(self, _state: Any) -> None:
        self.async_resubscribe(only_if_url_changed=True)

    @callback
    def async_resubscribe(self, *, only_if_url_changed: bool = False) -> None:
        """(Re)start the subscription job, replacing one that runs."""
        if self._task is not None:
            self._task.cancel()
        self._task = self.entry.async_create_background_task(
            self.hass,
            self._subscribe(only_if_url_changed=only_if_url_changed),
            f"{DOMAIN} webhook subscription {self.entry.title}",
        )

    async def _subscribe(self, *, only_if_url_changed: bool) -> None:
        """Register the hook's URL with the cloud, retrying until it works."""
        delay = RETRY_MIN
        while True:
            try:
                url = await async_webhook_url(self.hass, self.entry)
            except NoWebhookUrlError:
                self._failed(
                    "Home Assistant has no external URL or Home Assistant Cloud: "
                    "the SpRecord cloud cannot reach its webhook"
                )
                return  # a config or cloud change starts a new attempt
            except HomeAssistantError as err:
                # CloudNotConnected, CloudNotAvailable: SSE stands in and the
                # cloudhook is asked for again later.
                self._failed(
                    "Home Assistant Cloud could not make the webhook's cloudhook: "
                    f"{err.__class__.__name__}: {for_log(err)}"
                )
                delay = await _backoff(delay)
                continue
            if only_if_url_changed and url == self.url:
                return
            only_if_url_changed = False
            self._verified_ids = []
            try:
                await self.coordinator.client.subscribe_events(url, EVENT_TYPES)
            except SpRecordError as err:
                self._failed(
                    f"The SpRecord cloud did not take the webhook: {for_log(err)}"
                )
                delay = await _backoff(delay)
                continue
            finally:
                verified, self._verified_ids = self._verified_ids, None
            self._adopt_verified(verified)
            self.url = url
            self.registered = True
            self.last_error = None
            LOGGER.debug("Webhook registered with the SpRecord cloud")
            if self.entry.data.get(CONF_HOOK_URL) != url:
                # Remembered so that leaving webhook mode can tell the cloud.
                self.hass.config_entries.async_update_entry(
                    self.entry, data={**self.entry.data, CONF_HOOK_URL: url}
                )
            self._on_status(True)  # noqa: FBT003
            return

    @callback
    def _adopt_verified(self, verified: list[str]) -> None:
        """Follow the PBX the cloud named while it verified our subscription.

        Only when one PBX id came: a second one means that someone else
        POSTed a verification meanwhile, and neither can be told apart.
        """
        ids = set(verified)
        if len(ids) == 1:
            self.coordinator.async_adopt_pbx(ids.pop())
        elif len(ids) > 1:
            LOGGER.warning(
                "The webhook got verification requests naming %s different PBXs "
                "while it subscribed; none is taken from them",
                len(ids),
            )

    @callback
    def _failed(self, reason: str) -> None:
        """Note a subscription that did not work; log it once per reason."""
        if reason != self.last_error:
            LOGGER.warning("%s", reason)
        self.last_error = reason
        self.registered = False
        self._on_status(False)  # noqa: FBT003

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
            if self._verified_ids is not None and event.device_id:
                self._verified_ids.append(event.device_id)
            return _json_response(verification_response(event.payload))
        if not self.coordinator.follows_pbx(event.device_id):
            # Anyone with the URL can POST: a PBX comes from SSE or from the
            # verification of our own subscription, never from a POST.
            self._unknown_pbx()
            return _json_response({})
        self.coordinator.async_handle_event(event, "webhook")
        return _json_response({})

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
        return _json_response({"error": reason}, status=400)


def had_webhook(entry: SpRecordConfigEntry) -> bool:
    """Tell whether the SpRecord cloud may hold a webhook of this entry."""
    return bool(
        entry.data.get(CONF_HOOK_URL)
        or entry.data.get(CONF_CLOUDHOOK_URL)
        or entry.options.get(CONF_TRANSPORT, TRANSPORT_SSE) != TRANSPORT_SSE
    )


def _registered_url(hass: HomeAssistant, entry: SpRecordConfigEntry) -> str | None:
    """Return the URL the SpRecord cloud may hold for the entry's webhook."""
    url = entry.data.get(CONF_HOOK_URL) or entry.data.get(CONF_CLOUDHOOK_URL)
    if url is not None:
        return str(url)
    try:
        return _external_url(hass, entry.data[CONF_WEBHOOK_ID])
    except NoURLAvailableError:
        return None


async def _verify_only(
    hass: HomeAssistant, webhook_id: str, request: web.Request
) -> web.Response:
    """Answer the cloud's verification, and nothing else (while unsubscribing)."""
    try:
        event = await async_parse_request(request)
    except (BodyTooLargeError, ProtocolError):
        return _json_response({"error": "gone"}, status=410)
    if isinstance(event, VerificationEvent):
        return _json_response(verification_response(event.payload))
    return _json_response({"error": "gone"}, status=410)


async def async_unsubscribe(
    hass: HomeAssistant, entry: SpRecordConfigEntry, client: SpRecordClient
) -> bool:
    """Stop webhook deliveries of the entry and delete its cloudhook.

    Used when the entry is removed and when it leaves webhook mode. The API
    has no unsubscribe call: the hook is registered again with an empty list
    of events. The cloud verifies the hook before it saves that, so the
    webhook answers verification (and nothing else) meanwhile. The cloudhook
    is deleted only once the cloud took the empty list. Returns whether it
    did (or there was nothing to undo).
    """
    webhook_id = entry.data.get(CONF_WEBHOOK_ID)
    if not webhook_id or (url := _registered_url(hass, entry)) is None:
        return True
    # A handler may still be registered (an unload that failed).
    webhook.async_unregister(hass, webhook_id)
    webhook.async_register(
        hass, DOMAIN, "SpRecord (removing)", webhook_id, _verify_only, local_only=False
    )
    try:
        await client.subscribe_events(url, [])
    except SpRecordError as err:
        LOGGER.warning(
            "Could not tell the SpRecord cloud to stop webhook deliveries: %s",
            for_log(err),
        )
        return False  # the cloud still posts to the hook: keep it for a retry
    finally:
        webhook.async_unregister(hass, webhook_id)
    if entry.data.get(CONF_CLOUDHOOK_URL) and "cloud" in hass.config.components:
        try:
            await _cloud().async_delete_cloudhook(hass, webhook_id)
        except Exception as err:  # noqa: BLE001 (cloud errors vary by version)
            LOGGER.debug("Could not delete the cloudhook: %s", for_log(err))
    return True


async def async_leave_webhook_mode(
    hass: HomeAssistant, entry: SpRecordConfigEntry, client: SpRecordClient
) -> None:
    """After a switch to SSE only, undo the webhook the cloud still holds.

    Retried with backoff while the entry runs (the cloud or Home Assistant
    Cloud may not be reachable yet); what is left is tried again at the next
    start, or at removal.
    """
    delay = RETRY_MIN
    while not await async_unsubscribe(hass, entry, client):
        delay = await _backoff(delay)
    data = {
        key: value
        for key, value in entry.data.items()
        if key not in (CONF_HOOK_URL, CONF_CLOUDHOOK_URL)
    }
    hass.config_entries.async_update_entry(entry, data=data)
