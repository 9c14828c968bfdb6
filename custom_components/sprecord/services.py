"""Actions of the SpRecord MiniPBX integration.

Every action is an administrator's: the auto-dial ones place calls (toll,
nuisance, a running alarm stopped) and answer who was called; reloading the
phonebook reads a file of the host and its errors quote the file's lines.
Automations and scripts, which run without a user, may call them all.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
)
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.device_registry import DeviceEntry
import voluptuous as vol

from .api.autodial_models import (
    AutoDialAlreadyRunning,
    AutoDialCommand,
    AutoDialError,
    AutoDialNotFound,
    AutoDialUnreachable,
    AutoDialWrongState,
)
from .autodial import PbxAutoDial
from .compat import (
    async_extract_referenced,
    async_register_admin_service,
    device_config_entry_ids,
)
from .const import (
    DOMAIN,
    SERVICE_AUTO_DIAL_COMMAND,
    SERVICE_GET_AUTO_DIAL_STATUS,
    SERVICE_RELOAD_PHONEBOOK,
    SERVICE_START_AUTO_DIAL,
)
from .data import SpRecordConfigEntry

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
_IDS = vol.All(cv.ensure_list, [cv.string])
_TARGET: dict[vol.Marker, Any] = {
    vol.Optional(ATTR_DEVICE_ID): _IDS,
    vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
    vol.Optional(ATTR_AREA_ID): _IDS,
    vol.Optional(ATTR_FLOOR_ID): _IDS,
    vol.Optional(ATTR_LABEL_ID): _IDS,
}
"""A target as Home Assistant passes it; `_target_pbx()` finds its one PBX."""
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


@dataclass(frozen=True, slots=True)
class _TargetPbx:
    """The PBX an action's target names, in its loaded entry."""

    entry: SpRecordConfigEntry
    unique_prefix: str
    name: str
    """As the user sees it (the device's name)."""


def _pbx_of_device(
    hass: HomeAssistant, device: DeviceEntry, *, named: bool
) -> _TargetPbx | None:
    """Return the PBX that `device` is, or whose line it is: ours, loaded.

    None for a device that is no PBX or line of a loaded entry; a device
    `named` directly whose entry is not loaded is an error saying so.
    """
    for entry_id in device_config_entry_ids(device):
        entry: SpRecordConfigEntry | None = hass.config_entries.async_get_entry(
            entry_id
        )
        if entry is None or entry.domain != DOMAIN:
            continue
        if entry.state is not ConfigEntryState.LOADED:
            if named:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="entry_not_loaded",
                    translation_placeholders={"title": entry.title},
                )
            continue
        for pbx in entry.runtime_data.coordinator.all_pbxs:
            pbx_id = pbx.device_registry_id
            # A line's device sits under its PBX's.
            if pbx_id is None or pbx_id not in (device.id, device.via_device_id):
                continue
            pbx_device = (
                device if pbx_id == device.id else dr.async_get(hass).async_get(pbx_id)
            )
            name = (pbx_device and pbx_device.name_by_user) or pbx.name
            return _TargetPbx(entry, pbx.unique_prefix, name)
    return None


def _entity_device(hass: HomeAssistant, entity_id: str) -> DeviceEntry | None:
    """Return the device of an entity, if it has one."""
    entity = er.async_get(hass).async_get(entity_id)
    if entity is None or entity.device_id is None:
        return None
    return dr.async_get(hass).async_get(entity.device_id)


def _target_pbx(hass: HomeAssistant, call: ServiceCall) -> _TargetPbx:
    """Return the one PBX the call targets, found through the registries.

    A device or an entity named directly must be (or belong to) a PBX or a
    line of a loaded entry. Areas, floors and labels, holding devices and
    entities, count the PBXs in them and pass over the rest. A target
    holding several PBXs is refused: the action works on one.
    """
    named_devices: list[str] = call.data.get(ATTR_DEVICE_ID, [])
    if len(named_devices) > 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="one_pbx"
        )
    registry = dr.async_get(hass)
    referenced = async_extract_referenced(hass, call)
    named = [registry.async_get(device_id) for device_id in named_devices]
    named.extend(_entity_device(hass, entity_id) for entity_id in referenced.referenced)
    placed = [
        registry.async_get(device_id)
        for device_id in referenced.referenced_devices - set(named_devices)
    ]
    placed.extend(
        _entity_device(hass, entity_id)
        for entity_id in referenced.indirectly_referenced
    )
    found: dict[tuple[str, str], _TargetPbx] = {}
    for device in named:
        if device is None or (pbx := _pbx_of_device(hass, device, named=True)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="not_a_pbx"
            )
        found[pbx.entry.entry_id, pbx.unique_prefix] = pbx
    for device in placed:
        if device and (pbx := _pbx_of_device(hass, device, named=False)):
            found[pbx.entry.entry_id, pbx.unique_prefix] = pbx
    if len(found) > 1:
        names = sorted(pbx.name for pbx in found.values())
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="several_pbxs",
            translation_placeholders={
                "count": str(len(names)),
                "pbxs": ", ".join(names),
            },
        )
    if not found:
        if any(
            call.data.get(key) for key in (ATTR_AREA_ID, ATTR_FLOOR_ID, ATTR_LABEL_ID)
        ):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_pbx_in_target"
            )
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="one_pbx"
        )
    return next(iter(found.values()))


def _autodial_for(hass: HomeAssistant, call: ServiceCall) -> PbxAutoDial:
    """Return the auto-dialer of the one PBX the call targets."""
    pbx = _target_pbx(hass, call)
    autodial = pbx.entry.runtime_data.coordinator.autodial.get(pbx.unique_prefix)
    if autodial is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_local_address",
            translation_placeholders={"pbx": pbx.name},
        )
    return autodial


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
    if entry_id is None:
        loaded: list[SpRecordConfigEntry] = hass.config_entries.async_loaded_entries(
            DOMAIN
        )
        if not loaded:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_loaded_entries"
            )
        return loaded
    entry: SpRecordConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
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
