"""Sensors of the SpRecord MiniPBX: call state, lines, last call, last SMS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import RecordCallStatus
from .calls import Call, CallState
from .data import SpRecordConfigEntry
from .entity import SpRecordAutoDialEntity, SpRecordEntity
from .ids import (
    TOPIC_AUTODIAL,
    TOPIC_CALLS,
    TOPIC_ENDED,
    TOPIC_SMS,
    line_topic,
    signal_new_line,
    signal_new_pbx,
)
from .link import Link
from .pbx import Pbx

PARALLEL_UPDATES = 0

CALL_STATES = [state.value for state in CallState]
CALL_STATUSES = [status.value for status in RecordCallStatus]


@dataclass(frozen=True, kw_only=True)
class SpRecordSensorDescription(SensorEntityDescription):
    """A sensor of the PBX: where its value comes from, when it changes."""

    value_fn: Callable[[Pbx], Any]
    attrs_fn: Callable[[Pbx], dict[str, Any] | None] = lambda _: None
    topics: tuple[str, ...]


def _call_attributes(call: Call | None) -> dict[str, Any]:
    """Return the attributes that describe one call."""
    if call is None:
        return {
            "caller": None,
            "caller_name": None,
            "called": None,
            "called_name": None,
            "line": None,
            "call_id": None,
            "direction": None,
        }
    return {
        "caller": call.caller,
        "caller_name": call.caller_name,
        "called": call.called,
        "called_name": call.called_name,
        "line": call.trunk,
        "call_id": call.call_id,
        "direction": call.direction.value,
    }


def _call_state_attributes(pbx: Pbx) -> dict[str, Any]:
    tracker = pbx.tracker
    return {
        **_call_attributes(tracker.current),
        "answered_by": tracker.current.answered_by if tracker.current else None,
        "active_calls": [
            {
                "call_id": call.call_id,
                "state": call.state.value,
                "direction": call.direction.value,
                "caller": call.caller,
                "caller_name": call.caller_name,
                "called": call.called,
                "called_name": call.called_name,
                "line": call.trunk,
            }
            for call in reversed(tracker.active.values())
        ],
    }


def _last_call_status(pbx: Pbx) -> str | None:
    call = pbx.tracker.last_call
    if call is None or call.status is None or not call.status.is_known:
        return None
    return call.status.value


def _last_call_attributes(pbx: Pbx) -> dict[str, Any]:
    call = pbx.tracker.last_call
    return {
        **_call_attributes(call),
        "status": call.status.value if call and call.status else None,
        "record_id": call.record_id if call else None,
        "ended": call.ended.isoformat() if call and call.ended else None,
    }


def _missed_attributes(pbx: Pbx) -> dict[str, Any]:
    call = pbx.tracker.last_missed
    return {
        "last_caller": call.caller if call else None,
        "last_caller_name": call.caller_name if call else None,
        "last_line": call.trunk if call else None,
        "last_called": call.called if call else None,
        "last_called_name": call.called_name if call else None,
        "last_time": call.ended.isoformat() if call and call.ended else None,
    }


def _sms_received(pbx: Pbx) -> datetime | None:
    """Return when the last SMS came: the state, never its text (recorded)."""
    sms = pbx.last_sms
    return None if sms is None else sms.received


def _sms_attributes(pbx: Pbx) -> dict[str, Any]:
    sms = pbx.last_sms
    if sms is None:
        return {
            "text": None,
            "sender": None,
            "sender_name": None,
            "line": None,
            "date": None,
        }
    return sms.as_dict()


PBX_SENSORS: tuple[SpRecordSensorDescription, ...] = (
    SpRecordSensorDescription(
        key="call_state",
        translation_key="call_state",
        device_class=SensorDeviceClass.ENUM,
        options=CALL_STATES,
        value_fn=lambda c: c.tracker.state.value,
        attrs_fn=_call_state_attributes,
        topics=(TOPIC_CALLS,),
    ),
    SpRecordSensorDescription(
        key="active_calls",
        translation_key="active_calls",
        state_class=SensorStateClass.MEASUREMENT,
        # The call state lists the active calls; a count of them is for few.
        entity_registry_enabled_default=False,
        value_fn=lambda c: len(c.tracker.active),
        topics=(TOPIC_CALLS,),
    ),
    SpRecordSensorDescription(
        key="last_call_status",
        translation_key="last_call_status",
        device_class=SensorDeviceClass.ENUM,
        options=CALL_STATUSES,
        value_fn=_last_call_status,
        attrs_fn=_last_call_attributes,
        topics=(TOPIC_ENDED,),
    ),
    SpRecordSensorDescription(
        key="last_call_duration",
        translation_key="last_call_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.SECONDS,
        value_fn=lambda c: (
            c.tracker.last_call.duration if c.tracker.last_call else None
        ),
        topics=(TOPIC_ENDED,),
    ),
    SpRecordSensorDescription(
        key="missed_calls",
        translation_key="missed_calls",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.tracker.missed_count,
        attrs_fn=_missed_attributes,
        topics=(TOPIC_ENDED,),
    ),
    SpRecordSensorDescription(
        # A unit (translated: "calls"), so the logbook leaves its state out:
        # the list's own entries are logged, one line per call.
        key="recent_calls",
        translation_key="recent_calls",
        value_fn=lambda c: len(c.recent_calls),
        attrs_fn=lambda c: {"calls": list(c.recent_calls)},
        topics=(TOPIC_ENDED,),
    ),
    SpRecordSensorDescription(
        key="last_sms",
        translation_key="last_sms",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_sms_received,
        attrs_fn=_sms_attributes,
        topics=(TOPIC_SMS,),
    ),
)

LINE_STATE = SensorEntityDescription(
    key="line_state",
    translation_key="line_state",
    device_class=SensorDeviceClass.ENUM,
    options=CALL_STATES,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SpRecordConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each PBX's sensors, and a line's sensor whenever a line appears."""
    coordinator = entry.runtime_data.coordinator
    link = entry.runtime_data.link

    @callback
    def add_pbx(pbx: Pbx) -> None:
        async_add_entities(
            SpRecordSensor(pbx, link, description, description.topics)
            for description in PBX_SENSORS
        )

        for trunk in pbx.tracker.lines:
            add_line(pbx, trunk)

    @callback
    def add_line(pbx: Pbx, trunk: str) -> None:
        async_add_entities([SpRecordLineSensor(pbx, link, trunk)])

    for pbx in coordinator.all_pbxs:
        add_pbx(pbx)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_pbx(entry.entry_id), add_pbx)
    )
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_line(entry.entry_id), add_line)
    )
    async_add_entities(
        SpRecordAutoDialSensor(
            autodial.pbx, link, autodial, AUTO_DIAL, (TOPIC_AUTODIAL,)
        )
        for autodial in coordinator.autodial.values()
    )


