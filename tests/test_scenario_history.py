"""The demo scenario drives the same entity states, write by write.

Each scenario plays over the real stream with a frozen clock, one event at a
time; every state written by the integration's entities is recorded and
compared with the history recorded before a refactoring
(`tests/scenario_history/*.json`). A change of behaviour shows as a diff of
those files: record them again with `SPRECORD_RECORD_HISTORY=1` only for a
change meant to be seen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import json
import os
from pathlib import Path
import random
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.json import JSONEncoder
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD
from emulator import SpRecordEmulator
from emulator.scenarios import SCENARIOS

from .helpers import wait_until

HISTORY_DIR = Path(__file__).parent / "scenario_history"
START = datetime.fromisoformat("2026-03-02T06:00:00+00:00")
DAYS = 2
DAY_SECONDS = 330.0
"""An office day lasts about five and a half minutes."""
SEED = 20260302


@pytest.fixture(autouse=True)
def _all_entities(entity_registry_enabled_by_default: None) -> None:
    """Enable every entity, also those disabled by default."""


def _steps(name: str, pbxs: int) -> list[Any]:
    """Return the steps of the first `DAYS` days of a scenario."""
    steps = []
    elapsed = 0.0
    for step in SCENARIOS[name](random.Random(SEED), pbxs=pbxs):
        elapsed += step.delay
        if elapsed > DAYS * DAY_SECONDS:
            return steps
        steps.append(step)
    return steps  # pragma: no cover (the scenarios are endless)


def _state(domain: str, state: str) -> str:
    """Return a state as compared: an event entity's time to the second.

    The newest Home Assistant moves an event entity's time on by 1 ms when
    it fires twice within one (a call end that is also a missed call).
    """
    return state[:19] if domain == "event" else state


@pytest.mark.parametrize("pbxs", [1, 2])
async def test_office_history_unchanged(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    patient_stream: None,
    freezer: FrozenDateTimeFactory,
    pbxs: int,
) -> None:
    freezer.move_to(START)
    for _ in range(pbxs - 1):
        emulator.add_pbx(key="demo")
    devices = emulator.pbxs("demo")
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)

    registry = er.async_get(hass)
    history: list[dict[str, Any]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        entry = registry.async_get(event.data["entity_id"])
        if entry is None or entry.platform != DOMAIN:
            return
        new = event.data["new_state"]
        history.append(
            {
                "t": round((new.last_updated - START).total_seconds(), 3)
                if new is not None
                else None,
                "entity_id": event.data["entity_id"],
                "state": None if new is None else _state(new.domain, new.state),
                "attributes": None if new is None else dict(new.attributes),
            }
        )

    unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    handled = async_capture_events(hass, EVENT_SPRECORD)
    for step in _steps("office", pbxs):
        # Whole seconds, at least one: the two ends of Home Assistant round
        # sub-millisecond times apart.
        freezer.tick(timedelta(seconds=max(round(step.delay), 1)))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
        expected = len(handled) + 1
        emulator.emit(
            step.event_type, step.payload, device_id=devices[step.pbx % len(devices)]
        )
        await wait_until(lambda expected=expected: len(handled) >= expected)
        await hass.async_block_till_done()
    # The calls left open expire; the entities show it.
    freezer.tick(timedelta(hours=3))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    unsub()
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()

    # An entity's own history is compared write by write; the order in which
    # different entities are written within one update is not behaviour.
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for write in history:
        by_entity.setdefault(write.pop("entity_id"), []).append(write)
    recorded = json.loads(json.dumps(by_entity, cls=JSONEncoder, sort_keys=True))
    path = HISTORY_DIR / f"office_{pbxs}.json"
    if os.environ.get("SPRECORD_RECORD_HISTORY"):
        path.write_text(
            json.dumps(recorded, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        )
    saved = json.loads(path.read_text())
    assert sorted(recorded) == sorted(saved)
    for entity_id, writes in saved.items():
        assert len(recorded[entity_id]) == len(writes), entity_id
        for n, (got, want) in enumerate(zip(recorded[entity_id], writes, strict=True)):
            assert got == want, f"{entity_id}: write {n} differs"
