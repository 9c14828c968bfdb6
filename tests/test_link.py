"""The link: one stream per entry, reconnects, auth loss, busy server, unload."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.sprecord import link as link_module
from custom_components.sprecord.api import EventStream, SpRecordClient
from custom_components.sprecord.const import DOMAIN
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, PBX_EVENT, call, end

CONNECTED = "binary_sensor.sprecord_minipbx_cloud_connection"


def issue_id(entry: MockConfigEntry) -> str:
    """Return the id of the entry's too-many-connections repair issue."""
    return f"too_many_connections_{entry.entry_id}"


async def test_drop_mid_event_reconnects_and_later_events_arrive(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.drop_streams("mid_event")
    await wait_until(lambda: emulator.stats.connects == 2)
    emulator.emit("call_end", end(1))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert emulator.stats.max_open_streams == 1
    stats = setup_entry.runtime_data.link.stats
    assert stats.drops == 1
    assert stats.events_by_type == {"incoming_call": 1, "call_end": 1}


async def test_events_sent_during_a_drop_are_resumed_once(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.refuse_key("demo", drop=True)  # nobody listens for a moment
    await wait_until(lambda: emulator.open_streams() == 0)
    emulator.refuse_key("demo", refuse=False)
    emulator.emit("start_talk", call(1))  # sent while the entry reconnects
    await wait_for_state(hass, CALL_STATE, "talking")
    stats = setup_entry.runtime_data.link.stats
    assert stats.events_by_type == {"incoming_call": 1, "start_talk": 1}


async def test_stalled_stream_is_detected_and_replaced(
    monkeypatch: pytest.MonkeyPatch,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    monkeypatch.setattr(link_module, "STREAM_READ_TIMEOUT", 0.3)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    emulator.emit("startup")  # gives the client an event id to resume from
    await wait_until(lambda: hass.states.get(PBX_EVENT).state != STATE_UNKNOWN)
    emulator.stall_streams()
    emulator.emit("incoming_call", call(1))  # lost on the stalled socket...
    await wait_until(lambda: emulator.stats.connects == 2)
    # ...and delivered again on the new stream, after its Last-Event-ID.
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert emulator.stats.max_open_streams == 1
    assert hass.states.get(CONNECTED).state == STATE_ON  # a short drop is not shown
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_fifty_forced_drops_never_hold_two_streams(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    for number in range(50):
        emulator.drop_streams("abort" if number % 2 else "close")
        await wait_until(
            lambda n=number: (
                emulator.stats.connects == n + 2 and emulator.open_streams() == 1
            )
        )
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert emulator.stats.max_open_streams == 1
    assert emulator.stats.rejected_busy == 0


async def test_key_refused_mid_life_starts_reauth_and_stops(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.refuse_key("demo")
    await wait_until(
        lambda: any(setup_entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    )
    await wait_for_state(hass, CONNECTED, STATE_OFF)
    assert hass.states.get(CALL_STATE).state == STATE_UNAVAILABLE
    await asyncio.sleep(0.2)  # many backoff periods: no retry loop
    assert emulator.stats.rejected_auth == 1
    assert emulator.open_streams() == 0


async def test_busy_server_raises_a_repair_issue_cleared_on_recovery(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    emulator.fail_streams(429, count=3)
    emulator.drop_streams()
    await wait_until(
        lambda: (
            issue_registry.async_get_issue(DOMAIN, issue_id(setup_entry)) is not None
        )
    )
    issue = issue_registry.async_get_issue(DOMAIN, issue_id(setup_entry))
    assert issue.translation_key == "too_many_connections"
    assert issue.translation_placeholders == {"title": "SpRecord MiniPBX"}
    await wait_until(lambda: emulator.stats.connects == 2, timeout=5)
    await wait_until(
        lambda: issue_registry.async_get_issue(DOMAIN, issue_id(setup_entry)) is None
    )
    assert setup_entry.runtime_data.link.stats.busy_refusals == 3


async def test_setup_with_all_connections_taken_retries_and_clears_issue(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    issue_registry: ir.IssueRegistry,
) -> None:
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        others: list[EventStream] = [await client.connect() for _ in range(3)]
        config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(config_entry.entry_id)
        assert config_entry.state is ConfigEntryState.SETUP_RETRY
        assert issue_registry.async_get_issue(DOMAIN, issue_id(config_entry))
        others.pop().close()
        await wait_until(lambda: emulator.open_streams() == 2)
        async_fire_time_changed(hass, fire_all=True)
        await wait_until(lambda: config_entry.state is ConfigEntryState.LOADED)
        assert issue_registry.async_get_issue(DOMAIN, issue_id(config_entry)) is None
        for stream in others:
            stream.close()
    await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.parametrize(
    ("setup_error", "state"),
    [
        ("refuse", ConfigEntryState.SETUP_ERROR),
        ("fail", ConfigEntryState.SETUP_RETRY),
    ],
)
async def test_setup_errors(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    setup_error: str,
    state: ConfigEntryState,
) -> None:
    if setup_error == "refuse":
        emulator.refuse_key("demo")
    else:
        emulator.fail_streams(503)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is state
    if setup_error == "refuse":  # a bad key at setup asks for a new one
        assert list(config_entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert emulator.open_streams() == 0


async def test_long_outage_is_shown_and_logged_once(
    monkeypatch: pytest.MonkeyPatch,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(link_module, "LINK_GRACE", 0.1)
    caplog.set_level(logging.INFO, logger="custom_components.sprecord")
    emulator.fail_streams(503, count=10_000)
    emulator.drop_streams()
    await wait_for_state(hass, CONNECTED, STATE_OFF)
    assert hass.states.get(CALL_STATE).state == STATE_UNAVAILABLE
    tries = emulator.stats.rejected_forced
    await wait_until(lambda: emulator.stats.rejected_forced > tries + 3)
    emulator._forced.clear()  # the server is back
    await wait_for_state(hass, CONNECTED, STATE_ON)
    assert hass.states.get(CALL_STATE).state == "idle"
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.sprecord") and r.levelno >= logging.INFO
    ]
    assert len(messages) == 2
    assert messages[0].startswith("The SpRecord event stream is down, reconnecting")
    assert "503" in messages[0]
    assert messages[1] == "The SpRecord event stream is back"


async def test_unload_closes_the_stream_and_stops(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 0)
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    connects = emulator.stats.connects
    await asyncio.sleep(0.1)
    assert emulator.stats.connects == connects  # no reconnect after unload


async def test_a_stream_cut_and_reopened_at_once_writes_no_entity(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    """Entities show `available`: a cut that does not change it is no news."""
    entities = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), setup_entry.entry_id
        )
    ]
    reported = {
        entity_id: state.last_reported
        for entity_id in entities
        if (state := hass.states.get(entity_id)) is not None
    }
    assert len(reported) >= 10
    link = setup_entry.runtime_data.link
    emulator.drop_streams("close")
    await wait_until(lambda: link.stats.drops == 1)
    await wait_until(lambda: emulator.stats.connects == 2 and link.connected)
    await hass.async_block_till_done()
    for entity_id, last_reported in reported.items():
        assert hass.states.get(entity_id).last_reported == last_reported


async def test_a_stream_stopped_by_a_refused_key_is_read_no_more(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    stream = setup_entry.runtime_data.link.stream
    assert stream.reading
    emulator.refuse_key("demo")
    await wait_for_state(hass, CONNECTED, STATE_OFF)
    await wait_until(lambda: not stream.reading)
