"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os

from homeassistant.core import HomeAssistant, State


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
