"""The automation blueprints: they load, make valid automations, and notify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any

from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    async_validate_config_item,
)
from homeassistant.components.blueprint import models
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    Event,
    HomeAssistant,
    ServiceCall,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD, MODEL
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator
from emulator.server import make_device_id

from .helpers import wait_until
from .test_contacts import add_contact
from .test_states import call, end

BLUEPRINT_DIR = (
    Path(__file__).resolve().parent.parent / "blueprints" / "automation" / "sprecord"
)
BLUEPRINTS = sorted(BLUEPRINT_DIR.glob("*.yaml"))
SOURCE_URL = (
    "https://github.com/sprecord-ha/sprecord-minipbx/blob/main/"
    "blueprints/automation/sprecord/{}"
)
CALL_ENTITY = "event.sprecord_minipbx_call"
SMS_ENTITY = "event.sprecord_minipbx_sms"
SECOND_SMS_ENTITY = "event.sprecord_minipbx_2_sms"
EXTRA_ACTION = [{"action": "test.extra", "data": {"note": "from {{ call.caller }}"}}]
# Inputs a user would give; the others keep their defaults.
EXAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    "incoming_call_notify.yaml": {
        "call_event": CALL_ENTITY,
        "notify_service": "notify.test",
    },
    "missed_call_notify.yaml": {
        "call_event": CALL_ENTITY,
        "notify_service": "notify.test",
    },
    "forward_sms.yaml": {"sms_event": [SMS_ENTITY], "notify_service": "notify.test"},
    "auto_dial.yaml": {
        "when": [{"trigger": "state", "entity_id": "binary_sensor.alarm", "to": "on"}],
        "calling_pbx": "pbx-device-id",
        "auto_dial_event": "event.sprecord_minipbx_auto_dial",
        "task": "Тревога",
        "numbers": ["+79161234567", "+79031234567"],
        "notify_service": "notify.test",
    },
}
FIRST_ACTION = {"auto_dial.yaml": "sprecord.start_auto_dial"}
"""The first action of a blueprint that does not notify first."""
CALL_EVENT_TYPES = [
    "incoming_call",
    "outgoing_call",
    "start_talk",
    "answer_elsewhere",
    "call_end",
    "missed_call",
]


def load(path: Path) -> models.Blueprint:
    """Load a blueprint file as Home Assistant does (with `!input` tags)."""
    data = yaml_util.load_yaml_dict(path)
    return models.Blueprint(
        data,
        path=path.name,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def substitute(path: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """Return the automation a blueprint makes with `inputs`."""
    blueprint_inputs = models.BlueprintInputs(
        load(path),
        {"use_blueprint": {"path": f"sprecord/{path.name}", "input": inputs}},
    )
    blueprint_inputs.validate()
    return blueprint_inputs.async_substitute()


def test_every_blueprint_is_there() -> None:
    assert {path.name for path in BLUEPRINTS} == set(EXAMPLE_INPUTS)


@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda path: path.name)
def test_blueprint_loads(path: Path) -> None:
    blueprint = load(path)
    metadata = blueprint.metadata
    assert blueprint.domain == "automation"
    assert blueprint.validate() is None  # this Home Assistant is new enough
    assert metadata["source_url"] == SOURCE_URL.format(path.name)
    assert metadata["homeassistant"]["min_version"] == "2025.4.0"
    assert metadata["description"]
    # Every input is used, and every `!input` is declared (Blueprint checks).
    assert yaml_util.extract_inputs(blueprint.data) == set(blueprint.inputs)
    # The modern syntax, which Home Assistant 2025.4 reads in blueprints.
    assert {"triggers", "actions"} <= set(blueprint.data)
    assert not {"trigger", "condition", "action"} & set(blueprint.data)
    for name, spec in blueprint.inputs.items():
        assert spec.get("name"), name
        assert "selector" in spec, name
    if "call_event" in blueprint.inputs:
        selector = blueprint.inputs["call_event"]["selector"]["entity"]
        assert selector["filter"] == [{"domain": ["event"], "integration": "sprecord"}]
    if "pbx_device" in blueprint.inputs:
        # Optional; only PBX devices, not their lines (also the integration's).
        spec = blueprint.inputs["pbx_device"]
        assert spec["default"] == ""
        selector = spec["selector"]["device"]
        assert selector["filter"] == [{"integration": "sprecord", "model": MODEL}]
        assert not selector.get("multiple")


@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda path: path.name)
async def test_blueprint_makes_a_valid_automation(
    hass: HomeAssistant, path: Path
) -> None:
    inputs = EXAMPLE_INPUTS[path.name]
    for extra in ({}, {"extra_actions": EXTRA_ACTION}):
        config = substitute(path, {**inputs, **extra})
        assert "blueprint" not in config
        # Raises if a trigger, condition, template or action is invalid.
        validated = await async_validate_config_item(hass, "test", config)
        assert validated is not None
        first = FIRST_ACTION.get(path.name, "notify.test")
        assert validated["actions"][0]["action"] == first


def test_a_missing_input_is_refused() -> None:
    path = BLUEPRINT_DIR / "incoming_call_notify.yaml"
    with pytest.raises(models.MissingInput):
        substitute(path, {"notify_service": "notify.test"})


def _copy_blueprints(target: Path) -> None:
    target.mkdir(parents=True)
    for path in BLUEPRINTS:
        shutil.copy(path, target / path.name)


async def _set_up_automations(
    hass: HomeAssistant, tmp_path: Path, automations: list[dict[str, Any]]
) -> None:
    """Set up `automation` with blueprints found in a fresh config folder."""
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints", "automation", "sprecord"))
    await hass.async_add_executor_job(_copy_blueprints, target)
    assert await async_setup_component(hass, "automation", {"automation": automations})
    await hass.async_block_till_done()


def _use(name: str, **inputs: Any) -> dict[str, Any]:
    return {
        "alias": name,
        "use_blueprint": {
            "path": f"sprecord/{name}",
            "input": {**EXAMPLE_INPUTS[name], **inputs},
        },
    }


def _fire_call_event(hass: HomeAssistant, when: str, **attributes: Any) -> None:
    """Write the call event entity's state as the integration does."""
    hass.states.async_set(
        CALL_ENTITY, when, {"event_types": CALL_EVENT_TYPES, **attributes}
    )


