"""The PBX's auto-dialer: start tasks, follow the ones Home Assistant started.

The auto-dial API is served by the PBX itself on the local network (not by
the cloud), without authentication. A PBX whose local address is set in the
options gets a `PbxAutoDial`: the actions go through it, and every task it
starts is polled until it ends (or the entry unloads); then its event entity
fires `finished` or `stopped` with the per-number results. A task the PBX no
longer knows (`not_found`: it restarted, or the task was deleted) is
`stopped` with the reason `not_found`, once, instead of being polled on.
Its entities follow it through Home Assistant's dispatcher: the PBX's
`TOPIC_AUTODIAL` signal when the task's status changes, and
`signal_autodial_ended()` with how it ended. A task whose start is answered
after the entry began to unload is not followed: nothing is left running,
and nothing is asked after the unload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import ipaddress
import re
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from yarl import URL

from .api.autodial import DEFAULT_PORT, AutoDialClient
from .api.autodial_models import (
    AutoDialCommand,
    AutoDialError,
    AutoDialNotFound,
    NumberResult,
    TaskState,
    TaskStatus,
)
from .api.clean import for_log
from .const import LOGGER
from .ids import TOPIC_AUTODIAL, signal_autodial_ended, signal_pbx

if TYPE_CHECKING:
    from .pbx import Pbx

_HOST_NAME = re.compile(
    r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?", re.IGNORECASE
)
POLL_INTERVAL = 5.0
"""Seconds between two status requests of a task being followed."""
ENDED_STATES = frozenset({TaskState.FINISH, TaskState.STOP})
FINISHED = "finished"
STOPPED = "stopped"
ANSWERED_CODES = frozenset({"talk", "talk_ok"})
"""Per-number result codes that mean someone answered."""
REASON_NOT_FOUND = "not_found"
"""Why a followed task was `stopped` by Home Assistant: the PBX forgot it."""


def parse_address(text: str) -> tuple[str, int]:
    """Return (host, port) of `host`, `host:port`, an IPv6 literal or `[v6]:port`.

    Raises ValueError for anything else.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty address")
    try:
        return str(ipaddress.IPv6Address(value)), DEFAULT_PORT
    except ValueError:
        pass
    try:
        url = URL(f"http://{value}")
    except ValueError as err:
        raise ValueError("not an address") from err
    host = url.raw_host
    if not host or url.raw_path not in ("", "/") or url.query_string or url.user:
        raise ValueError("not an address")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("not an address") from None
    return host, url.explicit_port or DEFAULT_PORT


@dataclass
class FollowedTask:
    """A task Home Assistant started, as last polled."""

    task_id: int
    task: str
    status: TaskStatus | None = None
    results: list[NumberResult] = field(default_factory=list)
    reason: str | None = None
    """Why following ended other than by the task's own end (`not_found`)."""

    @property
    def progress(self) -> int | None:
        """Return the share of numbers done, in percent."""
        status = self.status
        if status is None or status.total <= 0:
            return None
        return min(100, round(100 * status.done / status.total))

    def as_dict(self) -> dict[str, Any]:
        """Return the task as attributes."""
        status = self.status.as_dict() if self.status else {}
        reason = {"reason": self.reason} if self.reason else {}
        return {"task": self.task, "task_id": self.task_id, **status, **reason}


def results_summary(results: list[NumberResult]) -> dict[str, Any]:
    """Return the per-number results, and who answered and who did not."""
    answered = [r.number for r in results if r.result_code in ANSWERED_CODES]
    return {
        "results": [r.as_dict() for r in results],
        "answered": answered,
        "not_answered": [r.number for r in results if r.number not in answered],
    }


