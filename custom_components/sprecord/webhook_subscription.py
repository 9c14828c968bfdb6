"""The cloud's side of the webhook: subscribe, keep subscribed, unsubscribe.

Once Home Assistant has started, the integration registers the hook's URL
(`webhook.async_webhook_url()`) with `/sys/subscribe_events`; the cloud
checks it with a verification POST, which the intake (`webhook.py`)
answers. The subscription is made again when the instance's external URL
or Home Assistant Cloud changes. Leaving webhook mode (or removing the
entry) registers an empty list of events, the API's only way to stop
deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import random
from typing import Any

from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_WEBHOOK_ID, EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.start import async_at_started

from .api import SUBSCRIBABLE_EVENT_TYPES, SpRecordClient, SpRecordError
from .api.clean import for_log
from .const import (
    CONF_CLOUDHOOK_URL,
    CONF_HOOK_URL,
    CONF_TRANSPORT,
    DOMAIN,
    LOGGER,
    TRANSPORT_SSE,
)
from .webhook import (
    NoWebhookUrlError,
    WebhookIntake,
    async_webhook_url,
    external_url,
    verify_only,
)

RETRY_MIN = 30.0
RETRY_MAX = 1800.0
EVENT_TYPES = [str(event_type) for event_type in SUBSCRIBABLE_EVENT_TYPES]


def _cloud() -> Any:
    """Return Home Assistant's cloud component (imported only when loaded)."""
    from homeassistant.components import cloud  # noqa: PLC0415 (heavy, optional)

    return cloud


async def _backoff(delay: float) -> float:
    """Wait about `delay` seconds; return the next, longer delay."""
    await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
    return min(delay * 2, RETRY_MAX)


class WebhookSubscription:
    """Keeps the entry's webhook subscribed with the SpRecord cloud."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: SpRecordClient,
        intake: WebhookIntake,
        *,
        on_status: Callable[[bool], None],
        adopt_pbx: Callable[[str], None],
    ) -> None:
        """Prepare the subscription; `async_start()` subscribes once started.

        `on_status(True)` is called when the hook is registered with the
        cloud, `on_status(False)` when it cannot be (no URL, refused);
        `adopt_pbx(pbx_id)` with the PBX the cloud's verification named.
        """
        self.hass = hass
        self.entry = entry
        self.client = client
        self.intake = intake
        self._on_status = on_status
        self._adopt_pbx = adopt_pbx
        self.url: str | None = None
        """The URL the cloud holds, once registered."""
        self.registered = False
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubs: list[CALLBACK_TYPE] = []

    @callback
    def async_start(self) -> None:
        """Subscribe once Home Assistant has started, and on URL changes."""
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
        """Stop subscribing (the entry unloads)."""
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
            # This attempt's own list: one it replaced may end meanwhile.
            verified: list[str] = []
            self.intake.verified_ids = verified
            try:
                await self.client.subscribe_events(url, EVENT_TYPES)
            except SpRecordError as err:
                self._failed(
                    f"The SpRecord cloud did not take the webhook: {for_log(err)}"
                )
                delay = await _backoff(delay)
                continue
            finally:
                if self.intake.verified_ids is verified:
                    self.intake.verified_ids = None
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
            self._adopt_pbx(ids.pop())
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


def had_webhook(entry: ConfigEntry) -> bool:
    """Tell whether the SpRecord cloud may hold a webhook of this entry."""
    return bool(
        entry.data.get(CONF_HOOK_URL)
        or entry.data.get(CONF_CLOUDHOOK_URL)
        or entry.options.get(CONF_TRANSPORT, TRANSPORT_SSE) != TRANSPORT_SSE
    )


def _registered_url(hass: HomeAssistant, entry: ConfigEntry) -> str | None:
    """Return the URL the SpRecord cloud may hold for the entry's webhook."""
    url = entry.data.get(CONF_HOOK_URL) or entry.data.get(CONF_CLOUDHOOK_URL)
    if url is not None:
        return str(url)
    try:
        return external_url(hass, entry.data[CONF_WEBHOOK_ID])
    except NoURLAvailableError:
        return None


async def async_unsubscribe(
    hass: HomeAssistant, entry: ConfigEntry, client: SpRecordClient
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
        hass, DOMAIN, "SpRecord (removing)", webhook_id, verify_only, local_only=False
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
    hass: HomeAssistant, entry: ConfigEntry, client: SpRecordClient
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
