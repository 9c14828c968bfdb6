"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.core import HomeAssistant, State


async def wait_until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    """Wait until `condition()` is true (the stream is read in the background)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


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
