"""What survives a restart: each PBX's last call, missed calls, last SMS, lines.

Calls in progress are not saved: after a restart their events may never come,
and a call shown as ringing that no longer rings is worse than none (the
stream resumes from before them instead: `journal.py`). Calls that expired
recently are (`expired_calls`, with their place in the call list): a late
end completes such a call's entry instead of listing it twice.

Format: the entry's first PBX's state at the top level, as before an
account could have several PBXs (minor version 1), the other PBXs under
`others` (minor version 2), and where the event stream resumes under
`resume`: the id to resume from (`event_id`), when the last event handled
came (`time`), when Home Assistant last saw the stream open (`seen`), the
last events handled as [id, digest] (`handled`), and a digest of the
server's URL (`server`: a position is only sent to the server it is of).
Held back before calls in progress, it also has their events (`again`,
[id, digest]) and the id of the last event handled (`latest`). Each change
is additive: an older version of the integration reads the first PBX's
state and ignores the rest (it would resume from a held-back id and handle
some events again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import hashlib
from typing import Any, TypeGuard

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .ids import device_part, unique_prefix
from .pbx import Pbx
from .resume import MAX_SAVED_EVENTS, ResumePosition

STORAGE_VERSION = 1
STORAGE_MINOR_VERSION = 2
SAVE_DELAY = 10.0
RESUME_MAX_AGE = timedelta(days=1)
"""A saved resume id not seen for longer than this is not sent: the server's
history hardly reaches back so far, and a day's replay is no news any more."""
RESUME = "resume"
MAX_RESUME_ID = 256
DIGEST_LENGTH = 16
"""Hex digits of an event's digest (`dedupe.event_digest`)."""


class _Store(Store[dict[str, Any]]):
    """The entry's store: minor version 1 data is read as it is."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> dict[str, Any]:
        """Take 1.1 data as it is: it is 1.2 data without other PBXs."""
        return dict(old_data)


_NOT_FIRST = frozenset({"others", RESUME})


@dataclass
class SavedState:
    """What the store held at setup."""

    pbxs: list[dict[str, Any]] = field(default_factory=list)
    """Each PBX's saved state, the entry's first PBX first."""
    resume: ResumePosition | None = None
    """Where the stream resumes (of this server, not away for over a day)."""


def server_key(url: str) -> str:
    """Return a digest of the server's URL, saved with the resume position."""
    return hashlib.sha256(f"{DOMAIN}:server:{url}".encode()).hexdigest()[:16]


def _time(value: Any) -> datetime | None:
    """Return a saved time (None: none, or not a time with its zone)."""
    if not isinstance(value, str):
        return None
    try:
        time = datetime.fromisoformat(value)
    except ValueError:
        return None
    return time if time.tzinfo is not None else None


def _resume(saved: Any, now: datetime, server: str | None) -> ResumePosition | None:
    """Return the saved resume position if it may be sent.

    Not when it is of another server (the entry was reconfigured), or
    when Home Assistant has not seen the stream for over a day. A position
    saved without `seen` counts from its event's time, one without
    `server` is taken as of this server.
    """
    if not isinstance(saved, dict):
        return None
    event_id, time = saved.get("event_id"), _time(saved.get("time"))
    if not _is_id(event_id) or time is None:
        return None
    if saved.get("server") not in (None, server):
        return None
    again = _handled(saved.get("again"))
    latest = saved.get("latest")
    if not again or not _is_id(latest):
        # Held back for calls in progress, it needs both (or is taken as is).
        again, latest = (), None
    position = ResumePosition(
        event_id,
        time,
        _time(saved.get("seen")),
        _handled(saved.get("handled")),
        again,
        latest,
    )
    if now - position.away_since > RESUME_MAX_AGE:
        return None
    return position


