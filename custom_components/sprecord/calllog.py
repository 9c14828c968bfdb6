"""The call list: one entry per finished call, as a phone's recent calls show.

Each PBX keeps its last `MAX_RECENT` finished calls (saved across restarts)
for the recent-calls sensor, and fires one `sprecord_log` bus event per
finished call and per SMS (without its text): the logbook describes those,
one readable line each, instead of every step of a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .calls import Call, Direction

MAX_RECENT = 20
"""Finished calls a PBX lists, newest first."""
KIND_CALL = "call"
KIND_SMS = "sms"
RESULT_MISSED = "missed"
RESULT_UNKNOWN = "unknown"
"""A call whose end never came (expired, or the PBX restarted)."""
_FIELDS = (
    "time",
    "direction",
    "number",
    "name",
    "line",
    "result",
    "duration",
    "answered_by",
    "answered_by_name",
)


def call_entry(call: Call) -> dict[str, Any]:
    """Return a finished call as an entry of the list (JSON-friendly).

    `number` and `name` are the other party's: the caller of an incoming
    call, the number called of an outgoing one. `result` is the PBX's status
    of the call (`success`, `busy`, …), `missed` for an unanswered incoming
    call, `unknown` when the end never came.
    """
    outgoing = call.direction is Direction.OUTGOING
    number = call.called if outgoing else call.caller
    name = call.called_name if outgoing else call.caller_name
    if call.missed:
        result = RESULT_MISSED
    elif call.status is not None and call.status.is_known:
        result = call.status.value
    else:
        result = RESULT_UNKNOWN
    ended = call.ended or call.updated
    return {
        "time": ended.isoformat(),
        "direction": call.direction.value,
        "number": number,
        "name": name,
        "line": call.trunk,
        "result": result,
        "duration": call.duration,
        "answered_by": call.answered_by,
        "answered_by_name": None,
    }


def restore_entries(saved: Any) -> list[dict[str, Any]]:
    """Return the saved entries that still read as entries, at most MAX_RECENT."""
    if not isinstance(saved, list):
        return []
    entries = [
        {key: item.get(key) for key in _FIELDS}
        for item in saved
        if isinstance(item, Mapping) and isinstance(item.get("time"), str)
    ]
    return entries[:MAX_RECENT]
