"""The one place where Home Assistant 2025.4 and the newest release differ.

The integration supports Home Assistant 2025.4 through the newest release.
Where the two ends need different calls, the choice is made here, once, by
looking for the feature (never by comparing version numbers), and the rest of
the integration uses what this module offers:

- **Reload after an options change.** Newer releases reload the entry
  themselves when an `OptionsFlowWithReload` saves changed options, and they
  report an update listener combined with `async_update_reload_and_abort`
  (reauth, reconfigure) as deprecated (it stops working in 2026.12). Older
  releases have no `OptionsFlowWithReload`: there an update listener reloads
  on an options change. `OptionsFlowBase` and `NEEDS_OPTIONS_LISTENER` carry
  the choice.
- **A line device under its PBX.** Newer releases link a sub-device with
  `DeviceInfo(via_device_id=<device registry id>)` and report `via_device`
  (breaks in 2027.8); older ones only know `via_device=<identifier>`.
  `via_device_info()` returns exactly one of the two.
- **Admin actions that answer.** Both ends offer
  `async_register_admin_service`, which refuses a call by a user who is not
  an administrator (automations and scripts, which run without a user, may
  call). Newer releases pass `supports_response` on and return the action's
  answer; 2025.4's takes no `supports_response` and drops the answer.
  `async_register_admin_service()` here registers an answering admin action
  at both ends, with the same check where Home Assistant cannot.
- **A device's config entries.** 2025.4's `DeviceEntry.config_entries` is a
  set; newer releases give a device one `config_entry_id` and report reading
  the set as deprecated. `device_config_entry_ids()` reads the one there is.
- **What an action's target names.** 2025.4 finds the devices and entities
  of a target with `service.async_extract_referenced_entity_ids(hass, call)`;
  newer releases moved it to `target.async_extract_referenced_entity_ids(hass,
  TargetSelection(call.data))` (and there a named device brings its
  sub-devices). `async_extract_referenced()` calls whichever there is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import importlib
import inspect
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from homeassistant import config_entries
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import Unauthorized, UnknownUser
from homeassistant.helpers import service as service_helper
from homeassistant.helpers.device_registry import DeviceEntry, DeviceInfo
from homeassistant.helpers.typing import VolSchemaType

NEEDS_OPTIONS_LISTENER: Final = not hasattr(config_entries, "OptionsFlowWithReload")
"""Whether an update listener must reload the entry when its options change."""

if TYPE_CHECKING:
    OptionsFlowBase = config_entries.OptionsFlow
else:
    # The options flow base class: one that reloads the entry where there is one.
    OptionsFlowBase = getattr(
        config_entries, "OptionsFlowWithReload", config_entries.OptionsFlow
    )

HAS_VIA_DEVICE_ID: Final = "via_device_id" in DeviceInfo.__annotations__
"""Whether `DeviceInfo` links a sub-device by its parent's registry id."""


def via_device_info(
    parent_identifier: tuple[str, str], parent_device_id: str | None
) -> DeviceInfo:
    """Return the `DeviceInfo` items that put a device under its parent.

    `parent_device_id` is the parent's id in the device registry; where Home
    Assistant links by that id and it is not known yet, the device is left
    unlinked rather than linked the deprecated way.
    """
    if HAS_VIA_DEVICE_ID:
        if parent_device_id is None:
            return DeviceInfo()
        return cast("DeviceInfo", {"via_device_id": parent_device_id})
    return DeviceInfo(via_device=parent_identifier)


ADMIN_SERVICE_ANSWERS: Final = (
    "supports_response"
    in inspect.signature(service_helper.async_register_admin_service).parameters
)
"""Whether Home Assistant's admin actions can answer (not in 2025.4)."""


def async_register_admin_service(
    hass: HomeAssistant,
    domain: str,
    service: str,
    service_func: Callable[[ServiceCall], Awaitable[ServiceResponse]],
    schema: VolSchemaType,
    *,
    supports_response: SupportsResponse = SupportsResponse.NONE,
) -> None:
    """Register an action only administrators (and automations) may call."""
    register: Any = service_helper.async_register_admin_service
    if ADMIN_SERVICE_ANSWERS:
        register(hass, domain, service, service_func, schema, supports_response)
        return
    if supports_response is SupportsResponse.NONE:
        register(hass, domain, service, service_func, schema)
        return

    async def admin_only(call: ServiceCall) -> ServiceResponse:
        """Refuse a user who is not an administrator, as Home Assistant does."""
        if call.context.user_id:
            user = await hass.auth.async_get_user(call.context.user_id)
            if user is None:
                raise UnknownUser(context=call.context)
            if not user.is_admin:
                raise Unauthorized(context=call.context)
        return await service_func(call)

    hass.services.async_register(domain, service, admin_only, schema, supports_response)


HAS_DEVICE_CONFIG_ENTRY_ID: Final = hasattr(DeviceEntry, "config_entry_id")


def device_config_entry_ids(device: DeviceEntry) -> set[str]:
    """Return the ids of the config entries a device belongs to."""
    if HAS_DEVICE_CONFIG_ENTRY_ID:
        entry_id = getattr(device, "config_entry_id", None)
        return {entry_id} if isinstance(entry_id, str) else set()
    return set(device.config_entries)


class ReferencedTarget(Protocol):
    """The devices and entities Home Assistant finds an action's target to name."""

    referenced: set[str]
    """Entities named directly."""
    indirectly_referenced: set[str]
    """Entities of the named devices, areas, floors and labels."""
    referenced_devices: set[str]
    """Devices named, or in the named areas, floors and labels."""


def _target_helper() -> Any:
    """Return Home Assistant's target helper module; None where there is none."""
    try:
        return importlib.import_module("homeassistant.helpers.target")
    except ImportError:
        return None


TARGET_HELPER: Final[Any] = _target_helper()


def async_extract_referenced(
    hass: HomeAssistant, call: ServiceCall
) -> ReferencedTarget:
    """Return what an action's target names (a group entity is not expanded)."""
    helper = TARGET_HELPER
    if helper is not None and hasattr(helper, "async_extract_referenced_entity_ids"):
        selection = (
            getattr(helper, "TargetSelection", None) or helper.TargetSelectorData
        )
        found: ReferencedTarget = helper.async_extract_referenced_entity_ids(
            hass, selection(call.data), expand_group=False
        )
        return found
    # Only where the target helper is missing (2025.4): read by name, since
    # newer releases no longer have it.
    legacy: Callable[..., ReferencedTarget] = getattr(  # noqa: B009
        service_helper, "async_extract_referenced_entity_ids"
    )
    return legacy(hass, call, expand_group=False)
