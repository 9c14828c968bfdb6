"""Diagnostics: the link and the calls, with key, numbers and SMS redacted."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import wait_until
from .test_states import call, end

SECOND_PBX = "K2xPq9Vd0aZr+Lm4Tt8Wc1Yb7Ue3Ns6Hf5Jg0Qi2Ro9="
SECRETS = [
    "demo",
    DEFAULT_DEVICE_ID,
    SECOND_PBX,
    "+79161234567",
    "+79031234567",
    "Секретный код 4821",
]


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    emulator.emit("incoming_call", call(1, trunk="GSM1"))
    emulator.emit("answer_elsewhere", {"call_id": 1, "number": "107"})
    emulator.emit("call_end", end(1, status="busy"))
    emulator.emit("incoming_call", call(2, trunk="GSM2"))
    emulator.emit(
        "incoming_sms",
        {"sms_src": "+79031234567", "text": "Секретный код 4821", "trunk": "GSM1"},
    )
    emulator.emit("incoming_call", call(1, trunk="GSM1"), device_id=SECOND_PBX)
    emulator.emit_raw(b"data: {bad\r\n\r\n")
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: sum(stats.events_by_type.values()) == 6)
    await wait_until(lambda: stats.malformed_events == 1)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    text = json.dumps(diagnostics, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text
    assert diagnostics["link"]["connects"] == 1
    assert diagnostics["link"]["malformed_events"] == 1
    assert diagnostics["link"]["events_by_type"]["incoming_call"] == 3
    first, second = diagnostics["pbxs"]
    assert first["calls"]["missed_count"] == 1
    assert second["calls"]["state"] == "ringing"
    assert second["name"] == "SpRecord MiniPBX 2"
    streams = diagnostics["link"]["streams"]
    assert streams["cuts"] == 0
    assert streams["connected_share"] > 0.5
    assert diagnostics == snapshot(
        exclude=props(
            "entry_id",
            "created_at",
            "modified_at",
            "server",
            "url",
            "last_connected",
            "last_event",
            "started",
            "answered",
            "ended",
            # Real time: the streams' figures vary by the machine's speed.
            "connected_share",
            "disconnected_seconds",
        )
    )
