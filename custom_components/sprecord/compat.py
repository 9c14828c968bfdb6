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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from homeassistant import config_entries
from homeassistant.helpers.device_registry import DeviceInfo

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
