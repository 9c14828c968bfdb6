"""Logbook: one line per finished call and per SMS, in Home Assistant's language.

Only `sprecord_log` is described (one event per finished call, one per SMS,
never its text): the steps of a call (`sprecord_event`) stay out of the
logbook, so it reads like a phone's call list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import re
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.translation import async_get_cached_translations

from .api.clean import MAX_LINE_NAME, MAX_NUMBER, clean_field
from .calllog import KIND_SMS, RESULT_MISSED, RESULT_UNKNOWN
from .const import DOMAIN, EVENT_SPRECORD_LOG
from .phonebook import MAX_NAME_LENGTH

_TEXT = "component.sprecord.entity.sensor.recent_calls.state_attributes.calls.state.{}"
_STATUS = "component.sprecord.entity.sensor.last_call_status.state.{}"
_ENGLISH = {
    "incoming": "Incoming call from {who} on {line}",
    "outgoing": "Outgoing call to {who} on {line}",
    "missed": "Missed call from {who} on {line}",
    "sms": "SMS from {who} on {line}",
    "answered_by": "answered by {extension}",
    "no_end": "its end was not received",
    "withheld": "a withheld number",
    "unknown_line": "an unknown line",
    "minutes_seconds": "{minutes} min {seconds} s",
    "seconds": "{seconds} s",
}
"""The texts when a translation is missing (they are in strings.json)."""


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe `sprecord_log` in the logbook."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        translations = async_get_cached_translations(
            hass, hass.config.language, "entity", DOMAIN
        )

        def text(key: str, **values: Any) -> str:
            template = translations.get(_TEXT.format(key)) or _ENGLISH[key]
            return template.format(**values)

        described = {
            LOGBOOK_ENTRY_NAME: _pbx_name(hass, event.data),
            LOGBOOK_ENTRY_MESSAGE: describe_entry(event.data, text, translations),
        }
        if entity_id := event.data.get("entity_id"):
            described[LOGBOOK_ENTRY_ENTITY_ID] = str(entity_id)
        return described

    async_describe_event(DOMAIN, EVENT_SPRECORD_LOG, describe)


def describe_entry(
    data: Mapping[str, Any],
    text: Callable[..., str],
    translations: Mapping[str, str],
) -> str:
    """Return the line of one call or SMS of the call list."""
    who = shown_party(data.get("name"), data.get("number")) or text("withheld")
    line = _shown(data.get("line"), MAX_LINE_NAME) or text("unknown_line")
    if data.get("kind") == KIND_SMS:
        return text("sms", who=who, line=line)
    result = data.get("result")
    if result == RESULT_MISSED:
        return text("missed", who=who, line=line)
    outgoing = data.get("direction") == "outgoing"
    parts = [text("outgoing" if outgoing else "incoming", who=who, line=line)]
    if answered_by := shown_party(
        data.get("answered_by_name"), data.get("answered_by")
    ):
        parts.append(text("answered_by", extension=answered_by))
    if result == RESULT_UNKNOWN:
        parts.append(text("no_end"))
    elif result != "success" and result:
        parts.append(translations.get(_STATUS.format(result), str(result)))
    duration = data.get("duration")
    if result == "success" and isinstance(duration, int) and duration > 0:
        minutes, seconds = divmod(duration, 60)
        parts.append(
            text("minutes_seconds", minutes=minutes, seconds=seconds)
            if minutes
            else text("seconds", seconds=seconds)
        )
    return ", ".join(parts)


NUMBER_LIKE = re.compile(r"[-+0-9 ().#*]+")
"""What a phone number may be written with; anything else is a sender id."""


def shown_party(name: Any, number: Any) -> str | None:
    """Return how a caller, a called number or an SMS sender is shown.

    A name from the phonebook comes with its number, `Mum (+79161234567)`;
    a number without a name is shown as it is, and a sender id with letters
    in quotes (`"Mum"`), so no sender id can pass for the contact Mum. Both lose
    control and bidi characters and are bounded. None when neither is known.
    """
    shown_number = _shown(number, MAX_NUMBER)
    if shown_name := _shown(name, MAX_NAME_LENGTH):
        return f"{shown_name} ({shown_number})" if shown_number else shown_name
    if not shown_number or NUMBER_LIKE.fullmatch(shown_number):
        return shown_number or None
    # A sender id of letters is quoted: "Mum (+79161234567)" sent as a sender
    # id must not look like the contact Mum shown with its number.
    return f'"{shown_number}"'


def _shown(value: Any, limit: int) -> str:
    """Return an outside value as text to show: one clean, bounded line."""
    if value is None:
        return ""
    return clean_field(str(value), limit).strip()


def _pbx_name(hass: HomeAssistant, data: Mapping[str, Any]) -> str:
    """Return the name of the PBX of an entry, as the user sees it."""
    device_id = data.get("device_id")
    if device_id and (device := dr.async_get(hass).async_get(str(device_id))):
        return device.name_by_user or device.name or "SpRecord MiniPBX"
    entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
    return entry.title if entry else "SpRecord MiniPBX"
