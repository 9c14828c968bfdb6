"""An SMS's text never reaches the disk: not the database, not `.storage/`.

The text is shown while Home Assistant runs (the SMS event entity, the last
SMS sensor's `text`), but it is not recorded, not restored, not saved with
the integration's state and not in the `sprecord_event` bus event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import restore_state
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.sprecord.const import EVENT_SPRECORD, EVENT_SPRECORD_LOG
from emulator import SpRecordEmulator

from .helpers import wait_until

LAST_SMS = "sensor.sprecord_minipbx_last_sms"
SMS_EVENT = "event.sprecord_minipbx_sms"
SECRET = "Nebula-7731 код доступа 4821"
"""A text no other part of a test's data holds."""
SENDER = "+79990001122"


def _disk_bytes(db_url: str, config_dir: str) -> bytes:
    """Return the database files and every file under `.storage/`, joined."""
    database = Path(db_url.removeprefix("sqlite:///"))
    files = sorted(database.parent.glob(f"{database.name}*"))
    assert files, db_url
    files += sorted(Path(config_dir, ".storage").rglob("*"))
    return b"".join(path.read_bytes() for path in files if path.is_file())


def _storage_text(hass_storage: dict[str, Any]) -> str:
    """Return what Home Assistant's stores hold (the harness keeps them here)."""
    return json.dumps(hass_storage, ensure_ascii=False)


@pytest.mark.parametrize("persistent_database", [True])
async def test_sms_text_is_nowhere_on_disk_after_a_restart(
    recorder_mock: Any,
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    recorder_db_url: str,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    bus: list[Event] = []

    @callback
    def listen(event: Event) -> None:
        bus.append(event)

    hass.bus.async_listen(EVENT_SPRECORD, listen)
    hass.bus.async_listen(EVENT_SPRECORD_LOG, listen)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)

    emulator.emit("incoming_sms", {"sms_src": SENDER, "text": SECRET, "trunk": "GSM1"})
    await wait_until(
        lambda: (
            (s := hass.states.get(LAST_SMS)) is not None
            and s.attributes.get("text") == SECRET
        )
    )
    await hass.async_block_till_done()
    # Shown while Home Assistant runs: on the event entity and the sensor.
    assert hass.states.get(SMS_EVENT).attributes["text"] == SECRET
    sensor = hass.states.get(LAST_SMS)
    assert dt_util.parse_datetime(sensor.state) is not None  # when, not what
    assert SECRET not in sensor.state
    # The bus events name the sender, never the text.
    [sms_event] = [e for e in bus if e.data.get("event_type") == "incoming_sms"]
    assert sms_event.data["payload"]["sms_src"] == SENDER
    assert "text" not in sms_event.data["payload"]
    assert all(SECRET not in json.dumps(e.data, ensure_ascii=False) for e in bus)

    # A restart: the entry goes (its state saved), Home Assistant's restore
    # state is written, the entry comes back from what was saved.
    await async_wait_recording_done(hass)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    await restore_state.async_get(hass).async_dump_states()
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await hass.async_block_till_done()
    restored = hass.states.get(LAST_SMS)
    assert restored.state == sensor.state
    assert restored.attributes["sender"] == SENDER
    assert restored.attributes["text"] is None
    assert hass.states.get(SMS_EVENT).state == "unknown"  # not restored

    await restore_state.async_get(hass).async_dump_states()
    await async_wait_recording_done(hass)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    on_disk = _disk_bytes(recorder_db_url, hass.config.config_dir)
    stores = _storage_text(hass_storage)
    # The search sees what was written: the sender is there, the text is not.
    assert SENDER.encode() in on_disk
    assert SENDER in stores
    assert "core.restore_state" in hass_storage
    assert SECRET.encode() not in on_disk
    assert SECRET.split(maxsplit=1)[0].encode() not in on_disk
    assert SECRET not in stores
    assert SECRET.split(maxsplit=1)[0] not in stores


async def test_a_text_saved_by_an_older_version_is_dropped(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    """The integration's store and the restore state lose an old SMS's text."""
    received = "2026-11-27T09:00:00+00:00"
    last_sms = {
        "text": SECRET,
        "sender": SENDER,
        "sender_name": None,
        "line": "GSM1",
        "date": None,
        "received": received,
    }
    hass_storage[f"sprecord.{config_entry.entry_id}"] = {
        "version": 1,
        "minor_version": 2,
        "key": f"sprecord.{config_entry.entry_id}",
        "data": {"pbx_id": None, "number": 1, "lines": ["GSM1"], "last_sms": last_sms},
    }
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(
                    SMS_EVENT,
                    "2026-11-27T09:00:00.000+00:00",
                    {"event_type": "incoming_sms", "text": SECRET, "sms_src": SENDER},
                ),
                {
                    "last_event_type": "incoming_sms",
                    "last_event_attributes": {"text": SECRET, "sms_src": SENDER},
                },
            )
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await hass.async_block_till_done()
    sensor = hass.states.get(LAST_SMS)
    assert dt_util.parse_datetime(sensor.state) == dt_util.parse_datetime(received)
    assert sensor.attributes["text"] is None
    assert sensor.attributes["sender"] == SENDER
    event = hass.states.get(SMS_EVENT)
    assert event.state == "unknown"
    assert "text" not in event.attributes

    await restore_state.async_get(hass).async_dump_states()
    assert SECRET not in json.dumps(hass_storage["core.restore_state"])
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    # With the entity gone, Home Assistant saves what it had restored for it
    # again: the old text must not be among that.
    await restore_state.async_get(hass).async_dump_states()
    stores = _storage_text(hass_storage)
    assert SENDER in stores
    assert SECRET not in stores
