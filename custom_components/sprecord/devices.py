"""The devices of a PBX and its lines in Home Assistant's device registry."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from .compat import via_device_info
from .const import DOMAIN, MANUFACTURER, MODEL
from .ids import LINE_MARK
from .pbx import Pbx


def pbx_device_info(pbx: Pbx) -> DeviceInfo:
    """Return the device info of a PBX."""
    return DeviceInfo(
        identifiers={pbx.identifier},
        manufacturer=MANUFACTURER,
        model=MODEL,
        name=pbx.name,
    )


def line_device_info(pbx: Pbx, trunk: str) -> DeviceInfo:
    """Return the device info of one line (trunk), under its PBX."""
    # The first PBX's lines keep their names; another PBX's name theirs too,
    # so that two offices' GSM1 can be told apart.
    info = DeviceInfo(
        identifiers={pbx.line_identifier(trunk)},
        manufacturer=MANUFACTURER,
        model="GSM line",
        translation_key="line" if pbx.primary else "pbx_line",
        translation_placeholders={"line": trunk}
        if pbx.primary
        else {"line": trunk, "pbx": pbx.name},
    )
    info.update(via_device_info(pbx.identifier, pbx.device_registry_id))
    return info


@callback
def async_register_device(hass: HomeAssistant, entry_id: str, pbx: Pbx) -> None:
    """Create (or find) the PBX's device; the PBX learns its registry id."""
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry_id, **pbx_device_info(pbx)
    )
    pbx.device_registry_id = device.id


@callback
def async_remove_line_devices(hass: HomeAssistant, entry_id: str, prefix: str) -> None:
    """Remove the line devices (and so their entities) of a removed PBX.

    Home Assistant only unlinks the sub-devices of a removed device.
    """
    registry = dr.async_get(hass)
    line_prefix = f"{prefix}{LINE_MARK}"
    for device in dr.async_entries_for_config_entry(registry, entry_id):
        if any(
            domain == DOMAIN and value.startswith(line_prefix)
            for domain, value in device.identifiers
        ):
            registry.async_remove_device(device.id)