def _is_id(value: Any) -> TypeGuard[str]:
    """Tell whether a saved value reads as an SSE id to send."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_RESUME_ID
        and value.isprintable()
    )


def _handled(saved: Any) -> tuple[tuple[str, str], ...]:
    """Return saved (id, digest) pairs: events handled, or to handle again.

    What cannot be read is left out: the worst is an event handled twice,
    or a call in progress not shown again.
    """
    if not isinstance(saved, list):
        return ()
    return tuple(
        (item[0], item[1])
        for item in saved[-MAX_SAVED_EVENTS:]
        if isinstance(item, list)
        and len(item) == 2
        and _is_id(item[0])
        and isinstance(item[1], str)
        and len(item[1]) == DIGEST_LENGTH
    )


def _saved_pbxs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the saved PBXs, the entry's first first."""
    first = {key: value for key, value in data.items() if key not in _NOT_FIRST}
    return [{"number": 1, **first}, *data.get("others", [])]


class SpRecordStore:
    """Saves the PBXs' lasting state in `.storage/sprecord.<entry>`."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, *, server: str | None = None
    ) -> None:
        """Prepare the store of one entry.

        `server` is the URL of the server the entry's stream is read from
        (the saved resume position is of it); only a digest is saved.
        """
        self._server = None if server is None else server_key(server)
        self._store = _Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry_id}",
            minor_version=STORAGE_MINOR_VERSION,
        )

    async def async_load(self) -> SavedState:
        """Return the saved state (none saved: an empty one)."""
        data = await self._store.async_load()
        if not data:
            return SavedState()
        return SavedState(
            pbxs=_saved_pbxs(data),
            resume=_resume(data.get(RESUME), dt_util.utcnow(), self._server),
        )

    def async_schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save `data()` soon; several changes in a row are written once."""
        self._store.async_delay_save(data, SAVE_DELAY)

    async def async_save_now(self, data: dict[str, Any]) -> None:
        """Save at once (at unload), dropping a pending delayed save."""
        await self._store.async_save(data)

    def dump(self, pbxs: list[Pbx], resume: ResumePosition | None) -> dict[str, Any]:
        """Return the state worth keeping, JSON-friendly (the first PBX first)."""
        first, *others = pbxs
        data = {**first.as_dict(), "others": [pbx.as_dict() for pbx in others]}
        if resume is not None:
            saved: dict[str, Any] = {
                "event_id": resume.event_id,
                "time": resume.time.isoformat(),
            }
            if resume.seen is not None:
                saved["seen"] = resume.seen.isoformat()
            if resume.handled:
                saved["handled"] = [list(pair) for pair in resume.handled]
            if resume.again and resume.latest is not None:
                saved["again"] = [list(pair) for pair in resume.again]
                saved["latest"] = resume.latest
            if self._server is not None:
                saved["server"] = self._server
            data[RESUME] = saved
        return data

    async def async_forget_device(
        self, entry_unique_id: str, identifier: str
    ) -> list[str]:
        """Drop a line or a PBX from the saved state (the entry is not loaded).

        Returns the unique-id prefixes of the PBXs removed (their lines go
        with them).
        """
        data = await self._store.async_load()
        if not data:
            return []
        saved_pbxs = _saved_pbxs(data)
        for saved in saved_pbxs:
            number = int(saved.get("number", 1))
            pbx_id = saved.get("pbx_id")
            part = device_part(entry_unique_id, pbx_id, number, identifier)
            if part is None:
                continue
            is_pbx, line = part
            removed: list[str] = []
            if is_pbx and number != 1:
                saved_pbxs.remove(saved)
                removed.append(unique_prefix(entry_unique_id, pbx_id, number))
            elif line is not None:
                saved["lines"] = [x for x in saved.get("lines", []) if x != line]
            first, *others = saved_pbxs
            kept = {RESUME: data[RESUME]} if RESUME in data else {}
            await self._store.async_save({**first, "others": others, **kept})
            return removed
        return []

    async def async_remove(self) -> None:
        """Delete the saved state (the entry was removed)."""
        await self._store.async_remove()