def _messages(calls: list[ServiceCall]) -> list[str]:
    return [c.data["message"] for c in calls]


async def test_incoming_call_notifies(hass: HomeAssistant, tmp_path: Path) -> None:
    notify = async_mock_service(hass, "notify", "test")
    extra = async_mock_service(hass, "test", "extra")
    _fire_call_event(hass, "unknown")
    await _set_up_automations(
        hass,
        tmp_path,
        [_use("incoming_call_notify.yaml", extra_actions=EXTRA_ACTION)],
    )
    incoming = {
        "event_type": "incoming_call",
        "call_id": "8",
        "call_src": "+79161234567",
        "call_dst": "101",
        "trunk": "GSM1",
        "direction": "incoming",
        "caller": "+79161234567",
        "caller_name": None,
        "called": "101",
        "called_name": None,
        "line": "GSM1",
    }
    _fire_call_event(hass, "2026-11-27T09:00:00.000+00:00", **incoming)
    await hass.async_block_till_done()
    assert _messages(notify) == ["Call from +79161234567 on line GSM1"]
    assert notify[0].data["title"] == "Incoming call"
    assert [c.data["note"] for c in extra] == ["from +79161234567"]

    # Other call events do not notify, nor does a change of attributes only.
    _fire_call_event(
        hass,
        "2026-11-27T09:00:05.000+00:00",
        **{**incoming, "event_type": "start_talk"},
    )
    _fire_call_event(
        hass, "2026-11-27T09:00:05.000+00:00", **{**incoming, "event_type": "call_end"}
    )
    # The entity coming back after a restart or reload is not a new call.
    hass.states.async_set(CALL_ENTITY, "unavailable")
    _fire_call_event(hass, "2026-11-27T09:00:00.000+00:00", **incoming)
    await hass.async_block_till_done()
    assert len(notify) == 1

    # The next call notifies again, though `event_type` did not change; the
    # payload's own fields stand in for missing call details.
    _fire_call_event(
        hass,
        "2026-11-27T09:01:00.000+00:00",
        event_type="incoming_call",
        call_src="+74951234567",
        trunk="GSM2",
    )
    await hass.async_block_till_done()
    assert _messages(notify)[1:] == ["Call from +74951234567 on line GSM2"]

    # A second call in the same millisecond, on the other line, notifies too.
    _fire_call_event(
        hass,
        "2026-11-27T09:01:00.000+00:00",
        **{**incoming, "call_id": "9", "caller": "+79990001122"},
    )
    await hass.async_block_till_done()
    assert _messages(notify)[2:] == ["Call from +79990001122 on line GSM1"]


