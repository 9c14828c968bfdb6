"""Event entities of the SpRecord MiniPBX: every call event and every SMS."""

from __future__ import annotations

from collections.abc import Mapping
import json
from typing import Any

from homeassistant.components.event import (
    EventEntity,
    EventEntityDescription,
    EventExtraStoredData,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import restore_state
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    EventType,
    IncomingSmsEvent,
    SpRecordEvent,
    StartupEvent,
)
from .api.clean import clean_field
from .autodial import FINISHED, STOPPED, FollowedTask, results_summary
from .calls import CallChange
from .data import SpRecordConfigEntry
from .entity import SpRecordAutoDialEntity, SpRecordEntity
from .ids import (
    EVENT_KIND_CALL,
    EVENT_KIND_PBX,
    EVENT_KIND_SMS,
    signal_autodial_ended,
    signal_event,
    signal_new_pbx,
)
from .link import Link
from .pbx import Pbx

PARALLEL_UPDATES = 0
EXTRA = "extra"
"""The one attribute that holds the payload fields this integration does not know."""
MAX_EXTRA_FIELDS = 16
MAX_EXTRA_KEY = 64
MAX_EXTRA_VALUE = 1024
"""Characters of an extra field's value as JSON; a longer value is left out."""
CALL_ATTRIBUTES = frozenset(
    {
        # The payloads' own fields (`fields_dict()` of the call events).
        "call_id",
        "call_src",
        "call_dst",
        "trunk",
        "record_id",
        "duration",
        "status",
        "number",
        # The call's details, names from the phonebook.
        "direction",
        "caller",
        "caller_name",
        "called",
        "called_name",
        "line",
        EXTRA,
    }
)
SMS_ATTRIBUTES = frozenset({"sms_src", "text", "trunk", "date", "sender_name", EXTRA})
PBX_ATTRIBUTES = frozenset({EXTRA})
MISSED_CALL = "missed_call"
"""Fired by the call entity after the `call_end` of a missed incoming call."""

