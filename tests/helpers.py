"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import importlib.util
import os
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntry
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.config_flow import account_id
from custom_components.sprecord.const import CONF_CALL_TIMEOUT, DOMAIN
from emulator import SpRecordEmulator

PBX_NAME = "SpRecord MiniPBX"
"""The name of the emulator's first PBX, as the options form shows it."""


async def wait_until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    """Wait until `condition()` is true (the stream is read in the background).

    It yields to the loop without timers and measures real time, so it also
    works while a test has frozen the clock (the loop's time stands still).
    """
    deadline = os.times().elapsed + timeout
    while not condition():
        if os.times().elapsed > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0)


async def wait_for_state(
    hass: HomeAssistant, entity_id: str, state: str, timeout: float = 3.0
) -> State:
    """Wait until an entity has a state; return it."""
    await wait_until(
        lambda: (s := hass.states.get(entity_id)) is not None and s.state == state,
        timeout,
    )
    result = hass.states.get(entity_id)
    assert result is not None
    return result


def device_with(hass: HomeAssistant, identifier: tuple[str, str]) -> DeviceEntry:
    """Return the registered device that has `identifier`.

    Looked up through the config entries of the integration: the lookup call
    Home Assistant offers differs between 2025.4 (`async_get_device`) and the
    newest release, which also deprecates reading `devices` as a mapping.
    """
    registry = dr.async_get(hass)
    for entry in hass.config_entries.async_entries(identifier[0]):
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            if identifier in device.identifiers:
                return device
    raise LookupError(f"no device with {identifier}")


def has_device(hass: HomeAssistant, identifier: tuple[str, str]) -> bool:
    """Tell whether a device with `identifier` is registered."""
    try:
        device_with(hass, identifier)
    except LookupError:
        return False
    return True


async def remove_device(client: Any, entry_id: str, device_id: str) -> bool:
    """Remove a device from an entry as the UI does; tell whether it worked."""
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry_id,
            "device_id": device_id,
        }
    )
    return bool((await client.receive_json())["success"])


async def wait_for_sms(
    hass: HomeAssistant, entity_id: str, text: str, timeout: float = 3.0
) -> State:
    """Wait until an SMS sensor or event entity shows the text; return its state.

    The last SMS sensor's state is the time the SMS came; the text is an
    attribute (shown, never recorded).
    """
    await wait_until(
        lambda: (
            (s := hass.states.get(entity_id)) is not None
            and s.attributes.get("text") == text
        ),
        timeout,
    )
    result = hass.states.get(entity_id)
    assert result is not None
    return result


async def open_settings(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Open the entry's options at the settings form (from the options' menu)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "settings"}
    )


async def set_options(
    hass: HomeAssistant, entry: MockConfigEntry, addresses: dict[str, str]
) -> dict[str, Any]:
    """Save these local auto-dial addresses (PBX name -> address) in the options.

    As a user does: the options' menu, the PBX (picked by the name it is
    shown under, when the entry has several), its address. Return the last
    flow's last result.
    """
    result: Any = {}
    for name, address in addresses.items():
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "local_autodial"}
        )
        if result["step_id"] == "local_autodial":
            [selector] = result["data_schema"].schema.values()
            [pbx] = [
                option["value"]
                for option in selector.config["options"]
                if option["label"] == name
            ]
            result = await hass.config_entries.options.async_configure(
                result["flow_id"], {"pbx": pbx}
            )
        assert result["step_id"] == "autodial_address"
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"address": address}
        )
        await hass.async_block_till_done()
    return dict(result)


async def set_up_short_call_entry(
    hass: HomeAssistant, emulator: SpRecordEmulator
) -> MockConfigEntry:
    """Set up an entry whose longest call is the shortest (5 min), streaming."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="SpRecord MiniPBX",
        data={CONF_URL: emulator.url, CONF_API_KEY: "demo"},
        options={CONF_CALL_TIMEOUT: 5},
        unique_id=account_id("demo"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    return entry


def load_script(name: str) -> ModuleType:
    """Load `scripts/<name>.py` as a module (scripts are not a package)."""
    path = Path(__file__).parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module