class SpRecordSensor(SpRecordEntity, SensorEntity):
    """A sensor of the PBX."""

    entity_description: SpRecordSensorDescription
    # The call list is bounded but changes with every call: the recorder
    # keeps the state, not 20 calls in each row of attribute history. An
    # SMS's text is never written to the database.
    _unrecorded_attributes = frozenset({"calls", "text"})

    @property
    def native_value(self) -> Any:
        """Return the sensor's value."""
        return self.entity_description.value_fn(self.pbx)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the details behind the value."""
        return self.entity_description.attrs_fn(self.pbx)


class SpRecordLineSensor(SpRecordEntity, SensorEntity):
    """The state of one line (trunk): idle, ringing, dialing or talking."""

    def __init__(self, pbx: Pbx, link: Link, trunk: str) -> None:
        """Describe the sensor of `trunk`."""
        super().__init__(pbx, link, LINE_STATE, (line_topic(trunk),), line=trunk)
        self.trunk = trunk

    @property
    def native_value(self) -> str:
        """Return the state of the line's most recent call."""
        return self.pbx.tracker.line_state(self.trunk).value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the line's current call."""
        call = self.pbx.tracker.line_call(self.trunk)
        attributes = _call_attributes(call)
        del attributes["line"]
        return attributes


AUTO_DIAL = SensorEntityDescription(
    key="auto_dial",
    translation_key="auto_dial",
    native_unit_of_measurement=PERCENTAGE,
)


class SpRecordAutoDialSensor(SpRecordAutoDialEntity, SensorEntity):
    """How far the auto-dial task Home Assistant started last has come."""

    @property
    def native_value(self) -> int | None:
        """Return the share of the task's numbers done, in percent."""
        task = self.autodial.current
        return task.progress if task else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the task, its state and its counts."""
        task = self.autodial.current
        if task is None:
            return {"task": None, "task_id": None, "state": None}
        return task.as_dict()
