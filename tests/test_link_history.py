"""A quiet night behind a proxy: cuts are followed at once, told once, shown."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sprecord import (
    link as link_module,
    reconnect as reconnect_module,
)
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, call

CONNECTED = "binary_sensor.sprecord_minipbx_cloud_connection"
CUT_AFTER = 0.3
"""The emulated proxy's idle cut, in seconds (scaled down from 25 to 90 s)."""


async def test_repeated_idle_cuts_are_followed_at_once_told_once_never_shown(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Scaled with the cut: a stream that lived a third of it lived a while.
    # Patched before the setup, which makes the policy: any wait it gave
    # after a cut would outlast the grace, and the sensor would flap.
    monkeypatch.setattr(reconnect_module, "HEALTHY_STREAM_SECONDS", CUT_AFTER / 3)
    monkeypatch.setattr(reconnect_module, "BACKOFF_MIN", 2.0)
    monkeypatch.setattr(reconnect_module, "BACKOFF_MAX", 4.0)
    monkeypatch.setattr(link_module, "LINK_GRACE", 0.5)
    caplog.set_level(logging.INFO, logger="custom_components.sprecord")
    emulator.set_idle_cut(CUT_AFTER)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    shown = connectivity_changes(hass)
    emulator.emit("startup")  # an id to resume from
    await wait_until(lambda: emulator.stats.idle_cuts >= 6, timeout=10)
    # Sent whenever: between two streams it comes on the next, resumed.
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert shown == []  # the sensor never flapped
    ours = [
        r
        for r in caplog.records
        if r.name.startswith("custom_components.sprecord") and r.levelno >= logging.INFO
    ]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert ours[0].levelno == logging.INFO
    assert "cut after about" in ours[0].getMessage()
    assert emulator.stats.max_open_streams == 1

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, config_entry
    )
    streams: dict[str, Any] = diagnostics["link"]["streams"]
    assert streams["cuts"] >= 6
    assert streams["idle_cut_after"] == pytest.approx(CUT_AFTER, abs=0.1)
    assert all(
        s["lived"] == pytest.approx(CUT_AFTER, abs=0.1)
        for s in streams["recent_streams"][1:]
    )
    # Back at once each time: a wait of a second or more after each 0.3-s
    # stream would leave it away most of the time.
    assert streams["connected_share"] >= 0.75

    # A gap longer than the grace (the next connect fails: a backoff) shows.
    emulator.fail_streams(503)
    await wait_until(lambda: len(shown) == 2, timeout=10)
    assert shown == [STATE_OFF, STATE_ON]
    assert await hass.config_entries.async_unload(config_entry.entry_id)


def connectivity_changes(hass: HomeAssistant) -> list[str]:
    """Collect the states the connectivity sensor changes to from now on."""
    changes: list[str] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            changes.append(new.state)

    async_track_state_change_event(hass, CONNECTED, changed)
    return changes


async def test_the_link_says_why_it_is_down(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    link = setup_entry.runtime_data.link
    assert link.why is None
    emulator.refuse_key("demo")
    await wait_for_state(hass, CONNECTED, "off")
    assert link.why == "authentication failed"
