"""Actions of the SpRecord MiniPBX integration.

Every action is an administrator's: the auto-dial ones place calls (toll,
nuisance, a running alarm stopped) and answer who was called; reloading the
phonebook reads a file of the host and its errors quote the file's lines.
Automations and scripts, which run without a user, may call them all.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
import voluptuous as vol

from .api.autodial import (
    AutoDialAlreadyRunning,
    AutoDialCommand,
    AutoDialError,
    AutoDialNotFound,
    AutoDialUnreachable,
    AutoDialWrongState,
)
from .autodial import PbxAutoDial
from .compat import async_register_admin_service
from .const import (
    DOMAIN,
    SERVICE_AUTO_DIAL_COMMAND,
    SERVICE_GET_AUTO_DIAL_STATUS,
    SERVICE_RELOAD_PHONEBOOK,
    SERVICE_START_AUTO_DIAL,
)
from .coordinator import SpRecordConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_TASK = "task"
ATTR_NUMBERS = "numbers"
ATTR_TASK_ID = "task_id"
ATTR_COMMAND = "command"
COMMANDS = {
    "pause": AutoDialCommand.PAUSE,
    "resume": AutoDialCommand.RESUME,
    "stop": AutoDialCommand.STOP,
}
WRONG_STATE_CODES = frozenset({"not_running", "not_suspended", "already_suspended"})
MIN_TASK_ID = 1
MAX_TASK_ID = 2**31 - 1
"""The ids an action takes (the vendor's are small numbers such as 506; it
documents no range, so: a positive 32-bit integer, as the form offers)."""


def valid_task_id(value: Any) -> int:
    """Read a task id; one out of range is a translated error, not a crash."""
    number: int = vol.Coerce(int)(value)
    if not MIN_TASK_ID <= number <= MAX_TASK_ID:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="task_id_out_of_range",
            translation_placeholders={
                "min": str(MIN_TASK_ID),
                "max": str(MAX_TASK_ID),
            },
        )
    return number


RELOAD_PHONEBOOK_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): str})
_TARGET: dict[vol.Marker, Any] = {
    vol.Required(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string])
}
START_AUTO_DIAL_SCHEMA = vol.Schema(
    {
        **_TARGET,
        vol.Required(ATTR_TASK): vol.All(cv.string, vol.Strip, vol.Length(min=1)),
        vol.Optional(ATTR_NUMBERS): vol.All(
            cv.ensure_list, [vol.All(cv.string, vol.Strip, vol.Length(min=1))]
        ),
    }
)
AUTO_DIAL_COMMAND_SCHEMA = vol.Schema(
    {
        **_TARGET,
        vol.Required(ATTR_TASK_ID): valid_task_id,
        vol.Required(ATTR_COMMAND): vol.In(list(COMMANDS)),
    }
)
GET_AUTO_DIAL_STATUS_SCHEMA = vol.Schema(
    {**_TARGET, vol.Required(ATTR_TASK_ID): valid_task_id}
)


def _autodial_for(hass: HomeAssistant, call: ServiceCall) -> PbxAutoDial:
    """Return the auto-dialer of the one PBX device the call targets."""
    device_ids: list[str] = call.data[ATTR_DEVICE_ID]
    if len(device_ids) != 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="one_pbx"
        )
    device = dr.async_get(hass).async_get(device_ids[0])
    entries: list[SpRecordConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    for entry in entries:
        if device is None or entry.state is not ConfigEntryState.LOADED:
            continue
        coordinator = entry.runtime_data.coordinator
        for pbx in coordinator.all_pbxs:
            if pbx.device_registry_id != device.id:
                continue
            if (autodial := coordinator.autodial.get(pbx.unique_prefix)) is None:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="no_local_address",
                    translation_placeholders={"pbx": device.name_by_user or pbx.name},
                )
            return autodial
    raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_a_pbx")


async def _ask[T](autodial: PbxAutoDial, request: Awaitable[T], **about: str) -> T:
    """Await a request of the auto-dialer; turn its errors into clear ones."""
    placeholders = {"pbx": autodial.pbx.name, **about}
    try:
        return await request
    except AutoDialNotFound as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="auto_dial_not_found",
            translation_placeholders=placeholders,
        ) from err
    except AutoDialAlreadyRunning as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="auto_dial_already_running",
            translation_placeholders=placeholders,
        ) from err
    except AutoDialWrongState as err:
        code = err.code if err.code in WRONG_STATE_CODES else "wrong_state"
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=f"auto_dial_{code}",
            translation_placeholders=placeholders,
        ) from err
    except AutoDialUnreachable as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="auto_dial_unreachable",
            translation_placeholders={**placeholders, "error": str(err)},
        ) from err
    except AutoDialError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="auto_dial_error",
            translation_placeholders={**placeholders, "error": str(err)},
        ) from err


def _loaded_entries(
    hass: HomeAssistant, call: ServiceCall
) -> list[SpRecordConfigEntry]:
    """Return the entry the call names (or every entry), which must be loaded."""
    entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries: list[SpRecordConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    if entry_id is None:
        loaded = [e for e in entries if e.state is ConfigEntryState.LOADED]
        if not loaded:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_loaded_entries"
            )
        return loaded
    entry = next((e for e in entries if e.entry_id == entry_id), None)
    if entry is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return [entry]


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions."""

    async def reload_phonebook(call: ServiceCall) -> None:
        """Read the phonebook file again; a broken one keeps the old names."""
        failed: HomeAssistantError | None = None
        for entry in _loaded_entries(hass, call):
            # One broken file does not keep the other entries' from being read.
            try:
                await entry.runtime_data.coordinator.phonebook.async_load_file(
                    raise_errors=True
                )
            except HomeAssistantError as err:
                failed = failed or err
        if failed is not None:
            raise failed

    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_RELOAD_PHONEBOOK,
        reload_phonebook,
        schema=RELOAD_PHONEBOOK_SCHEMA,
    )

    async def start_auto_dial(call: ServiceCall) -> ServiceResponse:
        """Start a task of the PBX's auto-dialer; answer its id."""
        autodial = _autodial_for(hass, call)
        task: str = call.data[ATTR_TASK]
        # No list, or an empty one: the task's own numbers.
        numbers: list[str] | None = call.data.get(ATTR_NUMBERS) or None
        task_id = await _ask(autodial, autodial.async_start(task, numbers), task=task)
        return {"task_id": task_id}

    async def auto_dial_command(call: ServiceCall) -> None:
        """Pause, resume or stop a task."""
        autodial = _autodial_for(hass, call)
        task_id: int = call.data[ATTR_TASK_ID]
        await _ask(
            autodial,
            autodial.async_command(task_id, COMMANDS[call.data[ATTR_COMMAND]]),
            task=str(task_id),
        )

    async def get_auto_dial_status(call: ServiceCall) -> ServiceResponse:
        """Answer a task's state, counts and per-number results."""
        autodial = _autodial_for(hass, call)
        task_id: int = call.data[ATTR_TASK_ID]
        status: dict[str, Any] = await _ask(
            autodial, autodial.async_status(task_id), task=str(task_id)
        )
        return status

    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_START_AUTO_DIAL,
        start_auto_dial,
        START_AUTO_DIAL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_AUTO_DIAL_COMMAND,
        auto_dial_command,
        AUTO_DIAL_COMMAND_SCHEMA,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_GET_AUTO_DIAL_STATUS,
        get_auto_dial_status,
        GET_AUTO_DIAL_STATUS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
