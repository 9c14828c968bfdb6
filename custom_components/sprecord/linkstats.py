"""What the link did, for diagnostics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_COUNTED_TYPES = 32
"""Event types counted by name in diagnostics; more go under `OTHER_TYPES`."""
OTHER_TYPES = "(other types)"


@dataclass
class LinkStats:
    """What the link did, for diagnostics."""

    connects: int = 0
    drops: int = 0
    auth_failures: int = 0
    busy_refusals: int = 0
    malformed_events: int = 0
    duplicates: int = 0
    """Events that came on both transports and were handled once."""
    last_error: str | None = None
    tcp_keepalive: bool | None = None
    """Whether the kernel probes the peer of the last stream opened."""
    last_connected: datetime | None = None
    last_event: datetime | None = None
    events_by_type: Counter[str] = field(default_factory=Counter)
    events_by_transport: Counter[str] = field(default_factory=Counter)

    def count_type(self, event_type: str) -> None:
        """Count an event by its type, within a bound on the number of types."""
        by_type = self.events_by_type
        if event_type in by_type or len(by_type) < MAX_COUNTED_TYPES:
            by_type[event_type] += 1
        else:
            by_type[OTHER_TYPES] += 1

    def as_dict(self) -> dict[str, Any]:
        """Return the figures, JSON-friendly."""
        return {
            "connects": self.connects,
            "drops": self.drops,
            "auth_failures": self.auth_failures,
            "busy_refusals": self.busy_refusals,
            "malformed_events": self.malformed_events,
            "duplicates": self.duplicates,
            "last_error": self.last_error,
            "tcp_keepalive": self.tcp_keepalive,
            "last_connected": _iso(self.last_connected),
            "last_event": _iso(self.last_event),
            "events_by_type": dict(self.events_by_type),
            "events_by_transport": dict(self.events_by_transport),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
