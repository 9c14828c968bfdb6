"""Fault injection: every fault, many times, and the link always comes back.

For each kind of fault and each repetition: the fault is injected through the
emulator (or the network layer), the stream comes back, every event the
server sends after recovery reaches Home Assistant exactly once, no more than
one stream is ever open, no state sticks, and the log stays bounded (no line
per retry). `scripts/test` runs `FAULT_REPETITIONS` (2) of each kind;
`scripts/test --faults-full` runs 20 and prints a summary line.

Two kinds run a world whose time is scaled: `idle_cut` (a proxy that ends
silent streams, all night long) and `ha_restart_mid_call` (Home Assistant
stops while a call rings and starts again from its storage).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
import itertools
import logging
import os
import random
import socket
import time
from types import ModuleType
from typing import Any
from unittest.mock import patch

from aiohttp import TCPConnector
from homeassistant import loader
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_API_KEY, EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import CALLBACK_TYPE, CoreState, Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util.async_ import get_scheduled_timer_handles
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_test_home_assistant,
)

from custom_components.sprecord import link as link_module, reconnect, sse_link
from custom_components.sprecord.api.watch import QUIET_SILENCE
from custom_components.sprecord.const import (
    DOMAIN,
    EVENT_SPRECORD,
    TRANSPORT_WEBHOOK,
)
from custom_components.sprecord.webhook import MAX_BODY
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, call, end
from .test_webhook import make_entry, post

REPETITIONS = int(os.environ.get("SPRECORD_FAULT_REPETITIONS", "2"))
SERVERS = ("resuming", "not_resuming")
"""A server that resumes after `Last-Event-ID`, and one that ignores it (the
vendor does not say which the cloud is)."""
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}
"""(kind, server) -> figures, recorded pass or fail; conftest prints them."""

_call_ids = itertools.count(1000)

# Where the link lives: its figures, its client and its time constants.
LINK_MODULE: ModuleType = link_module
"""The module of the stream's read timeout (and of the link's grace)."""
LINK_TIME_MODULES: tuple[ModuleType, ...] = (link_module, reconnect)
"""The modules whose time constants the reconnect loop reads."""


def link_of(entry: ConfigEntry) -> Any:
    """Return the entry's link: its `stats`, its `client`."""
    return entry.runtime_data.link


def webhook_of(entry: ConfigEntry) -> Any:
    """Return the entry's webhook intake: its request counts."""
    return entry.runtime_data.link.webhook


def pbxs_of(entry: ConfigEntry) -> dict[str, Any]:
    """Return the PBXs the entry follows, by their id."""
    return dict(entry.runtime_data.coordinator.pbxs)


LINK_TIMES = ("BACKOFF_MIN", "BACKOFF_MAX", "HEALTHY_STREAM_SECONDS", "LINK_GRACE")
"""The reconnect loop's time constants, wherever they are defined."""
REAL_LINK_TIMES = {
    (module, name): getattr(module, name)
    for module in LINK_TIME_MODULES
    for name in LINK_TIMES
    if hasattr(module, name)
}
"""Their values as shipped (read before any fixture shortens them)."""

type Identity = tuple[str, str]
"""An event's type and its call id (or an SMS's sender)."""


def identity_of(event: Event) -> Identity:
    """Return the identity of a `sprecord_event` on the bus."""
    payload = event.data["payload"]
    return (
        event.data["event_type"],
        str(payload.get("call_id", payload.get("sms_src"))),
    )


