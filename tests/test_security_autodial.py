"""Auto-dial in a stranger's hands: who may place calls, and what ends a follow."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
import voluptuous as vol

from custom_components.sprecord.autodial import PbxAutoDial
from custom_components.sprecord.const import DOMAIN
from emulator.autodial import RINGING, AutoDialEmulator

from .helpers import PBX_NAME, wait_until
from .test_autodial import ENDED, PROGRESS, pbx_device

ACTIONS = ("start_auto_dial", "auto_dial_command", "get_auto_dial_status")

pytestmark = pytest.mark.usefixtures("fast_polling")


@pytest.fixture
def entry(autodial_entry: MockConfigEntry) -> MockConfigEntry:
    """Return a loaded entry whose PBX's local address is the emulator's."""
    return autodial_entry


def autodialer(entry: MockConfigEntry) -> PbxAutoDial:
    """Return the auto-dialer of the entry's PBX."""
    coordinator = entry.runtime_data.coordinator
    autodial: PbxAutoDial = coordinator.autodial[coordinator.primary.unique_prefix]
    return autodial


def action_data(entry: MockConfigEntry, hass: HomeAssistant) -> dict[str, Any]:
    """Return valid data of every auto-dial action (extra keys left out)."""
    return {"device_id": pbx_device(hass, entry), "task": "test", "task_id": 500}


def data_for(action: str, data: dict[str, Any]) -> dict[str, Any]:
    """Return the data `action` takes."""
    keys = {
        "start_auto_dial": ("device_id", "task"),
        "auto_dial_command": ("device_id", "task_id"),
        "get_auto_dial_status": ("device_id", "task_id"),
    }[action]
    extra = {"command": "pause"} if action == "auto_dial_command" else {}
    return {key: data[key] for key in keys} | extra


def answers(action: str) -> bool:
    """Tell whether an action answers (the frontend then asks for it)."""
    return action in {"start_auto_dial", "get_auto_dial_status"}


def pollers() -> list[asyncio.Task[Any]]:
    """Return the tasks that follow an auto-dial task (running ones only)."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(f"{DOMAIN} auto-dial task")
    ]


async def ws_call(
    client: Any, action: str, data: dict[str, Any], *, response: bool
) -> dict[str, Any]:
    """Call an action over the websocket API as the frontend does."""
    await client.send_json_auto_id(
        {
            "type": "call_service",
            "domain": DOMAIN,
            "service": action,
            "service_data": data,
            "return_response": response,
        }
    )
    answer: dict[str, Any] = await client.receive_json()
    return answer


async def test_a_user_who_is_not_an_admin_cannot_place_calls(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
) -> None:
    """Over the websocket, as a read-only user would try it: refused."""
    client = await hass_ws_client(hass, hass_read_only_access_token)
    data = action_data(entry, hass)
    asked = dialer.stats.requests  # the options' check of the address
    for action in (*ACTIONS, "reload_phonebook"):
        given = {} if action == "reload_phonebook" else data_for(action, data)
        answer = await ws_call(client, action, given, response=answers(action))
        assert not answer["success"], action
        assert answer["error"]["message"] == "Unauthorized", action
    # Nothing reached the PBX.
    assert dialer.stats.requests == asked
    assert dialer.stats.starts == 0


async def test_an_admin_places_calls_over_the_websocket(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    hass_ws_client: WebSocketGenerator,
) -> None:
    client = await hass_ws_client(hass)  # the admin's token
    data = action_data(entry, hass)
    answer = await ws_call(
        client, "start_auto_dial", data_for("start_auto_dial", data), response=True
    )
    assert answer["success"], answer
    task_id = dialer.task_id("test")
    assert answer["result"]["response"] == {"task_id": task_id}
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    answer = await ws_call(
        client,
        "get_auto_dial_status",
        data_for("get_auto_dial_status", data) | {"task_id": task_id},
        response=True,
    )
    assert answer["success"], answer
    assert answer["result"]["response"]["state"] == "finish"
    answer = await ws_call(client, "reload_phonebook", {}, response=False)
    assert answer["success"], answer


async def test_users_are_told_apart_by_the_context(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    """The check is the action's, not the websocket's: any caller meets it."""
    data = action_data(entry, hass)
    asked = dialer.stats.requests
    for action in ACTIONS:
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN,
                action,
                data_for(action, data),
                blocking=True,
                context=Context(user_id=hass_read_only_user.id),
                return_response=answers(action),
            )
    # A user id that names nobody is refused too.
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "start_auto_dial",
            data_for("start_auto_dial", data),
            blocking=True,
            context=Context(user_id="no-such-user"),
            return_response=True,
        )
    assert dialer.stats.requests == asked
    response = await hass.services.async_call(
        DOMAIN,
        "start_auto_dial",
        data_for("start_auto_dial", data),
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
        return_response=True,
    )
    assert response == {"task_id": dialer.task_id("test")}
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)


async def test_an_automation_still_places_calls(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    hass_read_only_user: MockUser,
) -> None:
    """An automation runs without a user, even when a user's act triggered it."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "alarm",
                "triggers": [{"trigger": "event", "event_type": "alarm"}],
                "actions": [
                    {
                        "action": f"{DOMAIN}.start_auto_dial",
                        "target": {"device_id": pbx_device(hass, entry)},
                        "data": {"task": "test"},
                    }
                ],
            }
        },
    )
    hass.bus.async_fire("alarm", context=Context(user_id=hass_read_only_user.id))
    await wait_until(lambda: dialer.stats.starts == 1)
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    assert hass.states.get(ENDED).attributes["event_type"] == "finished"


