"""What a loaded entry holds, and the entry's type that says so."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .api import SpRecordClient
from .calls import CallTracker
from .coordinator import SpRecordCoordinator
from .link import Link


@dataclass
class SpRecordRuntimeData:
    """What a loaded entry holds: the client, its link, its PBXs."""

    client: SpRecordClient
    coordinator: SpRecordCoordinator
    link: Link

    @property
    def tracker(self) -> CallTracker:
        """Return the call tracker of the entry's first PBX."""
        return self.coordinator.primary.tracker


type SpRecordConfigEntry = ConfigEntry[SpRecordRuntimeData]