@dataclass
class Harness:
    """What a fault needs: Home Assistant, the emulator, the entry, the bus."""

    hass: HomeAssistant
    emulator: SpRecordEmulator
    entry: ConfigEntry
    bus: list[Event]
    server: str
    dns_failures: int = 0
    """Name resolutions the DNS fault failed (it must have fired)."""
    sent_by_fault: set[Identity] = field(default_factory=set)
    """Events the fault itself sent while it held."""
    in_gap_by_fault: set[Identity] = field(default_factory=set)
    """Those of them sent while no stream was open (or Home Assistant down)."""
    spells: list[tuple[float, float]] = field(default_factory=list)
    """(seconds, seconds connected) of each quiet spell behind a proxy."""
    lives: int = 1
    """Home Assistant's starts: a restart makes one more."""
    in_progress: int = 0
    """Calls in progress when Home Assistant stopped (and after it started)."""
    shown_again: int = 0
    """Of them, those shown again after the restart."""
    life: AbstractAsyncContextManager[HomeAssistant] | None = None
    """The Home Assistant the harness started itself (it can stop it)."""
    _unlisten: CALLBACK_TYPE | None = None

    @property
    def link(self) -> Any:
        """Return the link's figures."""
        return link_of(self.entry).stats

    def listen(self) -> None:
        """Collect the `sprecord_event`s of the running Home Assistant.

        A callback: a plain `list.append` would run in a worker thread, and
        an event could land on the list after one fired later.
        """
        self._unlisten = self.hass.bus.async_listen(EVENT_SPRECORD, self._collect)

    @callback
    def _collect(self, event: Event) -> None:
        self.bus.append(event)

    def unlisten(self) -> None:
        """Stop collecting (its bus is going)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    async def start_home_assistant(self, entry: ConfigEntry | None = None) -> None:
        """Start a Home Assistant of the harness's own, as at a real start.

        It loads the config entries from storage and sets the integration
        up before Home Assistant has started, then starts it. The first
        start adds `entry` as a finished config flow does (so it is saved).
        The registries start empty (the harness keeps none across Home
        Assistants); the integration's own storage is the shared one.
        """
        life = async_test_home_assistant(initial_state=CoreState.not_running)
        self.hass = hass = await life.__aenter__()
        self.life = life
        self.listen()  # what a resuming server sends at once comes during setup
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)  # custom integrations
        await hass.config_entries.async_initialize()
        if entry is not None:
            await hass.config_entries.async_add(entry)
        assert await async_setup_component(hass, DOMAIN, {})
        # Started as `hass.async_start()` does, but without its start event:
        # as in the harness's own Home Assistant, the HTTP server (set up for
        # `webhook`) must not listen.
        hass.set_state(CoreState.running)
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
        await hass.async_block_till_done()
        [self.entry] = hass.config_entries.async_entries(DOMAIN)
        assert self.entry.state is ConfigEntryState.LOADED

    async def stop_home_assistant(self) -> None:
        """Stop the harness's Home Assistant as it stops for an update.

        Entries are not unloaded (Home Assistant does not do that when it
        stops): their tasks are cancelled, delayed saves are written in the
        final-write stage, then the HTTP sessions close.
        """
        assert self.life is not None
        self.unlisten()
        hass = self.hass
        await hass.async_stop()
        await self.life.__aexit__(None, None, None)
        self.life = None
        # Its process would end here, and its timers with it (a call's
        # expiry, say): they must not fire into the next Home Assistant.
        for handle in get_scheduled_timer_handles(asyncio.get_running_loop()):
            if _timer_hass(handle) is hass:
                handle.cancel()
        await asyncio.sleep(0)  # the harness forgets the stopped instance

    async def restart_home_assistant(self) -> None:
        """Start Home Assistant again after `stop_home_assistant()`."""
        await self.start_home_assistant()
        self.lives += 1

    def send_before(self) -> set[tuple[str, str]]:
        """Send a whole call before the fault (and give the stream an id)."""
        return self.send_during()

    def send_during(self) -> set[tuple[str, str]]:
        """Send a whole call while the fault holds; return its identities."""
        call_id = next(_call_ids)
        self.emulator.emit("incoming_call", call(call_id))
        self.emulator.emit("call_end", end(call_id, status="success"))
        return {("incoming_call", str(call_id)), ("call_end", str(call_id))}

    def delivered(self, identities: set[Identity]) -> Counter[Identity]:
        """Count the bus events of `identities` (type and call id or sender).

        Not those of a call shown again after a restart (`again`): they
        were delivered before it, and are counted by `ha_restart_mid_call`.
        """
        return Counter(
            identity
            for e in self.bus
            if (identity := identity_of(e)) in identities and not e.data.get("again")
        )

    async def settled(self) -> None:
        """Wait until the stream resumed from before a call in progress settled.

        It went on, or (nothing sent again) opened again from the last event
        handled: a restart is over when the stream stays where it resumes.
        """
        position = link_of(self.entry).stream.position
        await wait_until(
            lambda: (
                not position.probing
                and position.open
                and self.emulator.open_streams() == 1
            ),
            timeout=10,
        )

    def note_shown_again(self, call_id: int) -> None:
        """Count a call in progress at a restart if it was shown again.

        Its events handled again say `again`; each at most once.
        """
        again = Counter(
            identity
            for e in self.bus
            if e.data.get("again") and (identity := identity_of(e))[1] == str(call_id)
        )
        assert max(again.values(), default=1) == 1, again
        self.shown_again += bool(again)

    def send_call_or_sms(self, sms: bool) -> set[Identity]:
        """Send a whole call, or an SMS; return the identities sent."""
        if sms:
            marker = f"sms-{next(_call_ids)}"
            # The sender is the marker: the bus event carries no SMS text.
            self.emulator.emit(
                "incoming_sms", {"sms_src": marker, "text": "t", "trunk": "GSM1"}
            )
            return {("incoming_sms", marker)}
        return self.send_during()

    def in_gap(self) -> bool:
        """Tell whether an event sent now finds no stream open."""
        return self.emulator.open_streams() == 0

    async def recovered(self, connects_before: int) -> None:
        """Wait until a new stream is open (and it is the only one)."""
        await wait_until(
            lambda: (
                self.emulator.stats.connects > connects_before
                and self.emulator.open_streams() == 1
            ),
            timeout=10,
        )

    async def traffic(self) -> int:
        """Send a call and an SMS; check each arrives exactly once; return lost."""
        call_id = next(_call_ids)
        marker = f"sms-{call_id}"
        sent = [
            ("incoming_call", call(call_id)),
            ("call_end", end(call_id, status="success")),
            # The sender is the marker: the bus event carries no SMS text.
            ("incoming_sms", {"sms_src": marker, "text": "t", "trunk": "GSM1"}),
        ]
        for event_type, payload in sent:
            self.emulator.emit(event_type, payload)

        def seen() -> Counter[tuple[str, str]]:
            return Counter(
                (
                    e.data["event_type"],
                    str(
                        e.data["payload"].get(
                            "call_id", e.data["payload"].get("sms_src")
                        )
                    ),
                )
                for e in self.bus
                if str(e.data["payload"].get("call_id")) == str(call_id)
                or e.data["payload"].get("sms_src") == marker
            )

        expected = {
            ("incoming_call", str(call_id)),
            ("call_end", str(call_id)),
            ("incoming_sms", marker),
        }
        try:
            await wait_until(lambda: set(seen()) == expected, timeout=10)
        except TimeoutError:
            return len(expected - set(seen()))
        await self.hass.async_block_till_done()
        assert max(seen().values()) == 1, seen()  # exactly once
        assert self.hass.states.get(CALL_STATE).state == "idle"  # nothing sticks
        return 0


def _timer_hass(handle: asyncio.TimerHandle) -> HomeAssistant | None:
    """Return the Home Assistant a timer was set by, when it tells."""
    job = handle._callback  # the harness's cleanup check looks the same way
    owner = getattr(job, "__self__", job)
    hass = getattr(owner, "hass", None)
    return hass if isinstance(hass, HomeAssistant) else None


@pytest.fixture
async def harness(
    monkeypatch: pytest.MonkeyPatch,
    hass: HomeAssistant,
    socket_enabled: None,
    fast_link: None,
    kind: str,
    server: str,
) -> AsyncIterator[Harness]:
    """Set up an entry against an emulator with fast keep-alives, short timeouts.

    A kind that restarts Home Assistant runs in a Home Assistant the harness
    starts and stops itself (the test's own one stays idle).
    """
    monkeypatch.setattr(LINK_MODULE, "STREAM_READ_TIMEOUT", 0.4)
    # What a resumed stream sends first comes at once from the emulator.
    monkeypatch.setattr(sse_link, "PROBE_WAIT", 0.5)
    emulator = SpRecordEmulator(keepalive=0.05, replay=server == "resuming")
    await emulator.start()
    entry = make_entry(emulator, "sse")
    h = Harness(hass, emulator, entry, [], server)
    try:
        if kind in RESTARTS:
            await h.start_home_assistant(entry)
        else:
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            h.listen()
        await wait_until(lambda: emulator.open_streams() == 1)
        # A stream that has carried an event: a stream that never did has no
        # id to resume from, so what a fault hides at once would be lost to
        # any server (a limit of SSE, not of the server kind).
        emulator.emit("startup")
        await wait_until(lambda: len(h.bus) == 1)
        yield h
    finally:
        h.unlisten()
        if h.entry.state is ConfigEntryState.LOADED:
            assert await h.hass.config_entries.async_unload(h.entry.entry_id)
        if h.life is not None:
            await h.stop_home_assistant()
        await emulator.stop()


# --- the faults ----------------------------------------------------------------


async def drop_mid_event(h: Harness) -> None:
    h.emulator.drop_streams("mid_event")


async def drop_between_events(h: Harness) -> None:
    h.emulator.drop_streams("abort")


async def server_closes(h: Harness) -> None:
    h.emulator.drop_streams("close")


async def stall(h: Harness) -> None:
    h.emulator.stall_streams()


async def garbage_bytes(h: Harness) -> None:
    h.emulator.emit_raw(b"\x00\xff\xfe garbage {{{ \r\n\r\ndata: ]]]\r\n\r\n")


async def truncated_utf8(h: Harness) -> None:
    h.emulator.emit_raw('data: {"text": "Привет'.encode()[:-1] + b"\r\n\r\n")


async def huge_line(h: Harness) -> None:
    h.emulator.emit_raw(b"data: " + b"x" * (1024 * 1024 + 64))


async def auth_401(h: Harness) -> None:
    """Revoke the key; the user re-enters it through the reauth flow."""
    h.emulator.refuse_key("demo")
    await wait_until(
        lambda: any(h.entry.async_get_active_flows(h.hass, {SOURCE_REAUTH})),
        timeout=10,
    )
    h.emulator.refuse_key("demo", refuse=False)
    [flow] = h.entry.async_get_active_flows(h.hass, {SOURCE_REAUTH})
    result = await h.hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_API_KEY: "demo"}
    )
    assert result["reason"] == "reauth_successful"
    await h.hass.async_block_till_done()


async def busy_429(h: Harness) -> None:
    h.emulator.fail_streams(429, count=2)
    h.emulator.drop_streams("abort")


def http_error(status: int) -> Callable[[Harness], Awaitable[None]]:
    """Return a fault: the next reconnects get HTTP `status`."""

    async def fault(h: Harness) -> None:
        h.emulator.fail_streams(status, count=3)
        h.emulator.drop_streams("abort")

    return fault


async def server_restart(h: Harness) -> None:
    """Restart the cloud: its connections end and are refused for a while."""
    await h.emulator.restart_server(pause=0.1)


async def dns_failure(h: Harness) -> Callable[[], None]:
    """Name resolution fails for the next attempts (aiohttp's own DNS error)."""
    failures = iter(range(3))
    resolve = TCPConnector._resolve_host

    async def failing(self: TCPConnector, host: str, port: int, **kw: Any) -> Any:
        if next(failures, None) is not None:
            h.dns_failures += 1
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return await resolve(self, host, port, **kw)

    patcher = patch.object(TCPConnector, "_resolve_host", failing)
    patcher.start()
    h.emulator.drop_streams("abort")
    return patcher.stop


async def entry_reload_mid_call(h: Harness) -> None:
    """The entry reloads while a call rings; it rings again only if known to.

    An update or an options change does this. A resuming server sends the
    call again: it rings again (it still does), then its end comes. From a
    server that does not resume, the call is forgotten until its end.
    """
    call_id = next(_call_ids)
    h.emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: h.hass.states.get(CALL_STATE).state == "ringing")
    assert await h.hass.config_entries.async_reload(h.entry.entry_id)
    await h.hass.async_block_till_done()
    h.in_progress += 1
    await h.settled()
    if h.server == "resuming":
        state = await wait_for_state(h.hass, CALL_STATE, "ringing", timeout=10)
        assert state.attributes["call_id"] == str(call_id)
    else:
        assert h.hass.states.get(CALL_STATE).state == "idle"
    h.emulator.emit("call_end", end(call_id))
    await wait_until(lambda: h.delivered({("call_end", str(call_id))}))
    h.note_shown_again(call_id)


TIME_SCALE = 0.02
"""The scaled world of `idle_cut`: one second here is 50 s of a night."""
IDLE_CUT = 25.0 * TIME_SCALE
"""The proxy ends a stream silent for 25 s (some office proxies; nginx: 60 s)."""
QUIET_SPELL = 12 * IDLE_CUT
"""Five minutes without an event."""
EVENT_WINDOW = 4 * IDLE_CUT
"""Then events at random moments over a minute and a half."""
EVENTS_AT_RANDOM = 6
CONNECTED_SHARE_MIN = 0.9
"""Connected at least this share of the spells. Each cut costs one connect
(a few ms on loopback, tens on a loaded machine), which weighs 50 times
more here than in the night it stands for (see the bench's quiet night)."""


def scale_link_time(h: Harness) -> Callable[[], None]:
    """Run the reconnect loop in the scaled world; return the undo.

    Its time constants, as shipped, times `TIME_SCALE`: the backoff, the
    life after which a stream counts as good, the grace before a drop is
    shown. The server sends no keep-alives (that is why a proxy cuts it);
    from such a server the stream's own watchdog waits its full silence.
    """
    saved = {key: getattr(*key) for key in REAL_LINK_TIMES}
    for (module, name), value in REAL_LINK_TIMES.items():
        setattr(module, name, value * TIME_SCALE)
    watch = link_of(h.entry).client.watch
    quiet_limit = watch.quiet_limit
    watch.quiet_limit = QUIET_SILENCE * TIME_SCALE
    h.emulator.set_stream_behaviour(keepalive=0)
    h.emulator.set_idle_cut(IDLE_CUT)

    def undo() -> None:
        h.emulator.set_idle_cut(None)
        h.emulator.set_stream_behaviour(keepalive=0.05)
        watch.quiet_limit = quiet_limit
        for (module, name), value in saved.items():
            setattr(module, name, value)

    return undo


async def idle_cut(h: Harness) -> Callable[[], None]:
    """A quiet spell behind a proxy that cuts silent streams; then events.

    The real reconnect loop runs, its time scaled (`scale_link_time`). The
    share of the time a stream was open is measured on the server's side;
    events come at random moments, each looked for by its identity later.
    """
    undo = scale_link_time(h)
    rng = random.Random(len(h.spells))
    start = time.perf_counter()
    await asyncio.sleep(QUIET_SPELL)
    moments = sorted(rng.uniform(0, EVENT_WINDOW) for _ in range(EVENTS_AT_RANDOM))
    for number, moment in enumerate(moments):
        await asyncio.sleep(max(start + QUIET_SPELL + moment - time.perf_counter(), 0))
        gap = h.in_gap()
        sent = h.send_call_or_sms(sms=number % 2 == 1)
        h.sent_by_fault |= sent
        if gap:
            h.in_gap_by_fault |= sent
    over = start + QUIET_SPELL + EVENT_WINDOW
    await asyncio.sleep(max(over - time.perf_counter(), 0))
    h.spells.append((over - start, h.emulator.connected_seconds(start, over)))
    return undo


async def ha_restart_mid_call(h: Harness) -> None:
    """Home Assistant stops while a call rings and another talks; it starts again.

    While it is down, the ringing call is answered and ends, another call
    comes and goes, and an SMS arrives; all of them are looked for by
    identity later. The talking call still talks after the restart: a
    resuming server shows it again (its events come again, marked `again`),
    then its end comes.
    """
    call_id, talking = next(_call_ids), next(_call_ids)
    h.emulator.emit("incoming_call", call(talking, trunk="GSM2"))
    h.emulator.emit("start_talk", call(talking, trunk="GSM2"))
    h.emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: h.hass.states.get(CALL_STATE).state == "ringing")
    await h.stop_home_assistant()
    await wait_until(lambda: h.emulator.open_streams() == 0)
    h.emulator.emit("start_talk", call(call_id))
    h.emulator.emit("call_end", end(call_id, status="success"))
    down = {("start_talk", str(call_id)), ("call_end", str(call_id))}
    down |= h.send_call_or_sms(sms=False) | h.send_call_or_sms(sms=True)
    h.sent_by_fault |= down
    h.in_gap_by_fault |= down
    h.in_progress += 1
    await h.restart_home_assistant()
    await h.settled()
    if h.server == "resuming":
        state = await wait_for_state(h.hass, CALL_STATE, "talking", timeout=10)
        assert state.attributes["call_id"] == str(talking)
    h.emulator.emit("call_end", end(talking))
    await wait_until(lambda: h.delivered({("call_end", str(talking))}))
    h.note_shown_again(talking)