@pytest.mark.parametrize("task_id", [-1, 0, 10**30, 2**31])
async def test_a_task_id_out_of_range_is_a_translated_error(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    task_id: int,
) -> None:
    data = action_data(entry, hass) | {"task_id": task_id}
    asked = dialer.stats.requests
    for action in ("auto_dial_command", "get_auto_dial_status"):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN,
                action,
                data_for(action, data),
                blocking=True,
                return_response=action == "get_auto_dial_status",
            )
        assert caught.value.translation_key == "task_id_out_of_range"
        assert str(caught.value) == (
            # Home Assistant drops the message's final full stop.
            "An auto-dial task id is a whole number from 1 to 2147483647"
        )
    russian = await async_get_translations(hass, "ru", "exceptions", {DOMAIN})
    template = russian[f"component.{DOMAIN}.exceptions.task_id_out_of_range.message"]
    assert template.format(**(caught.value.translation_placeholders or {})) == (
        "Id задания автообзвона — целое число от 1 до 2147483647."
    )
    assert dialer.stats.requests == asked


async def test_task_ids_at_the_ends_of_the_range_are_asked(
    hass: HomeAssistant, entry: MockConfigEntry, dialer: AutoDialEmulator
) -> None:
    """The ends of the range reach the PBX (which knows no such task)."""
    asked = dialer.stats.requests
    for task_id in (1, 2**31 - 1, "506"):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                DOMAIN,
                "get_auto_dial_status",
                {"device_id": pbx_device(hass, entry), "task_id": task_id},
                blocking=True,
                return_response=True,
            )
        assert caught.value.translation_key == "auto_dial_not_found"
    assert dialer.stats.requests == asked + 3
    # Not a number at all: the schema's own error, as before.
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN,
            "get_auto_dial_status",
            {"device_id": pbx_device(hass, entry), "task_id": "five"},
            blocking=True,
            return_response=True,
        )


async def test_a_task_the_pbx_forgot_is_no_longer_followed(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The PBX restarted: the task is `stopped` (not_found), once, and not polled."""
    dialer.set_outcome("1002", RINGING)
    response = await hass.services.async_call(
        DOMAIN,
        "start_auto_dial",
        {"device_id": pbx_device(hass, entry), "task": "test"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    task_id = response["task_id"]
    await wait_until(lambda: hass.states.get(PROGRESS).attributes.get("state") == "run")
    with caplog.at_level(logging.INFO):
        # The emulator's control API forgets the task, as a restart does.
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{dialer.url}/_emulator/tasks/{task_id}") as answer,
        ):
            assert answer.status == 200
            assert await answer.json() == {"forgotten": task_id}
        await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    ended = hass.states.get(ENDED).attributes
    assert ended["event_type"] == "stopped"
    assert ended["reason"] == "not_found"
    assert ended["task_id"] == task_id
    assert ended["answered"] == []
    progress = hass.states.get(PROGRESS)
    assert progress.state == STATE_UNKNOWN
    assert progress.attributes["reason"] == "not_found"
    lines = [
        r for r in caplog.records if r.name.startswith(f"custom_components.{DOMAIN}")
    ]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert f"Auto-dial task {task_id} of '{PBX_NAME}' is unknown" in (
        lines[0].getMessage()
    )
    # Following ended: no task left, and the PBX is asked nothing more.
    assert not autodialer(entry)._followed
    assert not pollers()


async def test_the_control_api_forgets_only_known_tasks(
    dialer: AutoDialEmulator,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.delete(f"{dialer.url}/_emulator/tasks/9999") as answer:
            assert answer.status == 404
            assert await answer.json() == {"detail": "no task has the id 9999"}
        task_id = dialer.task_id("test")
        async with session.delete(f"{dialer.url}/_emulator/tasks/{task_id}") as answer:
            assert answer.status == 200
    with pytest.raises(KeyError):
        dialer.task_id("test")
    assert dialer.status(task_id)["result_code"] == "not_found"


@pytest.mark.parametrize("answered", ["while unloading", "after the unload"])
async def test_a_start_answered_during_the_unload_is_not_followed(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    answered: str,
) -> None:
    """The PBX answers the start once the entry began to unload: not followed."""
    autodial = autodialer(entry)
    real_start = autodial.client.start
    asked = asyncio.Event()
    answer = asyncio.Event()

    async def slow_start(task: str, numbers: list[str] | None) -> int:
        asked.set()
        await answer.wait()
        return await real_start(task, numbers)

    autodial.client.start = slow_start  # type: ignore[method-assign]
    asked_before = dialer.stats.requests
    dialer.set_outcome("1002", RINGING)
    call = hass.async_create_task(
        hass.services.async_call(
            DOMAIN,
            "start_auto_dial",
            {"device_id": pbx_device(hass, entry), "task": "test"},
            blocking=True,
            return_response=True,
        )
    )
    await asyncio.wait_for(asked.wait(), 3)
    if answered == "while unloading":
        real_unload = hass.config_entries.async_unload_platforms

        async def unload_platforms(*args: Any) -> bool:
            assert entry.state is ConfigEntryState.UNLOAD_IN_PROGRESS
            answer.set()
            await call  # answered before the platforms go
            return await real_unload(*args)

        monkeypatch.setattr(
            hass.config_entries, "async_unload_platforms", unload_platforms
        )
    # (Not `async_block_till_done()`: it would wait for the held action.)
    assert await hass.config_entries.async_unload(entry.entry_id)
    answer.set()
    response = await call
    assert response == {"task_id": dialer.task_id("test")}
    assert dialer.stats.starts == 1
    assert not autodial._followed
    assert not entry._background_tasks
    assert not pollers()
    # The start, and no status after it.
    assert dialer.stats.requests == asked_before + 1
    assert "started while the integration unloads" in caplog.text
    dialer.set_outcome("1002", "talk")
