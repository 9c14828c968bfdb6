"""The SpRecord MiniPBX integration: calls and SMS of the PBX in Home Assistant."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.components.webhook import async_generate_id
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.const import (
    CONF_API_KEY,
    CONF_URL,
    CONF_WEBHOOK_ID,
    EVENT_HOMEASSISTANT_STOP,
    Platform,
    __version__ as HA_VERSION,  # noqa: N812
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.start import async_at_started
from homeassistant.helpers.typing import ConfigType

from . import link as link_module
from .api import BEARER, AuthScheme, ProtocolError, SpRecordClient
from .api.autodial import AutoDialClient
from .autodial import PbxAutoDial, parse_address
from .compat import NEEDS_OPTIONS_LISTENER
from .const import (
    CONF_AUTH_SCHEME,
    CONF_AUTODIAL,
    CONF_CALL_TIMEOUT,
    CONF_TRANSPORT,
    DEFAULT_CALL_TIMEOUT_MINUTES,
    DOMAIN,
    ISSUE_PHONEBOOK,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from .coordinator import SpRecordCoordinator
from .data import SpRecordConfigEntry, SpRecordRuntimeData
from .devices import async_remove_line_devices
from .link import Link, busy_issue_id
from .phonebook import load_number_metadata
from .resume import StreamPosition
from .services import async_setup_services
from .storage import SpRecordStore
from .webhook_subscription import (
    async_leave_webhook_mode,
    async_unsubscribe,
    had_webhook,
)

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, _config: ConfigType) -> bool:
    """Register the integration's actions (they exist without an entry).

    An entry's "too many connections" repair issue goes when the entry
    stops holding the stream: unloaded, disabled, removed or failed.
    The number metadata of every country is loaded here, in the executor:
    `phonenumbers` would otherwise read a country's file from disk in the
    event loop the first time a number of that country is seen.
    """
    async_setup_services(hass)

    @callback
    def entry_changed(change: ConfigEntryChange, entry: ConfigEntry) -> None:
        if entry.domain == DOMAIN and stopped_trying(change, entry):
            ir.async_delete_issue(hass, DOMAIN, busy_issue_id(entry.entry_id))

    async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, entry_changed)
    await hass.async_add_executor_job(load_number_metadata)
    return True


_RUNNING_STATES = frozenset(
    (
        ConfigEntryState.LOADED,
        ConfigEntryState.SETUP_IN_PROGRESS,
        ConfigEntryState.SETUP_RETRY,
    )
)
"""States in which an entry tries to hold the event stream."""


def stopped_trying(change: ConfigEntryChange, entry: ConfigEntry) -> bool:
    """Tell whether an entry stopped holding the stream (its issue goes).

    Unloaded, disabled, removed, failed. An entry that waits to retry its
    setup (the server was busy) is not unloaded when it is disabled: it only
    leaves its retry state, which is why the state is followed.
    """
    return change is ConfigEntryChange.REMOVED or entry.state not in _RUNNING_STATES


async def async_setup_entry(hass: HomeAssistant, entry: SpRecordConfigEntry) -> bool:
    """Open the event stream, then set up the entities and start reading."""
    link: Link | None = None

    def malformed(err: ProtocolError) -> None:
        if link is not None:
            link.async_malformed_event(err)

    client = SpRecordClient(
        async_get_clientsession(hass),
        entry.data[CONF_URL],
        entry.data[CONF_API_KEY],
        read_timeout=link_module.STREAM_READ_TIMEOUT,
        on_malformed_event=malformed,
        user_agent=f"HomeAssistant/{HA_VERSION} {DOMAIN}",
        auth=entry_auth_scheme(entry),
    )
    if CONF_WEBHOOK_ID not in entry.data:
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_WEBHOOK_ID: async_generate_id()}
        )
    transport = entry.options.get(CONF_TRANSPORT, TRANSPORT_SSE)
    store = SpRecordStore(hass, entry.entry_id, server=client.base_url)
    saved = await store.async_load()
    position = StreamPosition(saved.resume, kept=transport != TRANSPORT_WEBHOOK)
    coordinator = SpRecordCoordinator(
        hass,
        entry,
        store,
        call_timeout=timedelta(
            minutes=entry.options.get(CONF_CALL_TIMEOUT, DEFAULT_CALL_TIMEOUT_MINUTES)
        ),
        position=position,
    )
    entry.async_on_unload(coordinator.phonebook.async_follow_ui())
    coordinator.restore(saved.pbxs)
    await coordinator.phonebook.async_load_file()
    link = Link(
        hass,
        entry,
        client,
        transport=transport,
        sink=coordinator.async_handle_event,
        follows_pbx=coordinator.follows_pbx,
        adopt_pbx=coordinator.async_adopt_pbx,
        stream_opened=coordinator.async_stream_opened,
        position=position,
    )
    # Webhook-only mode proves the key with the stream's headers, then closes it.
    await link.async_connect(keep_open=transport != TRANSPORT_WEBHOOK)
    entry.async_on_unload(link.async_shutdown)
    entry.async_on_unload(coordinator.async_shutdown)

    @callback
    def stopping(_event: Event) -> None:
        # Home Assistant stops without unloading its entries: its final
        # write saves when the stream was last seen.
        coordinator.async_schedule_save()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, stopping))

    coordinator.async_register_devices()
    _add_autodialers(hass, entry, coordinator)
    entry.runtime_data = SpRecordRuntimeData(
        client=client, coordinator=coordinator, link=link
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if transport == TRANSPORT_SSE and had_webhook(entry):
        # The options left webhook mode: the cloud must stop POSTing to us.
        # Once Home Assistant has started (Home Assistant Cloud connects then).
        @callback
        def leave(_hass: HomeAssistant) -> None:
            entry.async_create_background_task(
                hass,
                async_leave_webhook_mode(hass, entry, client),
                f"{DOMAIN} leave webhook mode {entry.title}",
            )

        entry.async_on_unload(async_at_started(hass, leave))
    if saved.resume is not None and transport != TRANSPORT_WEBHOOK:
        # Before the reading starts: the backlog may be buffered already.
        coordinator.async_expect_backlog(saved.resume)
    link.async_start()
    if NEEDS_OPTIONS_LISTENER:
        entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


def _add_autodialers(
    hass: HomeAssistant, entry: SpRecordConfigEntry, coordinator: SpRecordCoordinator
) -> None:
    """Give each PBX whose local address is set its auto-dialer."""
    addresses: dict[str, str] = entry.options.get(CONF_AUTODIAL) or {}
    session = async_get_clientsession(hass)
    for pbx in coordinator.all_pbxs:
        if address := addresses.get(pbx.unique_prefix):
            host, port = parse_address(address)
            coordinator.autodial[pbx.unique_prefix] = PbxAutoDial(
                hass, entry, pbx, AutoDialClient(session, host, port)
            )


async def _async_options_updated(
    hass: HomeAssistant, entry: SpRecordConfigEntry
) -> None:
    """Reload when the options change (data changes need no reload).

    Only where Home Assistant has no `OptionsFlowWithReload` (see compat.py).
    """
    if entry.options != entry.runtime_data.coordinator.options:
        hass.config_entries.async_schedule_reload(entry.entry_id)


def entry_auth_scheme(entry: SpRecordConfigEntry) -> AuthScheme:
    """Return how the entry's key is sent (bearer for entries made before)."""
    try:
        return AuthScheme.parse(str(entry.data.get(CONF_AUTH_SCHEME, "bearer")))
    except ValueError:
        return BEARER