async def burst_10000(h: Harness) -> None:
    """Ten thousand events at once: all of them, each once.

    The emulator shares the test's event loop: it hands the burst over in
    slices, yielding between them, as a remote server's bytes arrive while
    Home Assistant works (emitting all at once blocked the loop past the
    harness's 0.4 s watchdog under coverage, which then cut the stream).
    asyncio's debug mode, on in the harness, records a stack for every
    callback; it is off for the burst, which measures volume.
    """
    before = len(h.bus)
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    # The harness's 0.4 s watchdog is for the stall; a busy shared loop may
    # leave a read waiting that long, which is no fault of the stream.
    watch = link_of(h.entry).client.watch
    quiet, watch.quiet_limit = watch.quiet_limit, 30.0
    try:
        for n in range(5000):
            call_id = f"burst-{n}"
            h.emulator.emit("incoming_call", call(call_id, trunk=f"GSM{n % 4 + 1}"))
            h.emulator.emit("call_end", end(call_id))
            if n % 250 == 0:
                await asyncio.sleep(0)  # a slice of the burst is on the wire
        await wait_until(lambda: len(h.bus) - before >= 10_000, timeout=60)
    finally:
        loop.set_debug(debug)
        watch.quiet_limit = quiet
    ids = Counter(
        (e.data["event_type"], e.data["payload"]["call_id"]) for e in h.bus[before:]
    )
    assert len(ids) == 10_000
    assert max(ids.values()) == 1