class PbxAutoDial:
    """The auto-dialer of one PBX, reachable on the local network."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        pbx: Pbx,
        client: AutoDialClient,
    ) -> None:
        """Prepare; nothing is sent until an action asks."""
        self.hass = hass
        self.entry = entry
        self.pbx = pbx
        self.client = client
        self.current: FollowedTask | None = None
        """The task started last, while it runs and after it ended."""
        self._followed: dict[int, asyncio.Task[None]] = {}
        self._closed = False
        entry.async_on_unload(self._close)

    @callback
    def _close(self) -> None:
        """Follow no task started from now on (the entry unloads)."""
        self._closed = True

    async def async_start(self, task: str, numbers: list[str] | None) -> int:
        """Start a task; follow it until it ends. Return its id."""
        task_id = await self.client.start(task, numbers)
        if self._closed or self.entry.state is not ConfigEntryState.LOADED:
            # Answered while the entry unloads: a task left following it would
            # outlive the entry (or ask the PBX after the unload).
            LOGGER.warning(
                "Auto-dial task %s of %r started while the integration unloads; "
                "it is not followed",
                task_id,
                self.pbx.name,
            )
            return task_id
        self.current = FollowedTask(task_id, task)
        self._notify_progress()
        if task_id not in self._followed:
            self._followed[task_id] = self.entry.async_create_background_task(
                self.hass,
                self._follow(self.current),
                f"sprecord auto-dial task {task_id}",
            )
        return task_id

    async def async_command(self, task_id: int, command: AutoDialCommand) -> None:
        """Pause, resume or stop a task; the status follows at once."""
        await self.client.command(task_id, command)
        if self.current is not None and self.current.task_id == task_id:
            try:
                self.current.status = await self.client.status(task_id)
            except AutoDialError:
                return  # the next poll tells
            self._notify_progress()

    async def async_status(self, task_id: int) -> dict[str, Any]:
        """Return a task's state, counts and per-number results."""
        status = await self.client.status(task_id)
        results = await self.client.results(task_id)
        return {"task_id": task_id, **status.as_dict(), **results_summary(results)}

    async def _follow(self, followed: FollowedTask) -> None:
        """Poll a task until it ends; then announce how it ended."""
        failing = False
        try:
            while True:
                try:
                    status = await self.client.status(followed.task_id)
                    if status.state in ENDED_STATES:
                        followed.results = await self.client.results(followed.task_id)
                except AutoDialNotFound:
                    self._forgotten(followed)
                    return
                except AutoDialError as err:
                    if not failing:
                        LOGGER.warning(
                            "Cannot follow auto-dial task %s of %s: %s",
                            followed.task_id,
                            self.pbx.name,
                            for_log(err),
                        )
                    failing = True
                    await asyncio.sleep(POLL_INTERVAL)
                    continue
                if failing:
                    LOGGER.info(
                        "Following auto-dial task %s of %s again",
                        followed.task_id,
                        self.pbx.name,
                    )
                    failing = False
                followed.status = status
                self._notify_progress()
                if status.state in ENDED_STATES:
                    self._notify_end(
                        FINISHED if status.state is TaskState.FINISH else STOPPED,
                        followed,
                    )
                    return
                await asyncio.sleep(POLL_INTERVAL)
        finally:
            self._followed.pop(followed.task_id, None)

    @callback
    def _forgotten(self, followed: FollowedTask) -> None:
        """End following a task the PBX no longer knows (it restarted, say)."""
        LOGGER.warning(
            "Auto-dial task %s of %r is unknown to the PBX (restarted, or the "
            "task deleted); no longer following it",
            followed.task_id,
            self.pbx.name,
        )
        followed.status = None
        followed.reason = REASON_NOT_FOUND
        self._notify_progress()
        self._notify_end(STOPPED, followed)

    @callback
    def _notify_progress(self) -> None:
        """Tell the entities that the current task's status changed."""
        async_dispatcher_send(
            self.hass,
            signal_pbx(self.entry.entry_id, self.pbx.unique_prefix, TOPIC_AUTODIAL),
        )

    @callback
    def _notify_end(self, how: str, followed: FollowedTask) -> None:
        """Tell the entities that a followed task ended (FINISHED or STOPPED)."""
        async_dispatcher_send(
            self.hass,
            signal_autodial_ended(self.entry.entry_id, self.pbx.unique_prefix),
            how,
            followed,
        )
