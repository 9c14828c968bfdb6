"""Names of a PBX's device and entities, and of the signals they listen to.

Free of Home Assistant: storage reads them with the entry not loaded, the
PBX model and the edge build on them.
"""

from __future__ import annotations

import hashlib

from .const import DOMAIN

LINE_MARK = "_line_"
PBX_MARK = "_pbx_"

TOPIC_CALLS = "calls"
TOPIC_ENDED = "ended"
TOPIC_SMS = "sms"
TOPIC_AUTODIAL = "autodial"
"""The PBX's current auto-dial task: its status changed."""


def line_topic(trunk: str) -> str:
    """Return the topic of one line (its entities follow it)."""
    return f"line:{trunk}"


def pbx_key(pbx_id: str) -> str:
    """Return a short, stable key of a PBX id for unique ids (not the id)."""
    return hashlib.sha256(f"{DOMAIN}:pbx:{pbx_id}".encode()).hexdigest()[:12]


def unique_prefix(entry_unique_id: str, pbx_id: str | None, number: int) -> str:
    """Return the start of the unique ids of a PBX's device and entities.

    The entry's first PBX keeps the entry's own unique id, as before an
    account could have several PBXs: an update keeps its entities.
    """
    if number == 1 or pbx_id is None:
        return entry_unique_id
    return f"{entry_unique_id}{PBX_MARK}{pbx_key(pbx_id)}"


def line_identifier(prefix: str, trunk: str) -> str:
    """Return the device identifier of a line of the PBX with `prefix`."""
    return f"{prefix}{LINE_MARK}{trunk}"


def device_part(
    entry_unique_id: str, pbx_id: str | None, number: int, identifier: str
) -> tuple[bool, str | None] | None:
    """Tell what a device identifier is of a PBX: (is the PBX, line or None).

    None when the identifier is not of this PBX.
    """
    prefix = unique_prefix(entry_unique_id, pbx_id, number)
    if identifier == prefix:
        return True, None
    line_prefix = f"{prefix}{LINE_MARK}"
    if identifier.startswith(line_prefix):
        return False, identifier.removeprefix(line_prefix)
    return None


# --- dispatcher signals (Home Assistant's `async_dispatcher_send`) -----------


def signal_link(entry_id: str) -> str:
    """Return the signal sent when the entry's link goes up or down."""
    return f"{DOMAIN}_{entry_id}_link"


def signal_new_pbx(entry_id: str) -> str:
    """Return the signal sent with a PBX first seen while the entry runs."""
    return f"{DOMAIN}_{entry_id}_new_pbx"


def signal_pbx(entry_id: str, prefix: str, topic: str) -> str:
    """Return the signal sent when a topic of the PBX with `prefix` changed."""
    return f"{DOMAIN}_{entry_id}_{prefix}_{topic}"


def signal_new_line(entry_id: str) -> str:
    """Return the signal sent with a PBX and its line seen for the first time."""
    return f"{DOMAIN}_{entry_id}_new_line"


EVENT_KIND_CALL = "call"
EVENT_KIND_SMS = "sms"
EVENT_KIND_PBX = "pbx"


def signal_event(entry_id: str, prefix: str, kind: str) -> str:
    """Return the signal sent with each event of a PBX of one kind.

    Each event entity takes one kind (`EVENT_KIND_*`): an event reaches only
    the entity it is for.
    """
    return signal_pbx(entry_id, prefix, f"event_{kind}")


def signal_autodial_ended(entry_id: str, prefix: str) -> str:
    """Return the signal sent with (how, task) when a PBX's followed task ended."""
    return signal_pbx(entry_id, prefix, "autodial_ended")