async def test_missed_call_notifies(hass: HomeAssistant, tmp_path: Path) -> None:
    notify = async_mock_service(hass, "notify", "test")
    _fire_call_event(hass, "unknown")
    await _set_up_automations(hass, tmp_path, [_use("missed_call_notify.yaml")])
    details = {
        "caller": "+79161234567",
        "caller_name": None,
        "called": "101",
        "called_name": None,
        "line": "GSM2",
    }
    _fire_call_event(
        hass, "2026-11-27T09:05:00.000+00:00", event_type="call_end", **details
    )
    await hass.async_block_till_done()
    assert notify == []
    # In the same millisecond as its `call_end`, as the integration fires it.
    _fire_call_event(
        hass,
        "2026-11-27T09:05:00.000+00:00",
        event_type="missed_call",
        status="no_answer",
        **details,
    )
    await hass.async_block_till_done()
    local = dt_util.as_local(dt_util.parse_datetime("2026-11-27T09:05:00+00:00"))
    assert _messages(notify) == [
        f"Missed call from +79161234567 on line GSM2 at {local:%H:%M}"
    ]
    assert notify[0].data["title"] == "Missed call"

    # Renaming the entity is not another missed call.
    _fire_call_event(
        hass,
        "2026-11-27T09:05:00.000+00:00",
        event_type="missed_call",
        status="no_answer",
        friendly_name="Office calls",
        **details,
    )
    await hass.async_block_till_done()
    assert len(notify) == 1


def _fire_sms_event(
    hass: HomeAssistant, when: str, entity_id: str = SMS_ENTITY, **attributes: Any
) -> None:
    """Write an SMS event entity's state as the integration does."""
    hass.states.async_set(
        entity_id,
        when,
        {"event_types": ["incoming_sms"], "event_type": "incoming_sms", **attributes},
    )


async def test_sms_is_forwarded(hass: HomeAssistant, tmp_path: Path) -> None:
    notify = async_mock_service(hass, "notify", "test")
    other = async_mock_service(hass, "notify", "other")
    other_pbx = "event.sprecord_minipbx_2_sms"
    hass.states.async_set(SMS_ENTITY, "unknown")
    hass.states.async_set(other_pbx, "unknown")
    await _set_up_automations(
        hass,
        tmp_path,
        [
            _use("forward_sms.yaml", sms_event=[SMS_ENTITY, other_pbx]),
            _use(
                "forward_sms.yaml",
                notify_service="notify.other",
                message="{{ sms.sender }}: {{ sms.text }}",
            ),
        ],
    )
    sms = {"sms_src": "OZON", "text": "Ваш заказ доставлен", "trunk": "GSM1"}
    _fire_sms_event(hass, "2026-11-27T09:00:00.000+00:00", **sms)
    _fire_sms_event(hass, "2026-11-27T09:00:00.000+00:00", other_pbx, **sms)
    _fire_call_event(hass, "2026-11-27T09:00:00.000+00:00", event_type="incoming_call")
    await hass.async_block_till_done()
    assert _messages(notify) == ["Ваш заказ доставлен (line GSM1)"] * 2
    assert notify[0].data["title"] == 'SMS from "OZON"'  # a sender id, quoted
    assert _messages(other) == ["OZON: Ваш заказ доставлен"]

    # A number stays text, quotes and new lines stay as they were; a second
    # SMS in the same millisecond is forwarded too, a rename is not an SMS.
    sms = {"sms_src": "+79161234567", "text": "0123456", "trunk": "GSM2"}
    _fire_sms_event(hass, "2026-11-27T09:01:00.000+00:00", **sms)
    sms = {"sms_src": "900", "text": "Code '42'\n\"ok\"", "trunk": "GSM1"}
    _fire_sms_event(hass, "2026-11-27T09:01:00.000+00:00", **sms)
    _fire_sms_event(
        hass, "2026-11-27T09:01:00.000+00:00", friendly_name="Office SMS", **sms
    )
    # The entity coming back after a restart or reload is not an SMS.
    hass.states.async_set(SMS_ENTITY, "unavailable")
    _fire_sms_event(hass, "2026-11-27T09:01:00.000+00:00", **sms)
    await hass.async_block_till_done()
    assert _messages(notify)[2:] == [
        "0123456 (line GSM2)",
        "Code '42'\n\"ok\" (line GSM1)",
    ]
    assert [c.data["title"] for c in notify[2:]] == [
        "SMS from +79161234567",
        "SMS from 900",
    ]


