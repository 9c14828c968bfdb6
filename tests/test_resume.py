"""Nothing lost across a restart: the stream resumes where it was, from storage.

Also: the UI's contacts name events from the very start of the setup.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import (
    CONF_API_KEY,
    CONF_NAME,
    CONF_URL,
    EVENT_HOMEASSISTANT_FINAL_WRITE,
    EVENT_HOMEASSISTANT_STOP,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed_exact,
)

from custom_components.sprecord import async_unload_entry
from custom_components.sprecord.api import parse_event
from custom_components.sprecord.config_flow import account_id
from custom_components.sprecord.const import (
    CONF_NUMBERS,
    DOMAIN,
    EVENT_SPRECORD,
    SUBENTRY_CONTACT,
)
from custom_components.sprecord.resume import ResumePosition, StreamPosition
from custom_components.sprecord.storage import (
    RESUME_MAX_AGE,
    SAVE_DELAY,
    STORAGE_VERSION,
    _resume,
)
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_EVENT, CALL_STATE, call, end

QUIET_NIGHT = timedelta(hours=4)
"""Longer than the longest call (three hours unless set)."""


def saved_state(hass_storage: dict[str, Any], entry: MockConfigEntry) -> Any:
    """Return what the entry's store holds."""
    return hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]


async def test_events_sent_while_unloaded_arrive_after_setup_from_storage(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    resume = saved_state(hass_storage, setup_entry)["resume"]
    assert resume["event_id"] == "1"
    assert dt_util.parse_datetime(resume["time"]) is not None
    # Home Assistant is down: the call is answered and ends, another rings.
    emulator.emit("start_talk", call(1))
    emulator.emit("call_end", end(1))
    emulator.emit("incoming_call", call(2, trunk="GSM2"))

    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert hass.states.get(CALL_STATE).attributes["call_id"] == "2"
    assert hass.states.get("sensor.sprecord_minipbx_last_call_result").state == (
        "success"
    )
    link = setup_entry.runtime_data.link
    assert link.stats.events_by_type == {
        "start_talk": 1,
        "call_end": 1,
        "incoming_call": 1,
    }
    assert link.last_event_id == "4"
    assert emulator.stats.max_open_streams == 1


async def test_a_resume_position_older_than_a_day_is_not_sent(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    emulator.emit("incoming_call", call(1))  # long ago, before the restart
    long_ago = dt_util.utcnow() - RESUME_MAX_AGE - timedelta(minutes=1)
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 2,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {"resume": {"event_id": "0", "time": long_ago.isoformat()}},
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    emulator.emit("incoming_sms", {"sms_src": "A", "text": "now", "trunk": "GSM1"})
    link = config_entry.runtime_data.link
    await wait_until(lambda: link.stats.events_by_type["incoming_sms"] == 1)
    assert "incoming_call" not in link.stats.events_by_type
    assert hass.states.get(CALL_STATE).state == "idle"
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_a_resume_position_seen_lately_is_sent_however_old_its_event(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    """The stream was open all along: its last event is days old, no matter."""
    emulator.emit("incoming_call", call(1))
    emulator.emit("call_end", end(1))  # after the saved position
    now = dt_util.utcnow()
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 2,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {
            "resume": {
                "event_id": "1",
                "time": (now - timedelta(days=3)).isoformat(),
                "seen": (now - timedelta(minutes=5)).isoformat(),
            }
        },
    }
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    link = config_entry.runtime_data.link
    await wait_until(lambda: link.stats.events_by_type == {"call_end": 1})
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_an_unreadable_resume_position_is_not_sent(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    emulator.emit("incoming_call", call(1))
    now = dt_util.utcnow().isoformat()
    for resume in (
        "0",
        {"event_id": "0", "time": "yesterday"},
        {"event_id": "0", "time": "2026-01-01T00:00:00"},  # no time zone
        {"event_id": "0\r\nX-Forged: 1", "time": now},
        {"event_id": 0, "time": now},
    ):
        hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
            "version": STORAGE_VERSION,
            "minor_version": 2,
            "key": f"{DOMAIN}.{config_entry.entry_id}",
            "data": {"resume": resume},
        }
        if config_entry.entry_id not in hass.config_entries.async_entry_ids():
            config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        assert config_entry.runtime_data.link.last_event_id is None
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()
    assert hass.states.get(CALL_STATE).state != "ringing"


async def test_a_ui_contact_names_an_event_handled_at_setup(
    hass: HomeAssistant, emulator: SpRecordEmulator, fast_link: None
) -> None:
    """The contacts are read at setup, not when the entry is loaded."""
    hass.config.country = "RU"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="SpRecord MiniPBX",
        data={CONF_URL: emulator.url, CONF_API_KEY: "demo"},
        unique_id=account_id("demo"),
        subentries_data=[
            ConfigSubentryData(
                data={CONF_NAME: "Mum", CONF_NUMBERS: ["8 (916) 123-45-67"]},
                subentry_type=SUBENTRY_CONTACT,
                title="Mum",
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    seen: list[Event] = []

    @callback
    def collect(event: Event) -> None:
        seen.append(event)

    hass.bus.async_listen(EVENT_SPRECORD, collect)
    forward = hass.config_entries.async_forward_entry_setups

    async def an_event_first(entry: Any, platforms: Any) -> None:
        # Handled while the entry is still being set up.
        event = parse_event(
            {
                "device_id": DEFAULT_DEVICE_ID,
                "event_type": "incoming_call",
                "payload": call(1, src="+79161234567"),
            }
        )
        entry.runtime_data.coordinator.async_handle_event(event, "sse")
        await forward(entry, platforms)

    with patch.object(
        hass.config_entries, "async_forward_entry_setups", an_event_first
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
    [incoming] = seen
    assert incoming.data["caller_name"] == "Mum"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_start_without_events_keeps_the_resume_position(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    first = saved_state(hass_storage, setup_entry)["resume"]
    # A short start in which nothing happens.
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    resume = saved_state(hass_storage, setup_entry)["resume"]
    assert (resume["event_id"], resume["time"]) == (first["event_id"], first["time"])


async def test_a_quiet_night_with_the_stream_open_is_no_absence(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    """What the backlog replays is counted from when the stream was last seen."""
    emulator.emit("incoming_call", call(1))
    emulator.emit("call_end", end(1))
    link = setup_entry.runtime_data.link
    await wait_until(lambda: link.stats.events_by_type.total() == 2)
    freezer.tick(QUIET_NIGHT)  # the entry loaded, the stream open
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    # A reload: a call rings and ends meanwhile.
    emulator.emit("incoming_call", call(2))
    emulator.emit("call_end", end(2))
    fired = async_capture_events(hass, EVENT_SPRECORD)
    writes = async_capture_events(hass, "state_changed")
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await wait_until(lambda: len(fired) == 2)
    assert not any(event.data.get("replayed") for event in fired)
    triggered = [
        w.data["new_state"].attributes["event_type"]
        for w in writes
        if w.data["entity_id"] == CALL_EVENT
        and w.data["new_state"].attributes.get("call_id") == "2"
    ]
    assert triggered == ["incoming_call", "call_end"]


async def test_home_assistant_stopping_saves_when_the_stream_was_last_seen(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    """Home Assistant stops without unloading its entries: the final write."""
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    freezer.tick(timedelta(seconds=SAVE_DELAY + 1))  # the event is saved
    async_fire_time_changed_exact(hass)
    await hass.async_block_till_done()
    saved_at = dt_util.utcnow()
    assert (
        dt_util.parse_datetime(saved_state(hass_storage, setup_entry)["resume"]["seen"])
        == saved_at
    )
    freezer.tick(QUIET_NIGHT)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    resume = saved_state(hass_storage, setup_entry)["resume"]
    assert resume["event_id"] == "1"
    assert dt_util.parse_datetime(resume["seen"]) == saved_at + QUIET_NIGHT


async def test_an_event_sent_while_the_entry_unloads_comes_after_the_next_setup(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    link = setup_entry.runtime_data.link
    emulator.emit("startup")
    await wait_until(lambda: link.last_event_id == "1")
    unload_platforms = hass.config_entries.async_unload_platforms

    async def events_meanwhile(entry: Any, platforms: Any) -> bool:
        emulator.emit("incoming_call", call(1))
        # The stream is closed already (were it read, the call would come now).
        await wait_until(
            lambda: (
                link.stats.events_by_type["incoming_call"] == 1
                or emulator.open_streams() == 0
            )
        )
        # A webhook post is answered and dropped.
        link.async_deliver(
            parse_event(
                {
                    "device_id": DEFAULT_DEVICE_ID,
                    "event_type": "incoming_sms",
                    "payload": {"sms_src": "A", "text": "t", "trunk": "GSM1"},
                }
            ),
            "webhook",
        )
        return await unload_platforms(entry, platforms)

    with patch.object(hass.config_entries, "async_unload_platforms", events_meanwhile):
        assert await hass.config_entries.async_unload(setup_entry.entry_id)
    assert link.stats.events_by_type == {"startup": 1}
    assert not link.connected
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await wait_for_state(hass, CALL_STATE, "ringing")


async def test_an_unload_that_fails_takes_events_again(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    with patch.object(
        hass.config_entries, "async_unload_platforms", return_value=False
    ):
        assert not await async_unload_entry(hass, setup_entry)
    await wait_until(lambda: emulator.stats.connects == 2)
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert setup_entry.runtime_data.link.connected
    assert emulator.stats.max_open_streams == 1


async def test_a_resume_position_is_not_sent_to_another_server(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    other = SpRecordEmulator(keepalive=0)
    await other.start()
    try:
        # The other server has events of its own, ids 1 and 2.
        other.emit("incoming_call", call(7))
        other.emit("call_end", end(7))
        # Reconfigured to the other server (its data first, then a reload).
        hass.config_entries.async_update_entry(
            setup_entry, data={**setup_entry.data, CONF_URL: other.url}
        )
        assert await hass.config_entries.async_reload(setup_entry.entry_id)
        await wait_until(lambda: other.open_streams() == 1)
        link = setup_entry.runtime_data.link
        assert link.last_event_id is None
        assert link.stats.events_by_type.total() == 0
        assert await hass.config_entries.async_unload(setup_entry.entry_id)
        resume = saved_state(hass_storage, setup_entry).get("resume")
        assert resume is None  # no event from the new server yet
        assert emulator.url not in str(saved_state(hass_storage, setup_entry))
    finally:
        await other.stop()


async def test_a_server_resuming_at_least_once_sends_nothing_twice_after_a_reload(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    # The server resends the last three events it sent before `Last-Event-ID`.
    emulator.resume_overlap = 3
    fired = async_capture_events(hass, EVENT_SPRECORD)
    for call_id in range(1, 5):
        emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: len(fired) == 4)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    saved = hass_storage[f"{DOMAIN}.{setup_entry.entry_id}"]["data"]["resume"]
    assert [event_id for event_id, _ in saved["handled"]] == ["1", "2", "3", "4"]
    emulator.emit("incoming_sms", {"sms_src": "A", "text": "after", "trunk": "GSM1"})
    await wait_until(lambda: len(fired) == 5)
    await hass.async_block_till_done()

    assert [
        (e.data["event_type"], e.data["payload"].get("call_id")) for e in fired
    ] == [
        ("incoming_call", "1"),
        ("incoming_call", "2"),
        ("incoming_call", "3"),
        ("incoming_call", "4"),
        ("incoming_sms", None),
    ]
    assert setup_entry.runtime_data.link.stats.duplicates == 3


def test_unreadable_handled_events_are_left_out_of_the_saved_position() -> None:
    now = dt_util.utcnow()
    good = ["7", "0123456789abcdef"]
    position = _resume(
        {
            "event_id": "7",
            "time": now.isoformat(),
            "handled": [["6", "short"], good, ["", "0123456789abcdef"], "x", [1, 2]],
        },
        now,
        None,
    )
    assert position is not None
    assert position.handled == (("7", "0123456789abcdef"),)
    assert _resume({"event_id": "7", "time": now.isoformat()}, now, None) == (
        ResumePosition("7", now)
    )


def test_a_webhook_only_entry_keeps_no_position() -> None:
    now = dt_util.utcnow()
    saved = ResumePosition("7", now)
    position = StreamPosition(saved, kept=False)
    assert position.event_id is None  # the stand-in stream starts afresh
    position.opened()
    position.handled("8", now)
    assert position.saved(now) is None
    kept = StreamPosition(saved)
    kept.handled("8", now)
    assert kept.saved(now) == ResumePosition("8", now)