Fault = Callable[[Harness], Awaitable[Callable[[], None] | None]]
FAULTS: dict[str, Fault] = {
    "drop_mid_event": drop_mid_event,
    "drop_between_events": drop_between_events,
    "server_closes": server_closes,
    "stall": stall,
    "garbage_bytes": garbage_bytes,
    "truncated_utf8": truncated_utf8,
    "huge_line": huge_line,
    "auth_401": auth_401,
    "busy_429": busy_429,
    "http_500": http_error(500),
    "http_502": http_error(502),
    "http_503": http_error(503),
    "server_restart": server_restart,
    "dns_failure": dns_failure,
    "entry_reload_mid_call": entry_reload_mid_call,
    "burst_10000": burst_10000,
    "idle_cut": idle_cut,
    "ha_restart_mid_call": ha_restart_mid_call,
}
STREAM_KEEPS = {"garbage_bytes", "truncated_utf8", "burst_10000"}
"""Faults the stream survives without reconnecting."""
RESTARTS = {"ha_restart_mid_call"}
"""Faults that stop Home Assistant and start it again."""
LONG: dict[str, tuple[int, int | None]] = {
    "burst_10000": (1, None),
    "idle_cut": (1, 3),
}
"""Faults that take long: their repetitions below 20 (the quick run), and
the most they get in any run (a quiet spell takes seconds)."""


