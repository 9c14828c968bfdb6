"""The auto-dial blueprint fails closed: every way a run can go wrong is told."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.sprecord.services import async_setup_services
from emulator.autodial import RINGING, AutoDialEmulator

from .helpers import wait_until
from .test_autodial import ENDED, pbx_device
from .test_blueprints import _alarm_with_auto_dial, _set_up_automations, _use

NUMBERS = ["+79161234567", "+79031234567"]

pytestmark = pytest.mark.usefixtures("fast_polling")


@pytest.fixture
def entry(autodial_entry: MockConfigEntry) -> MockConfigEntry:
    """Return a loaded entry whose PBX's local address is the emulator's."""
    return autodial_entry


async def alarm(
    hass: HomeAssistant, tmp_path: Path, entry: MockConfigEntry
) -> tuple[list[ServiceCall], list[ServiceCall]]:
    """Set the blueprint up on the entry's PBX, then sound the alarm.

    Returns the notifications and the extra actions' calls.
    """
    notify = async_mock_service(hass, "notify", "test")
    extra = async_mock_service(hass, "test", "extra")
    hass.states.async_set("binary_sensor.alarm", "off")
    await _set_up_automations(
        hass,
        tmp_path,
        [
            _use(
                "auto_dial.yaml",
                calling_pbx=pbx_device(hass, entry),
                auto_dial_event=ENDED,
                extra_actions=[
                    {"action": "test.extra", "data": {"why": "{{ reason }}"}}
                ],
            )
        ],
    )
    hass.states.async_set("binary_sensor.alarm", "on")
    return notify, extra


def texts(calls: list[ServiceCall]) -> list[tuple[str, str]]:
    """Return (title, message) of each notification."""
    return [(c.data["title"], c.data["message"]) for c in calls]


async def test_a_pbx_that_cannot_be_reached_is_told(
    hass: HomeAssistant,
    tmp_path: Path,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    """A power cut at the PBX: the start fails, and the notification says so."""
    await dialer.stop()  # its port is closed now
    notify, extra = await alarm(hass, tmp_path, entry)
    await wait_until(lambda: len(notify) == 1)
    await hass.async_block_till_done()
    assert texts(notify) == [
        (
            "Auto-dial Тревога: could not start",
            "The Тревога calls did not start: the PBX could not be asked.",
        )
    ]
    # The user's own actions run too, and know why.
    assert [c.data["why"] for c in extra] == ["start_failed"]
    # It did not go on to wait for a task that never started.
    assert hass.states.get("automation.auto_dial_yaml").attributes["current"] == 0
    assert hass.states.get(ENDED).state == STATE_UNKNOWN


async def test_a_task_nobody_answered_is_told(
    hass: HomeAssistant,
    tmp_path: Path,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    for number in NUMBERS:
        dialer.set_outcome(number, "busy")
    notify, extra = await alarm(hass, tmp_path, entry)
    await wait_until(lambda: len(notify) == 1)
    assert texts(notify) == [
        (
            "Auto-dial Тревога: nobody answered",
            "Nobody answered the Тревога calls (+79161234567, +79031234567).",
        )
    ]
    await hass.async_block_till_done()
    assert [c.data["why"] for c in extra] == ["not_answered"]


async def test_a_task_someone_answered_is_quiet(
    hass: HomeAssistant,
    tmp_path: Path,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    dialer.set_outcome(NUMBERS[1], "busy")
    notify, extra = await alarm(hass, tmp_path, entry)
    await wait_until(lambda: hass.states.get(ENDED).state != STATE_UNKNOWN)
    await hass.async_block_till_done()
    assert hass.states.get(ENDED).attributes["answered"] == [NUMBERS[0]]
    assert notify == []
    assert extra == []


async def test_a_task_the_pbx_forgot_is_told(
    hass: HomeAssistant,
    tmp_path: Path,
    entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    """The PBX restarted mid-task: stopped, nobody known to have answered."""
    dialer.set_outcome(NUMBERS[0], RINGING)
    notify, _ = await alarm(hass, tmp_path, entry)
    await wait_until(lambda: dialer.stats.starts == 1)
    dialer.forget_task(dialer.task_id("Тревога"))
    await wait_until(lambda: len(notify) == 1)
    assert hass.states.get(ENDED).attributes["reason"] == "not_found"
    # The PBX said nothing of the numbers: the ones given are named.
    assert texts(notify) == [
        (
            "Auto-dial Тревога: nobody answered",
            "Nobody answered the Тревога calls (+79161234567, +79031234567).",
        )
    ]
    await hass.async_block_till_done()
    dialer.set_outcome(NUMBERS[0], "talk")


async def test_a_task_that_does_not_end_in_time_is_told(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    _, notify = await _alarm_with_auto_dial(hass, tmp_path, wait_minutes=1)
    assert notify == []
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    await wait_until(lambda: len(notify) == 1)
    assert texts(notify) == [
        (
            "Auto-dial Тревога: no end in time",
            (
                "The Тревога calls did not end in time; nobody is known to have "
                "answered (+79161234567, +79031234567)."
            ),
        )
    ]


async def test_a_start_refused_by_the_integration_is_told(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Any error of the start is told: here the device is not a PBX."""
    async_setup_services(hass)  # the actions, without an entry
    notify = async_mock_service(hass, "notify", "test")
    hass.states.async_set("binary_sensor.alarm", "off")
    inputs: dict[str, Any] = {"numbers": [], "calling_pbx": "no-such-device"}
    await _set_up_automations(hass, tmp_path, [_use("auto_dial.yaml", **inputs)])
    hass.states.async_set("binary_sensor.alarm", "on")
    await wait_until(lambda: len(notify) == 1)
    assert texts(notify) == [
        (
            "Auto-dial Тревога: could not start",
            "The Тревога calls did not start: the PBX could not be asked.",
        )
    ]