async def test_a_named_caller_shows_by_name(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """With a name from the phonebook, the messages name; the number stays."""
    notify = async_mock_service(hass, "notify", "test")
    _fire_call_event(hass, "unknown")
    await _set_up_automations(
        hass,
        tmp_path,
        [
            _use("incoming_call_notify.yaml"),
            _use("missed_call_notify.yaml"),
            _use("forward_sms.yaml"),
            _use(
                "incoming_call_notify.yaml",
                notify_service="notify.test",
                title="Звонок: {{ call.caller }}",
                message="{{ call.caller_name }} → {{ call.called_name }}",
            ),
        ],
    )
    # As the event entity has them: the PBX's payload, then the call's
    # details, names included. A name keeps its quotes and stays text.
    details = {
        "call_id": "8",
        "call_src": "+79161234567",
        "call_dst": "101",
        "trunk": "GSM1",
        "direction": "incoming",
        "caller": "+79161234567",
        "caller_name": 'ООО «Д\'Артаньян и "Ко"»',
        "called": "101",
        "called_name": "Приёмная",
        "line": "GSM1",
    }
    name = details["caller_name"]
    _fire_call_event(
        hass, "2026-11-27T09:00:00.000+00:00", event_type="incoming_call", **details
    )
    await hass.async_block_till_done()
    assert sorted(_messages(notify)) == sorted(
        [f"Call from {name} (+79161234567) on line GSM1", f"{name} → Приёмная"]
    )
    assert sorted(c.data["title"] for c in notify) == [
        "Incoming call",
        "Звонок: +79161234567",
    ]

    # A missed call, in the same millisecond as its `call_end`.
    _fire_call_event(
        hass,
        "2026-11-27T09:00:20.000+00:00",
        event_type="call_end",
        status="no_answer",
        **details,
    )
    _fire_call_event(
        hass,
        "2026-11-27T09:00:20.000+00:00",
        event_type="missed_call",
        status="no_answer",
        **details,
    )
    await hass.async_block_till_done()
    local = dt_util.as_local(dt_util.parse_datetime("2026-11-27T09:00:20+00:00"))
    assert _messages(notify)[2:] == [
        f"Missed call from {name} (+79161234567) on line GSM1 at {local:%H:%M}"
    ]

    # An SMS: `sender_name` is the SMS event entity's, with its number.
    hass.states.async_set(SMS_ENTITY, "unknown")
    await hass.async_block_till_done()
    _fire_sms_event(
        hass,
        "2026-11-27T09:01:00.000+00:00",
        sms_src="+79637541208",
        text="Встреча в 11:00",
        trunk="GSM2",
        sender_name="Иван Петров",
    )
    # A number the phonebook does not know: None, and the number shows.
    _fire_sms_event(
        hass,
        "2026-11-27T09:02:00.000+00:00",
        sms_src="900",
        text="Код 1234",
        trunk="GSM1",
        sender_name=None,
    )
    await hass.async_block_till_done()
    assert [c.data["title"] for c in notify[3:]] == [
        "SMS from Иван Петров (+79637541208)",
        "SMS from 900",
    ]
    assert _messages(notify)[3:] == [
        "Встреча в 11:00 (line GSM2)",
        "Код 1234 (line GSM1)",
    ]


async def test_blueprints_with_the_integration(
    hass: HomeAssistant,
    tmp_path: Path,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    """From the PBX's events, through the entities, to the notifications."""
    notify = async_mock_service(hass, "notify", "test")
    await _set_up_automations(
        hass, tmp_path, [_use(name) for name in sorted(EXAMPLE_INPUTS)]
    )
    assert hass.states.get(CALL_ENTITY) is not None
    emulator.emit("incoming_call", call(1, src="+79161234567", trunk="GSM1"))
    emulator.emit("call_end", end(1, status="no_answer"))
    emulator.emit(
        "incoming_sms", {"sms_src": "+79990001122", "text": "Hi", "trunk": "GSM2"}
    )
    await wait_until(lambda: len(notify) == 3)
    await hass.async_block_till_done()
    messages = _messages(notify)
    assert messages[0] == "Call from +79161234567 on line GSM1"
    assert messages[1].startswith("Missed call from +79161234567 on line GSM1 at ")
    assert messages[2] == "Hi (line GSM2)"
    assert notify[2].data["title"] == "SMS from +79990001122"


@pytest.fixture
async def russian_entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> AsyncIterator[MockConfigEntry]:
    """Set the entry up in a Home Assistant whose country is Russia."""
    hass.config.country = "RU"
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    yield config_entry
    if config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def test_named_callers_with_the_integration(
    hass: HomeAssistant,
    tmp_path: Path,
    emulator: SpRecordEmulator,
    russian_entry: MockConfigEntry,
) -> None:
    """Contacts name the caller and the SMS sender in the notifications.

    The PBX sends +7 numbers; the contacts write them as people do.
    """
    await add_contact(hass, russian_entry, "Мама", "8 (916) 123-45-67")
    await add_contact(hass, russian_entry, "Иван Петров", "8 963 754-12-08")
    notify = async_mock_service(hass, "notify", "test")
    await _set_up_automations(
        hass, tmp_path, [_use(name) for name in sorted(EXAMPLE_INPUTS)]
    )
    emulator.emit("incoming_call", call(1, src="+79161234567", trunk="GSM1"))
    emulator.emit("call_end", end(1, status="no_answer"))
    emulator.emit(
        "incoming_sms", {"sms_src": "+79637541208", "text": "Hi", "trunk": "GSM2"}
    )
    # A caller the phonebook does not know shows by number.
    emulator.emit("incoming_call", call(2, src="+79990001122", trunk="GSM2"))
    await wait_until(lambda: len(notify) == 4)
    await hass.async_block_till_done()
    # The three automations run side by side: their order is not theirs to
    # keep (it differs between Home Assistant releases).
    messages = sorted(_messages(notify))
    assert messages[0] == "Call from +79990001122 on line GSM2"
    assert messages[1] == "Call from Мама (+79161234567) on line GSM1"
    assert messages[2] == "Hi (line GSM2)"
    assert messages[3].startswith(
        "Missed call from Мама (+79161234567) on line GSM1 at "
    )
    [sms] = [c for c in notify if c.data["message"] == "Hi (line GSM2)"]
    assert sms.data["title"] == "SMS from Иван Петров (+79637541208)"


async def test_forward_sms_of_one_of_two_pbxs_with_the_integration(
    hass: HomeAssistant,
    tmp_path: Path,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    """One account, two PBXs: the input picks one PBX's SMS event entity."""
    second = emulator.add_pbx(make_device_id(1))
    devices: dict[str, str] = {}

    @callback
    def learn(event: Event) -> None:
        devices[event.data["pbx_id"]] = event.data["device_id"]

    unsubscribe = hass.bus.async_listen(EVENT_SPRECORD, learn)
    emulator.emit("startup")
    emulator.emit("startup", device_id=second)
    await wait_until(lambda: len(devices) == 2)
    unsubscribe()
    ours = {
        device.id: device
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), setup_entry.entry_id
        )
    }
    for device_id in devices.values():
        device = ours[device_id]  # a device of the entry
        assert device.model == MODEL  # what the input's selector offers
        assert any(domain == DOMAIN for domain, _ in device.identifiers)

    every = async_mock_service(hass, "notify", "test")
    one = async_mock_service(hass, "notify", "one")
    await _set_up_automations(
        hass,
        tmp_path,
        [
            _use("forward_sms.yaml", sms_event=[SMS_ENTITY, SECOND_SMS_ENTITY]),
            _use(
                "forward_sms.yaml",
                notify_service="notify.one",
                sms_event=[SECOND_SMS_ENTITY],
            ),
        ],
    )
    sms = {"sms_src": "900", "trunk": "GSM1"}
    emulator.emit("incoming_sms", {**sms, "text": "first"})
    emulator.emit("incoming_sms", {**sms, "text": "second"}, device_id=second)
    await wait_until(lambda: len(every) == 2 and len(one) == 1)
    await hass.async_block_till_done()
    assert sorted(_messages(every)) == ["first (line GSM1)", "second (line GSM1)"]
    assert _messages(one) == ["second (line GSM1)"]
    assert devices[DEFAULT_DEVICE_ID] != devices[second]


AUTO_DIAL_EVENT = "event.sprecord_minipbx_auto_dial"


async def _alarm_with_auto_dial(
    hass: HomeAssistant, tmp_path: Path, **inputs: Any
) -> tuple[list[ServiceCall], list[ServiceCall]]:
    """Set the auto-dial blueprint up; return the start and notify calls."""
    started = async_mock_service(
        hass,
        DOMAIN,
        "start_auto_dial",
        response={"task_id": 500},
        supports_response=SupportsResponse.OPTIONAL,
    )
    notify = async_mock_service(hass, "notify", "test")
    hass.states.async_set("binary_sensor.alarm", "off")
    hass.states.async_set(AUTO_DIAL_EVENT, "unknown", {"event_types": ["finished"]})
    await _set_up_automations(hass, tmp_path, [_use("auto_dial.yaml", **inputs)])
    hass.states.async_set("binary_sensor.alarm", "on")
    await wait_until(lambda: len(started) == 1)
    return started, notify


def _task_ended(hass: HomeAssistant, task_id: int, answered: list[str]) -> None:
    """Write the auto-dial event entity's state as the integration does."""
    hass.states.async_set(
        AUTO_DIAL_EVENT,
        dt_util.utcnow().isoformat(),
        {
            "event_types": ["finished", "stopped"],
            "event_type": "finished",
            "task": "Тревога",
            "task_id": task_id,
            "answered": answered,
            "not_answered": [
                n for n in ("+79161234567", "+79031234567") if n not in answered
            ],
        },
    )


async def test_auto_dial_notifies_when_nobody_answered(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    started, notify = await _alarm_with_auto_dial(hass, tmp_path)
    assert started[0].data == {
        "device_id": ["pbx-device-id"],
        "task": "Тревога",
        "numbers": ["+79161234567", "+79031234567"],
    }
    _task_ended(hass, 500, answered=[])
    await wait_until(lambda: len(notify) == 1)
    assert notify[0].data["message"] == (
        "Nobody answered the Тревога calls (+79161234567, +79031234567)."
    )


async def test_auto_dial_is_quiet_when_someone_answered(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    _, notify = await _alarm_with_auto_dial(hass, tmp_path, numbers=[])
    _task_ended(hass, 500, answered=["+79161234567"])
    await hass.async_block_till_done()
    assert notify == []


async def test_auto_dial_notifies_when_the_task_never_ends(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    _, notify = await _alarm_with_auto_dial(hass, tmp_path, wait_minutes=1)
    assert notify == []  # the automation waits (no block: it would wait too)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    await wait_until(lambda: len(notify) == 1)
    assert "+79161234567" in notify[0].data["message"]


async def test_auto_dial_ignores_another_tasks_end(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Another task that ended with an answer does not count for ours."""
    _, notify = await _alarm_with_auto_dial(hass, tmp_path)
    _task_ended(hass, 999, answered=["+79161234567"])
    await wait_until(lambda: len(notify) == 1)