@dataclass
class Before:
    """Figures taken just before a fault, to prove it happened."""

    drops: int
    malformed: int
    rejected_auth: int
    rejected_forced: int
    dns_failures: int
    idle_cuts: int
    lives: int
    runtime: Any


def before(h: Harness) -> Before:
    """Take the figures a fault must move."""
    return Before(
        h.link.drops,
        h.link.malformed_events,
        h.emulator.stats.rejected_auth,
        h.emulator.stats.rejected_forced,
        h.dns_failures,
        h.emulator.stats.idle_cuts,
        h.lives,
        h.entry.runtime_data,
    )


def _dropped(h: Harness, b: Before) -> bool:
    return bool(h.link.drops > b.drops)


PROOFS: dict[str, Callable[[Harness, Before], bool]] = {
    "drop_mid_event": _dropped,
    "drop_between_events": _dropped,
    "server_closes": _dropped,
    # The stalled stream was ended by the watchdog, not by the server.
    "stall": lambda h, b: _dropped(h, b) and "sent nothing" in str(h.link.last_error),
    "garbage_bytes": lambda h, b: h.link.malformed_events > b.malformed,
    "truncated_utf8": lambda h, b: h.link.malformed_events > b.malformed,
    "huge_line": lambda h, b: _dropped(h, b) and "longer" in str(h.link.last_error),
    "auth_401": lambda h, b: h.emulator.stats.rejected_auth > b.rejected_auth,
    "busy_429": lambda h, b: h.emulator.stats.rejected_forced > b.rejected_forced,
    "http_500": lambda h, b: h.emulator.stats.rejected_forced > b.rejected_forced,
    "http_502": lambda h, b: h.emulator.stats.rejected_forced > b.rejected_forced,
    "http_503": lambda h, b: h.emulator.stats.rejected_forced > b.rejected_forced,
    "server_restart": _dropped,
    "dns_failure": lambda h, b: h.dns_failures > b.dns_failures,
    "entry_reload_mid_call": lambda h, b: h.entry.runtime_data is not b.runtime,
    "burst_10000": lambda _h, _b: True,  # its own body counts the 10,000
    # Cut again and again: at least once a quiet spell's worth of cuts.
    "idle_cut": lambda h, b: (
        h.emulator.stats.idle_cuts - b.idle_cuts >= QUIET_SPELL // IDLE_CUT // 2
    ),
    # Another Home Assistant, whose entry was read from storage.
    "ha_restart_mid_call": lambda h, b: (
        h.lives > b.lives and h.entry.runtime_data is not b.runtime
    ),
}
"""How each fault shows that it really happened."""


