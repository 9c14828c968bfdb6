"""Logbook descriptions of `sprecord_event`, in the user's language."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.translation import async_get_cached_translations

from .const import DOMAIN, EVENT_SPRECORD

_EVENT_NAME = (
    "component.sprecord.entity.event.{entity}.state_attributes.event_type.state.{type}"
)
_STATUS_NAME = "component.sprecord.entity.sensor.last_call_status.state.{status}"
_ENTITY_OF_TYPE = {"incoming_sms": "sms", "startup": "pbx"}
_NUMBER_KEYS = ("call_src", "sms_src", "number", "trunk")
_NUMBER_KEYS_OUTGOING = ("call_dst", "trunk")
"""An outgoing call is shown by the number called, not the extension."""
_NAME_OF = {
    "call_src": "caller_name",
    "call_dst": "called_name",
    "sms_src": "sender_name",
}


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe `sprecord_event` in the logbook."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        data: Mapping[str, Any] = event.data
        event_type = str(data.get("event_type", ""))
        payload = data.get("payload") or {}
        translations = async_get_cached_translations(
            hass, hass.config.language, "entity", DOMAIN
        )
        entity = _ENTITY_OF_TYPE.get(event_type, "call")
        name = translations.get(
            _EVENT_NAME.format(entity=entity, type=event_type), event_type
        )
        keys = _NUMBER_KEYS_OUTGOING if event_type == "outgoing_call" else _NUMBER_KEYS
        details = [
            # The phonebook's name where it knows the number.
            str(data.get(_NAME_OF.get(key, "")) or payload[key])
            for key in keys
            if payload.get(key) not in (None, "")
        ]
        if status := payload.get("status"):
            details.insert(
                0, translations.get(_STATUS_NAME.format(status=status), status)
            )
        message = f"{name}: {', '.join(details)}" if details else name
        return {
            LOGBOOK_ENTRY_NAME: _pbx_name(hass, data),
            LOGBOOK_ENTRY_MESSAGE: message,
        }

    async_describe_event(DOMAIN, EVENT_SPRECORD, describe)


def _pbx_name(hass: HomeAssistant, data: Mapping[str, Any]) -> str:
    """Return the name of the PBX that sent an event, as the user sees it."""
    device_id = data.get("device_id")
    if device_id and (device := dr.async_get(hass).async_get(str(device_id))):
        return device.name_by_user or device.name or "SpRecord MiniPBX"
    entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
    return entry.title if entry else "SpRecord MiniPBX"
