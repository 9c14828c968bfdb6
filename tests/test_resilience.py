"""The link holds where users' setups strain it.

Busy servers, our own bugs, a server's odd resume and retry, a line removed
while the entry is down.
"""

from __future__ import annotations

import logging
from typing import Any
from unittest.mock import patch

import aiohttp
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.sprecord import reconnect as reconnect_module
from custom_components.sprecord.api import SpRecordClient
from custom_components.sprecord.const import (
    DOMAIN,
    EVENT_SPRECORD,
    ISSUE_TOO_MANY_CONNECTIONS,
    TRANSPORT_BOTH,
)
from custom_components.sprecord.event import SpRecordSmsEvent
from emulator import SpRecordEmulator

from .helpers import (
    device_with,
    has_device,
    remove_device,
    wait_for_sms,
    wait_for_state,
    wait_until,
)
from .test_states import CALL_STATE, GSM1, LAST_SMS, call, end
from .test_webhook import make_entry

CONNECTED = "binary_sensor.sprecord_minipbx_cloud_connection"
CALL_EVENT = "event.sprecord_minipbx_call"


async def test_both_transports_load_while_other_clients_hold_every_stream(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    """A 429 at setup: the webhook carries events, SSE keeps retrying."""
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        others = [await client.connect() for _ in range(3)]
        entry = make_entry(emulator, TRANSPORT_BOTH)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.LOADED
        issue_id = f"{ISSUE_TOO_MANY_CONNECTIONS}_{entry.entry_id}"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        emulator.emit("incoming_call", call(1))
        await wait_for_state(hass, CALL_STATE, "ringing")
        assert hass.states.get(CALL_EVENT).state != "unavailable"
        assert hass.states.get(CONNECTED).state == "on"
        stats = entry.runtime_data.link.stats
        assert stats.events_by_transport == {"webhook": 1}
        assert stats.busy_refusals >= 1
        for stream in others:
            stream.close()
    # The stream gets its turn once the others let go.
    await wait_until(lambda: emulator.open_streams() == 1)
    await wait_until(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    )
    emulator.emit("call_end", end(1))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert emulator.open_streams() == 1
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_bug_handling_one_event_does_not_stop_the_stream(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = SpRecordSmsEvent._on_event

    def broken(self: SpRecordSmsEvent, event: Any, change: Any) -> None:
        if getattr(event, "text", "") == "boom":
            raise RuntimeError("a bug in an entity")
        original(self, event, change)

    with patch.object(SpRecordSmsEvent, "_on_event", broken):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await wait_until(lambda: emulator.open_streams() == 1)
        emulator.emit("incoming_sms", {"sms_src": "A", "text": "boom", "trunk": "GSM1"})
        emulator.emit("incoming_call", call(1))
        await wait_for_state(hass, CALL_STATE, "ringing")
    # The other listeners and entities still saw the event that broke one.
    assert hass.states.get(LAST_SMS).attributes["text"] == "boom"
    stats = config_entry.runtime_data.link.stats
    assert stats.connects == 1  # the stream never stopped
    assert stats.drops == 0
    assert hass.states.get(CONNECTED).state == "on"
    # Logged with its traceback (Home Assistant's dispatcher writes it out).
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        "Traceback" in m and "RuntimeError: a bug in an entity" in m for m in errors
    )
    assert "Task exception was never retrieved" not in caplog.text
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_a_servers_huge_retry_is_capped(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    """`retry: 86400000` (a day) must not keep the stream away for a day."""
    emulator.emit_raw(b"retry: 86400000\n\n")
    emulator.emit("startup")
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: stats.events_by_type["startup"] == 1)
    emulator.drop_streams("close")
    await wait_until(lambda: emulator.stats.connects == 2)
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")


async def test_events_a_resuming_server_sends_again_are_handled_once(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    """A server that resumes at-least-once repeats events after reconnecting."""
    emulator.resume_overlap = 3
    bus = async_capture_events(hass, EVENT_SPRECORD)
    for number in range(1, 5):
        emulator.emit("incoming_call", call(number, trunk="GSM1"))
    await wait_until(lambda: len(bus) == 4)
    emulator.drop_streams("abort")
    await wait_until(lambda: emulator.stats.connects == 2)
    emulator.emit("call_end", end(4))
    await wait_until(lambda: any(e.data["event_type"] == "call_end" for e in bus))
    await hass.async_block_till_done()
    assert [e.data["payload"]["call_id"] for e in bus] == ["1", "2", "3", "4", "4"]
    assert setup_entry.runtime_data.link.stats.duplicates == 3
    # The same ids with other content (a restarted server counts again) are new.
    emulator.restart_ids()
    emulator.emit("incoming_sms", {"sms_src": "B", "text": "new", "trunk": "GSM1"})
    await wait_for_sms(hass, LAST_SMS, "new")


async def test_a_line_can_be_removed_while_the_entry_is_not_loaded(
    hass: HomeAssistant,
    hass_ws_client: Any,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    await wait_for_state(hass, GSM1, "ringing")
    line_id = (DOMAIN, f"{setup_entry.unique_id}_line_GSM1")
    line = device_with(hass, line_id)
    # The server fails for a while: the entry waits to retry its setup.
    emulator.fail_streams(500, count=100)
    await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.SETUP_RETRY

    client = await hass_ws_client(hass)
    assert await remove_device(client, setup_entry.entry_id, line.id)
    assert not has_device(hass, line_id)

    # Back up: the removed line does not come back by itself.
    emulator.clear_failures()
    await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.LOADED
    assert "GSM1" not in setup_entry.runtime_data.tracker.lines
    assert not has_device(hass, line_id)


async def test_a_stream_that_lived_a_while_is_followed_at_once_every_time(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24: a cut after a while is no failure; no wait, however often."""
    monkeypatch.setattr(reconnect_module, "BACKOFF_MIN", 5.0)
    # Every stream here has lived "a while" when it is cut.
    monkeypatch.setattr(reconnect_module, "HEALTHY_STREAM_SECONDS", 0.0)
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    for connects in range(2, 6):
        emulator.drop_streams("close")
        # Well under the backoff's least wait (half of 5 s).
        await wait_until(lambda n=connects: emulator.stats.connects == n, timeout=1.5)
    emulator.emit("call_end", end(1))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert emulator.stats.max_open_streams == 1


async def test_a_stream_that_ends_at_once_gets_the_backoff(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that closes streams on arrival gets no tight loop.

    Even when the stream carried an event before it ended: a server that
    resends its last event and closes would otherwise be a loop.
    """
    monkeypatch.setattr(reconnect_module, "BACKOFF_MIN", 5.0)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.drop_streams("close")
    with pytest.raises(TimeoutError):
        await wait_until(lambda: emulator.stats.connects == 2, timeout=1.5)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