async def async_unload_entry(hass: HomeAssistant, entry: SpRecordConfigEntry) -> bool:
    """Stop taking events, unload the entities, save; timers stop with the entry.

    The link hands no event on from the start: what is saved is all that
    was handled, and the stream's next events stay on the server to resume.
    Meanwhile no new PBX is added (its entities would outlive the platforms)
    and nothing is saved after the last save. An unload that fails takes
    events again.
    """
    coordinator = entry.runtime_data.coordinator
    link = entry.runtime_data.link
    link.async_stop_delivery()
    coordinator.async_release_backlog(unloading=True)
    coordinator.unloading = True
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await coordinator.store.async_save_now(coordinator.saved())
    else:
        coordinator.unloading = False
        link.async_restart_delivery()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: SpRecordConfigEntry) -> None:
    """Stop webhook deliveries and delete what the entry saved."""
    if had_webhook(entry):
        client = SpRecordClient(
            async_get_clientsession(hass),
            entry.data[CONF_URL],
            entry.data[CONF_API_KEY],
            auth=entry_auth_scheme(entry),
        )
        await async_unsubscribe(hass, entry, client)
    await SpRecordStore(hass, entry.entry_id).async_remove()
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_PHONEBOOK}_{entry.entry_id}")


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: SpRecordConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user remove a line, or a PBX other than the entry's first.

    Either comes back if it is used again; a PBX's lines go with it. The
    entry may not be loaded (setup retrying, reauth pending): then it is
    dropped from the saved state, so it does not come back at setup.
    """
    unique_id = str(entry.unique_id)
    identifiers = [value for domain, value in device.identifiers if domain == DOMAIN]
    if unique_id in identifiers:
        return False  # the first PBX holds the link's own entity
    if entry.state in (
        ConfigEntryState.NOT_LOADED,
        ConfigEntryState.SETUP_RETRY,
        ConfigEntryState.SETUP_ERROR,
    ):
        store = SpRecordStore(hass, entry.entry_id)
        for identifier in identifiers:
            for prefix in await store.async_forget_device(unique_id, identifier):
                async_remove_line_devices(hass, entry.entry_id, prefix)
        return True
    if (runtime := getattr(entry, "runtime_data", None)) is not None:
        runtime.coordinator.async_remove_device(identifiers)
    # A device of ours that no PBX knows any more (left over) can go too.
    return True
