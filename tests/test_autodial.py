"""Auto-dial from Home Assistant: the local address, the actions, the events."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord import autodial as autodial_module
from custom_components.sprecord.autodial import FollowedTask, parse_address
from custom_components.sprecord.const import CONF_AUTODIAL, DOMAIN
from custom_components.sprecord.diagnostics import async_get_config_entry_diagnostics
from custom_components.sprecord.ids import (
    TOPIC_AUTODIAL,
    signal_autodial_ended,
    signal_pbx,
)
from emulator import SpRecordEmulator
from emulator.autodial import RINGING, AutoDialEmulator

from .helpers import PBX_NAME, set_options, wait_until

PROGRESS = "sensor.sprecord_minipbx_auto_dial_progress"
ENDED = "event.sprecord_minipbx_auto_dial"

pytestmark = pytest.mark.usefixtures("fast_polling")


@pytest.fixture
def entry(autodial_entry: MockConfigEntry) -> MockConfigEntry:
    """Return a loaded entry whose PBX's local address is the emulator's."""
    return autodial_entry


def pbx_device(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Return the device id of the entry's first PBX."""
    return str(entry.runtime_data.coordinator.primary.device_registry_id)


async def start(
    hass: HomeAssistant, entry: MockConfigEntry, **data: Any
) -> dict[str, Any]:
    """Call `start_auto_dial` on the entry's PBX; return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        "start_auto_dial",
        {"device_id": pbx_device(hass, entry), **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def command(
    hass: HomeAssistant, entry: MockConfigEntry, task_id: int, cmd: str
) -> None:
    """Call `auto_dial_command`."""
    await hass.services.async_call(
        DOMAIN,
        "auto_dial_command",
        {"device_id": pbx_device(hass, entry), "task_id": task_id, "command": cmd},
        blocking=True,
    )


def test_addresses_are_read_as_people_write_them() -> None:
    assert parse_address("192.168.1.50") == ("192.168.1.50", 9000)
    assert parse_address(" 192.168.1.50:9001 ") == ("192.168.1.50", 9001)
    assert parse_address("pbx.office.lan") == ("pbx.office.lan", 9000)
    assert parse_address("fe80::1") == ("fe80::1", 9000)
    assert parse_address("[fe80::1]:9002") == ("fe80::1", 9002)
    assert parse_address("PBX-1.local.") == ("pbx-1.local.", 9000)
    for bad in (
        "",
        "http://x/",
        "a b",
        "host:port",
        "x/y",
        "user@host",
        "x?y=1",
        "-pbx",
        "pbx_1",
    ):
        with pytest.raises(ValueError):
            parse_address(bad)


async def test_a_task_with_two_numbers_reports_who_answered(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    assert hass.states.get(PROGRESS).state == STATE_UNKNOWN
    assert hass.states.get(ENDED).state == STATE_UNKNOWN
    dialer.set_outcome("+79031234567", "busy")
    response = await start(
        hass, entry, task="Тревога", numbers=["+79161234567", "+79031234567"]
    )
    assert response == {"task_id": dialer.task_id("Тревога")}

    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    ended = hass.states.get(ENDED).attributes
    assert ended["event_type"] == "finished"
    assert ended["task"] == "Тревога"
    assert ended["task_id"] == response["task_id"]
    assert ended["answered"] == ["+79161234567"]
    assert ended["not_answered"] == ["+79031234567"]
    assert ended["results"] == [
        {"number": "+79161234567", "result": "ok", "result_code": "talk"},
        {"number": "+79031234567", "result": "fail", "result_code": "busy"},
    ]
    progress = hass.states.get(PROGRESS)
    assert progress.state == "100"
    assert progress.attributes["state"] == "finish"
    assert progress.attributes["total"] == 2
    assert progress.attributes["success"] == 1

    status = await hass.services.async_call(
        DOMAIN,
        "get_auto_dial_status",
        {"device_id": pbx_device(hass, entry), "task_id": response["task_id"]},
        blocking=True,
        return_response=True,
    )
    assert status is not None
    assert status["state"] == "finish"
    assert status["answered"] == ["+79161234567"]
    assert status["results"] == ended["results"]
    assert not entry.runtime_data.coordinator.autodial[
        entry.runtime_data.coordinator.primary.unique_prefix
    ]._followed


async def test_a_task_is_told_about_with_home_assistants_dispatcher(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    prefix = entry.runtime_data.coordinator.primary.unique_prefix
    progress: list[int | None] = []
    ended: list[tuple[str, int]] = []
    autodial = entry.runtime_data.coordinator.autodial[prefix]

    @callback
    def moved() -> None:
        progress.append(autodial.current.progress if autodial.current else None)

    @callback
    def over(how: str, task: FollowedTask) -> None:
        ended.append((how, task.task_id))

    signal = signal_pbx(entry.entry_id, prefix, TOPIC_AUTODIAL)
    async_dispatcher_connect(hass, signal, moved)
    async_dispatcher_connect(hass, signal_autodial_ended(entry.entry_id, prefix), over)
    response = await start(hass, entry, task="test", numbers=["+79161234567"])
    await wait_until(lambda: ended)
    assert ended == [("finished", response["task_id"])]
    assert progress[0] is None  # started, no status yet
    assert progress[-1] == 100
    assert hass.states.get(PROGRESS).state == "100"


async def test_pause_resume_stop_and_their_warnings(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    dialer.set_outcome("1002", RINGING)  # held while we look
    task_id = (await start(hass, entry, task="Тревога"))["task_id"]
    await wait_until(lambda: hass.states.get(PROGRESS).attributes.get("state") == "run")

    await command(hass, entry, task_id, "pause")
    assert hass.states.get(PROGRESS).attributes["state"] == "pause"
    with pytest.raises(ServiceValidationError) as caught:
        await command(hass, entry, task_id, "pause")
    assert caught.value.translation_key == "auto_dial_already_suspended"
    assert str(caught.value) == (
        f"The auto-dial task {task_id} of {PBX_NAME} is already paused"
    )
    await command(hass, entry, task_id, "resume")
    assert hass.states.get(PROGRESS).attributes["state"] == "run"
    with pytest.raises(ServiceValidationError) as caught:
        await command(hass, entry, task_id, "resume")
    assert caught.value.translation_key == "auto_dial_not_suspended"
    with pytest.raises(ServiceValidationError) as caught:
        await start(hass, entry, task="Тревога")
    assert caught.value.translation_key == "auto_dial_already_running"

    await command(hass, entry, task_id, "stop")
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    assert hass.states.get(ENDED).attributes["event_type"] == "stopped"
    with pytest.raises(ServiceValidationError) as caught:
        await command(hass, entry, task_id, "stop")
    assert caught.value.translation_key == "auto_dial_not_running"


async def test_a_wrong_task_is_a_translated_error(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await start(hass, entry, task="Пожар")
    assert caught.value.translation_key == "auto_dial_not_found"
    # The frontend shows the message in the user's language.
    russian = await async_get_translations(hass, "ru", "exceptions", {DOMAIN})
    template = russian[f"component.{DOMAIN}.exceptions.auto_dial_not_found.message"]
    assert template.format(**(caught.value.translation_placeholders or {})) == (
        f"У {PBX_NAME} нет задания автообзвона Пожар: проверьте название (или id) "
        "в веб-интерфейсе АТС."
    )
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "get_auto_dial_status",
            {"device_id": pbx_device(hass, entry), "task_id": 999},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "auto_dial_not_found"


async def test_unloading_stops_following(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    dialer.set_outcome("1002", RINGING)
    await start(hass, entry, task="test")
    await wait_until(lambda: hass.states.get(PROGRESS).attributes.get("state") == "run")
    assert entry._background_tasks
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert not entry._background_tasks
    asked = dialer.stats.requests
    await wait_until(lambda: dialer.stats.requests == asked)  # nobody asks
    dialer.set_outcome("1002", "talk")


async def test_a_pbx_that_stops_answering_is_followed_again(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dialer.set_outcome("1002", RINGING)
    await start(hass, entry, task="test")
    autodial = next(iter(entry.runtime_data.coordinator.autodial.values()))
    real_status = autodial.client.status
    failures = 0

    async def flaky(task_id: int) -> Any:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise autodial_module.AutoDialError("Connection refused")
        return await real_status(task_id)

    autodial.client.status = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        await wait_until(lambda: failures == 3)
        dialer.set_outcome("1002", "talk")
        await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    lines = [
        r.getMessage() for r in caplog.records if "auto-dial task" in r.getMessage()
    ]
    assert len(lines) == 2  # once when it failed, once when it came back
    assert "Cannot follow" in lines[0]


async def test_the_actions_say_which_pbx_they_cannot_use(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    device = pbx_device(hass, setup_entry)
    data = {"task": "test"}
    for target, key in (
        ([device, device], "one_pbx"),
        (["no-such-device"], "not_a_pbx"),
        ([device], "no_local_address"),
    ):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN,
                "start_auto_dial",
                {"device_id": target, **data},
                blocking=True,
                return_response=True,
            )
        assert caught.value.translation_key == key
    # A device of another integration is no PBX either.
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    stranger = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "x")}
    )
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "start_auto_dial",
            {"device_id": stranger.id, **data},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "not_a_pbx"


async def test_an_unreachable_pbx_is_an_error(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    await dialer.stop()
    with pytest.raises(HomeAssistantError) as caught:
        await start(hass, entry, task="test")
    assert caught.value.translation_key == "auto_dial_unreachable"
    await dialer.start()


async def open_local_autodial(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Open the options' local auto-dial step; return its form."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "local_autodial"}
    )


async def test_the_options_check_the_address(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    emulator: SpRecordEmulator,
) -> None:
    result = await set_options(hass, setup_entry, {PBX_NAME: "not an address"})
    assert result["errors"] == {"address": "autodial_invalid_address"}
    assert result["description_placeholders"]["pbx"] == PBX_NAME
    # The cloud emulator answers HTTP, but not as the auto-dial API.
    result = await set_options(hass, setup_entry, {PBX_NAME: emulator.url[7:]})
    assert result["errors"] == {"base": "autodial_unreachable"}
    assert CONF_AUTODIAL not in setup_entry.options
    # Saved, then shown again; emptied, then gone.
    address = f"127.0.0.1:{dialer.port}"
    result = await set_options(hass, setup_entry, {PBX_NAME: address})
    prefix = setup_entry.runtime_data.coordinator.primary.unique_prefix
    assert setup_entry.options[CONF_AUTODIAL] == {prefix: address}
    assert hass.states.get(PROGRESS) is not None
    result = await open_local_autodial(hass, setup_entry)
    assert result["step_id"] == "autodial_address"  # one PBX: nothing to pick
    [field] = result["data_schema"].schema
    assert (str(field), field.description["suggested_value"]) == ("address", address)
    hass.config_entries.options.async_abort(result["flow_id"])
    result = await set_options(hass, setup_entry, {PBX_NAME: ""})
    assert CONF_AUTODIAL not in setup_entry.options


async def test_the_address_is_redacted(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert f"127.0.0.1:{dialer.port}" not in repr(diagnostics)
    assert diagnostics["autodial_pbxs"] == 1


async def test_two_pbxs_of_one_name_are_told_apart(
    hass: HomeAssistant, setup_entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    """The user named both offices' PBX alike: the pick still offers two."""
    registry = dr.async_get(hass)
    second = registry.async_get_or_create(
        config_entry_id=setup_entry.entry_id,
        identifiers={(DOMAIN, f"{setup_entry.unique_id}_pbx_second")},
        name="Second office",
    )
    registry.async_update_device(second.id, name_by_user=PBX_NAME)
    result = await open_local_autodial(hass, setup_entry)
    assert result["step_id"] == "local_autodial"
    [selector] = result["data_schema"].schema.values()
    assert [(o["value"], o["label"]) for o in selector.config["options"]] == [
        (str(setup_entry.unique_id), PBX_NAME),
        (f"{setup_entry.unique_id}_pbx_second", f"{PBX_NAME} (2)"),
    ]
    hass.config_entries.options.async_abort(result["flow_id"])
    result = await set_options(
        hass, setup_entry, {f"{PBX_NAME} (2)": f"127.0.0.1:{dialer.port}"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_AUTODIAL] == {
        f"{setup_entry.unique_id}_pbx_second": f"127.0.0.1:{dialer.port}"
    }


async def test_the_form_lists_pbxs_not_their_lines(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: SpRecordEmulator
) -> None:
    emulator.emit(
        "incoming_call", {"call_id": 1, "call_src": "+79161234567", "trunk": "GSM1"}
    )
    await wait_until(lambda: hass.states.get("sensor.line_gsm1_state") is not None)
    registry = dr.async_get(hass)
    assert len(dr.async_entries_for_config_entry(registry, setup_entry.entry_id)) == 2
    # One PBX (its line is no PBX): nothing to pick, its address is asked.
    result = await open_local_autodial(hass, setup_entry)
    assert result["step_id"] == "autodial_address"
    assert result["description_placeholders"]["pbx"] == PBX_NAME
    hass.config_entries.options.async_abort(result["flow_id"])
