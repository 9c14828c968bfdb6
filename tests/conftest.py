"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

# Import the integration before the harness mounts its own test config, whose
# `custom_components` package would otherwise hide ours.
import custom_components.sprecord  # noqa: F401
from emulator import SpRecordEmulator


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load this repository's integration in hass tests."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[SpRecordEmulator]:
    """Serve an emulated SpRecord cloud on 127.0.0.1 (no keep-alives)."""
    emu = SpRecordEmulator(keepalive=0)
    await emu.start()
    yield emu
    await emu.stop()