CALL = EventEntityDescription(
    key="call",
    translation_key="call",
    event_types=[
        EventType.INCOMING_CALL.value,
        EventType.OUTGOING_CALL.value,
        EventType.START_TALK.value,
        EventType.ANSWER_ELSEWHERE.value,
        EventType.CALL_END.value,
        MISSED_CALL,
    ],
)
SMS = EventEntityDescription(
    key="sms",
    translation_key="sms",
    event_types=[EventType.INCOMING_SMS.value],
)
AUTO_DIAL = EventEntityDescription(
    key="auto_dial",
    translation_key="auto_dial",
    event_types=[FINISHED, STOPPED],
)
PBX = EventEntityDescription(
    key="pbx",
    translation_key="pbx",
    event_types=[EventType.STARTUP.value],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SpRecordConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the call and SMS event entities."""
    coordinator = entry.runtime_data.coordinator
    link = entry.runtime_data.link

    @callback
    def add_pbx(pbx: Pbx) -> None:
        async_add_entities(
            [
                SpRecordCallEvent(pbx, link, CALL),
                SpRecordSmsEvent(pbx, link, SMS),
                SpRecordPbxEvent(pbx, link, PBX),
            ]
        )

    for pbx in coordinator.all_pbxs:
        add_pbx(pbx)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_pbx(entry.entry_id), add_pbx)
    )
    async_add_entities(
        SpRecordAutoDialEvent(autodial.pbx, link, autodial, AUTO_DIAL)
        for autodial in coordinator.autodial.values()
    )


def extra_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return the payload fields the integration does not know, bounded.

    They are kept under one `extra` attribute, never next to the entity's
    own: a field named `entity_picture`, `icon` or `friendly_name` must not
    change how the entity looks. At most `MAX_EXTRA_FIELDS` fields, keys
    cleaned and cut, values whose JSON is longer than `MAX_EXTRA_VALUE` left out.
    """
    kept: dict[str, Any] = {}
    for key, value in extra.items():
        if len(kept) == MAX_EXTRA_FIELDS:
            break
        name = clean_field(str(key), MAX_EXTRA_KEY)
        if not name or name in kept:
            continue
        if len(json.dumps(value, ensure_ascii=False, default=str)) > MAX_EXTRA_VALUE:
            continue
        kept[name] = value
    return kept


class _SpRecordEventEntity(SpRecordEntity, EventEntity):
    """An event entity fed by every event the coordinator takes."""

    _known_attributes: frozenset[str] = frozenset()
    """The attributes its events have; nothing else is shown or restored."""
    _kind: str
    """The kind of events it takes (`ids.EVENT_KIND_*`)."""

    def __init__(
        self, pbx: Pbx, link: Link, description: EventEntityDescription
    ) -> None:
        super().__init__(pbx, link, description, ())

    async def async_added_to_hass(self) -> None:
        """Listen to events as they come."""
        await super().async_added_to_hass()
        signal = signal_event(
            self.link.entry.entry_id, self.pbx.unique_prefix, self._kind
        )
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal, self._event_received)
        )

    @callback
    def _event_received(self, event: SpRecordEvent, change: CallChange | None) -> None:
        """Take an event of the PBX (in the event loop, as it comes)."""
        self._on_event(event, change)

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        raise NotImplementedError

    async def async_get_last_event_data(self) -> EventExtraStoredData | None:
        """Return the event saved before the restart, with its known fields only.

        An older version kept a payload's unknown fields as attributes of
        their own (`entity_picture`, `icon`...): those are not restored.
        """
        data = await super().async_get_last_event_data()
        if data is None or not data.last_event_attributes:
            return data
        attributes = {
            key: value
            for key, value in data.last_event_attributes.items()
            if key in self._known_attributes and key != EXTRA
        }
        extra = data.last_event_attributes.get(EXTRA)
        if isinstance(extra, Mapping) and (kept := extra_fields(extra)):
            attributes[EXTRA] = kept
        return EventExtraStoredData(data.last_event_type, attributes)

    @callback
    def _fire(
        self,
        event_type: str,
        attributes: dict[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Trigger the event with its known attributes, the rest under `extra`."""
        shown = {k: v for k, v in attributes.items() if k in self._known_attributes}
        if extra and (kept := extra_fields(extra)):
            shown[EXTRA] = kept
        self._trigger_event(event_type, shown)
        self.async_write_ha_state()


class SpRecordCallEvent(_SpRecordEventEntity):
    """Every call event, plus `missed_call` for an unanswered incoming call."""

    _known_attributes = CALL_ATTRIBUTES
    _kind = EVENT_KIND_CALL

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if not isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
            return
        attributes = event.fields_dict()
        if change is not None:
            call = change.call
            attributes.update(
                direction=call.direction.value,
                caller=call.caller,
                caller_name=call.caller_name,
                called=call.called,
                called_name=call.called_name,
                line=call.trunk,
            )
        self._fire(event.type, attributes, event.extra)
        if change is not None and change.missed:
            self._fire(MISSED_CALL, attributes, event.extra)


class SpRecordSmsEvent(_SpRecordEventEntity):
    """Every incoming SMS, with its text for automations, never kept.

    The text is not recorded, and the entity is not restored: Home Assistant
    keeps a restored entity's state, attributes and all, in
    `.storage/core.restore_state`. After a restart it is `unknown` until
    the next SMS (the last SMS sensor keeps who wrote and when).
    """

    _known_attributes = SMS_ATTRIBUTES
    _kind = EVENT_KIND_SMS
    _unrecorded_attributes = frozenset({"text"})

    async def async_added_to_hass(self) -> None:
        """Listen to events, and leave Home Assistant's restore state.

        Both of its tables: `entities` would save the state at each dump, and
        `last_states` (what an older version saved, text and all) would be
        saved again whenever the entity is gone, say while the entry unloads.
        """
        await super().async_added_to_hass()
        restored = restore_state.async_get(self.hass)
        restored.entities.pop(self.entity_id, None)
        restored.last_states.pop(self.entity_id, None)

    async def async_internal_will_remove_from_hass(self) -> None:
        """Go without saving the last SMS for a later restore."""
        # RestoreEntity's own would save the state (the text) to restore it.
        await super(RestoreEntity, self).async_internal_will_remove_from_hass()

    async def async_get_last_event_data(self) -> EventExtraStoredData | None:
        """Return nothing: an SMS saved by an older version is not shown again."""
        return None

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if isinstance(event, IncomingSmsEvent):
            sms = self.pbx.last_sms
            sender_name = sms.sender_name if sms is not None else None
            self._fire(
                event.type,
                {**event.fields_dict(), "sender_name": sender_name},
                event.extra,
            )


class SpRecordPbxEvent(_SpRecordEventEntity):
    """The PBX itself: it was switched on."""

    _known_attributes = PBX_ATTRIBUTES
    _kind = EVENT_KIND_PBX

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if isinstance(event, StartupEvent):
            self._fire(event.type, {}, event.extra)


class SpRecordAutoDialEvent(SpRecordAutoDialEntity, EventEntity):
    """An auto-dial task Home Assistant started ended: who answered, who not."""

    async def async_added_to_hass(self) -> None:
        """Listen for tasks that end."""
        await super().async_added_to_hass()
        signal = signal_autodial_ended(self.link.entry.entry_id, self.pbx.unique_prefix)
        self.async_on_remove(async_dispatcher_connect(self.hass, signal, self._ended))

    @callback
    def _ended(self, how: str, task: FollowedTask) -> None:
        self._trigger_event(how, {**task.as_dict(), **results_summary(task.results)})
        self.async_write_ha_state()
