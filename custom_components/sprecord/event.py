"""Event entities of the SpRecord MiniPBX: every call event and every SMS."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import (
    ATTR_EVENT_TYPE,
    ATTR_EVENT_TYPES,
    EventEntity,
    EventEntityDescription,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    CallEvent,
    EventType,
    IncomingSmsEvent,
    SpRecordEvent,
    StartupEvent,
)
from .autodial import FINISHED, STOPPED, FollowedTask, results_summary
from .calls import CallChange
from .coordinator import SpRecordConfigEntry
from .entity import SpRecordAutoDialEntity, SpRecordEntity
from .pbx import Pbx

PARALLEL_UPDATES = 0
_RESERVED = frozenset({ATTR_EVENT_TYPE, ATTR_EVENT_TYPES})
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

    @callback
    def add_pbx(pbx: Pbx) -> None:
        async_add_entities(
            [
                SpRecordCallEvent(pbx, CALL),
                SpRecordSmsEvent(pbx, SMS),
                SpRecordPbxEvent(pbx, PBX),
            ]
        )

    for pbx in coordinator.all_pbxs:
        add_pbx(pbx)
    entry.async_on_unload(coordinator.async_add_pbx_listener(add_pbx))
    async_add_entities(
        SpRecordAutoDialEvent(autodial.pbx, autodial, AUTO_DIAL)
        for autodial in coordinator.autodial.values()
    )


class _SpRecordEventEntity(SpRecordEntity, EventEntity):
    """An event entity fed by every event the coordinator takes."""

    def __init__(self, pbx: Pbx, description: EventEntityDescription) -> None:
        super().__init__(pbx, description, ())

    async def async_added_to_hass(self) -> None:
        """Listen to events as they come."""
        await super().async_added_to_hass()
        self.async_on_remove(self.pbx.async_add_event_listener(self._on_event))

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        raise NotImplementedError

    @callback
    def _fire(self, event_type: str, attributes: dict[str, Any]) -> None:
        # A payload field named like the entity's own attributes (the PBX may
        # add fields) must not overwrite them.
        extra = {k: v for k, v in attributes.items() if k not in _RESERVED}
        self._trigger_event(event_type, extra)
        self.async_write_ha_state()


class SpRecordCallEvent(_SpRecordEventEntity):
    """Every call event, plus `missed_call` for an unanswered incoming call."""

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if not isinstance(event, CallEvent | CallEndEvent | AnswerElsewhereEvent):
            return
        attributes = event.payload_dict()
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
        self._fire(event.type, attributes)
        if change is not None and change.missed:
            self._fire(MISSED_CALL, attributes)


class SpRecordSmsEvent(_SpRecordEventEntity):
    """Every incoming SMS."""

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if isinstance(event, IncomingSmsEvent):
            sms = self.pbx.last_sms
            sender_name = sms.sender_name if sms is not None else None
            self._fire(event.type, {**event.payload_dict(), "sender_name": sender_name})


class SpRecordPbxEvent(_SpRecordEventEntity):
    """The PBX itself: it was switched on."""

    @callback
    def _on_event(self, event: SpRecordEvent, change: CallChange | None) -> None:
        if isinstance(event, StartupEvent):
            self._fire(event.type, {})


class SpRecordAutoDialEvent(SpRecordAutoDialEntity, EventEntity):
    """An auto-dial task Home Assistant started ended: who answered, who not."""

    async def async_added_to_hass(self) -> None:
        """Listen for tasks that end."""
        await super().async_added_to_hass()
        self.async_on_remove(self.autodial.async_add_end_listener(self._ended))

    @callback
    def _ended(self, how: str, task: FollowedTask) -> None:
        self._trigger_event(how, {**task.as_dict(), **results_summary(task.results)})
        self.async_write_ha_state()