@pytest.mark.parametrize(
    ("kind", "server"),
    [
        (kind, server)
        for kind in FAULTS
        for server in SERVERS
        # The burst keeps its stream: the server kind changes nothing.
        if kind != "burst_10000" or server == "resuming"
    ],
)
async def test_fault(
    harness: Harness, kind: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Inject the fault; send a call while it holds and another after it.

    The call sent during the fault is lost only where it must be: inside the
    reconnect gap of a server that does not resume. The one sent after the
    recovery always arrives, exactly once.
    """
    caplog.set_level(logging.INFO, logger="custom_components.sprecord")
    emulator = harness.emulator
    repetitions = REPETITIONS
    if kind in LONG:
        quick, most = LONG[kind]
        repetitions = min(quick, REPETITIONS) if REPETITIONS < 20 else REPETITIONS
        repetitions = min(repetitions, most or repetitions)
    figures: dict[str, Any] = {
        "repetitions": 0,
        "sent_before": 0,
        "sent_during": 0,
        "lost_during": 0,
        "sent_after": 0,
        "lost_after": 0,
        "sent_in_gap": 0,
        "duplicates": 0,
        "reconnects": 0,
        "faults_seen": 0,
        "passed": False,
    }
    RESULTS[kind, server] = figures
    during: set[tuple[str, str]] = set()
    in_gap: set[tuple[str, str]] = set()
    sent_before: set[tuple[str, str]] = set()
    for _ in range(repetitions):
        sent = harness.send_before()
        sent_before |= sent
        figures["sent_before"] += len(sent)
        await wait_until(lambda s=sent: set(harness.delivered(s)) == s, timeout=10)
        connects = emulator.stats.connects
        taken = before(harness)
        cleanup = await FAULTS[kind](harness)
        try:
            sent = harness.send_during()
            during |= sent
            figures["sent_during"] += len(sent)
            if kind not in STREAM_KEEPS and (
                emulator.stats.connects == connects or harness.in_gap()
            ):
                # No new stream yet: these are sent inside the reconnect gap.
                in_gap |= sent
                figures["sent_in_gap"] += len(sent)
            if kind not in STREAM_KEEPS:
                await harness.recovered(connects)
        finally:
            if cleanup is not None:
                cleanup()
        # Events come in order: once the call sent after the recovery is
        # in, what was sent during the fault is in, or is lost.
        figures["sent_after"] += 3
        figures["lost_after"] += await harness.traffic()
        figures["faults_seen"] += PROOFS[kind](harness, taken)
        figures["reconnects"] += emulator.stats.connects - connects
        figures["repetitions"] += 1
    # What the fault itself sent while it held (in its gaps, or not).
    during |= harness.sent_by_fault
    in_gap |= harness.in_gap_by_fault
    figures["sent_during"] += len(harness.sent_by_fault)
    figures["sent_in_gap"] += len(harness.in_gap_by_fault)
    if harness.in_progress:
        figures["in_progress"] = harness.in_progress
        figures["shown_again"] = harness.shown_again
    seen = harness.delivered(during)
    lost = during - set(seen)
    figures["lost_during"] = len(lost)
    figures["duplicates"] = sum(count - 1 for count in seen.values())
    figures["max_streams"] = emulator.stats.max_open_streams
    figures["duplicates"] += sum(
        count - 1 for count in harness.delivered(sent_before).values()
    )
    if harness.spells:
        spell = sum(seconds for seconds, _ in harness.spells)
        share = sum(connected for _, connected in harness.spells) / spell
        figures["connected_share"] = share
        assert share >= CONNECTED_SHARE_MIN, (
            f"connected {share:.1%} of {spell / TIME_SCALE:.0f} s of quiet spells "
            f"behind a proxy cutting after {IDLE_CUT / TIME_SCALE:.0f} s "
            f"(scaled 1:{1 / TIME_SCALE:.0f}); of {len(harness.sent_by_fault)} "
            f"events sent at random moments, {len(lost & harness.sent_by_fault)} lost"
        )
    assert figures["faults_seen"] == repetitions, "the fault did not happen"
    if kind in STREAM_KEEPS:
        assert figures["reconnects"] == 0
    else:
        assert figures["reconnects"] >= repetitions
    assert figures["lost_after"] == 0
    assert figures["duplicates"] == 0
    if server == "resuming":
        assert not lost, f"lost {len(lost)} of {len(during)}: {sorted(lost)}"
        assert harness.shown_again == harness.in_progress
    else:
        # Without resuming, only what was sent inside the gap may be lost.
        assert lost <= in_gap
        assert harness.shown_again == 0  # nothing shows such a call again
    assert emulator.stats.max_open_streams == 1
    ours = [
        r
        for r in caplog.records
        if r.name.startswith("custom_components.sprecord") and r.levelno >= logging.INFO
    ]
    # At most a line or two per incident, never one per retry.
    assert len(ours) <= 2 * repetitions, [r.getMessage() for r in ours]
    figures["passed"] = True


async def test_fault_webhook_bodies(
    hass: HomeAssistant,
    ha_url: str,
    socket_enabled: None,
    fast_link: None,
) -> None:
    """Bodies that are not JSON or too large get a 400; an unknown PBX's are dropped.

    A posted event cannot be told from a forgery, so it never brings in a
    PBX the entry does not follow.
    """
    emulator = SpRecordEmulator(keepalive=0)
    await emulator.start()
    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    bus = async_capture_events(hass, EVENT_SPRECORD)
    bodies: list[bytes | str] = [
        "not json",
        "x" * (MAX_BODY + 1),
        '{"device_id": "other", "event_type": "startup", "payload": {}}',
    ]
    emulator.emit("startup")  # the entry learns its PBX
    await wait_until(lambda: len(bus) == 1)
    figures: dict[str, Any] = {
        "repetitions": REPETITIONS,
        "sent_before": 1,
        "sent_during": 0,
        "lost_during": 0,
        "sent_after": 0,
        "lost_after": 0,
        "sent_in_gap": 0,
        "duplicates": 0,
        "reconnects": 0,
        "faults_seen": 0,
        "max_streams": 0,
        "passed": False,
    }
    RESULTS["webhook_bodies", "webhook"] = figures
    sent: list[str] = []
    for _ in range(REPETITIONS):
        for body in bodies:
            response = await post(ha_url, body)
            assert response.status in (200, 400)
        call_id = str(next(_call_ids))
        sent.append(call_id)
        emulator.emit("incoming_call", call(call_id))
        await emulator.hooks.drain()
    figures["sent_after"] = len(sent)
    # "other"'s startup is dropped every time, and no PBX is made for it.
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: len(bus) == 1 + REPETITIONS)
    delivered = Counter(
        str(e.data["payload"].get("call_id"))
        for e in bus
        if e.data["event_type"] == "incoming_call"
    )
    figures["lost_after"] = sum(1 for c in sent if c not in delivered)
    figures["duplicates"] = sum(n - 1 for n in delivered.values())
    figures["faults_seen"] = webhook_of(entry).bad_requests // 2
    assert figures["lost_after"] == 0
    assert figures["duplicates"] == 0
    assert webhook_of(entry).bad_requests == 2 * REPETITIONS
    assert webhook_of(entry).unknown_pbx_requests == REPETITIONS
    assert len(pbxs_of(entry)) == 1  # ours only
    assert {e.data["event_type"] for e in bus} == {"startup", "incoming_call"}
    assert sum(e.data["event_type"] == "startup" for e in bus) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await emulator.stop()
    figures["passed"] = True
