"""Fault injection: every fault, many times, and the link always comes back.

For each kind of fault and each repetition: the fault is injected through the
emulator (or the network layer), the stream comes back, every event the
server sends after recovery reaches Home Assistant exactly once, no more than
one stream is ever open, no state sticks, and the log stays bounded (no line
per retry). `scripts/test` runs `FAULT_REPETITIONS` (2) of each kind;
`scripts/test --faults-full` runs 20 and prints a summary line.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import itertools
import logging
import os
import socket
from typing import Any
from unittest.mock import patch

from aiohttp import TCPConnector
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import Event, HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord import coordinator as coordinator_module
from custom_components.sprecord.const import EVENT_SPRECORD, TRANSPORT_WEBHOOK
from custom_components.sprecord.webhook import MAX_BODY
from emulator import SpRecordEmulator

from .helpers import wait_until
from .test_states import CALL_STATE, call, end
from .test_webhook import make_entry, post

REPETITIONS = int(os.environ.get("SPRECORD_FAULT_REPETITIONS", "2"))
SERVERS = ("resuming", "not_resuming")
"""A server that resumes after `Last-Event-ID`, and one that ignores it (the
vendor does not say which the cloud is)."""
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}
"""(kind, server) -> figures, recorded pass or fail; conftest prints them."""

_call_ids = itertools.count(1000)


@dataclass
class Harness:
    """What a fault needs: Home Assistant, the emulator, the entry, the bus."""

    hass: HomeAssistant
    emulator: SpRecordEmulator
    entry: MockConfigEntry
    bus: list[Event]
    server: str
    dns_failures: int = 0
    """Name resolutions the DNS fault failed (it must have fired)."""

    @property
    def link(self) -> Any:
        """Return the coordinator's link figures."""
        return self.entry.runtime_data.coordinator.stats

    def send_before(self) -> set[tuple[str, str]]:
        """Send a whole call before the fault (and give the stream an id)."""
        return self.send_during()

    def send_during(self) -> set[tuple[str, str]]:
        """Send a whole call while the fault holds; return its identities."""
        call_id = next(_call_ids)
        self.emulator.emit("incoming_call", call(call_id))
        self.emulator.emit("call_end", end(call_id, status="success"))
        return {("incoming_call", str(call_id)), ("call_end", str(call_id))}

    def delivered(self, identities: set[tuple[str, str]]) -> Counter[tuple[str, str]]:
        """Count the bus events of `identities` (type and call id)."""
        return Counter(
            identity
            for e in self.bus
            if (
                identity := (
                    e.data["event_type"],
                    str(e.data["payload"].get("call_id")),
                )
            )
            in identities
        )

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


@pytest.fixture
async def harness(
    monkeypatch: pytest.MonkeyPatch,
    hass: HomeAssistant,
    socket_enabled: None,
    fast_link: None,
    server: str,
) -> AsyncIterator[Harness]:
    """Set up an entry against an emulator with fast keep-alives, short timeouts."""
    monkeypatch.setattr(coordinator_module, "STREAM_READ_TIMEOUT", 0.4)
    emulator = SpRecordEmulator(keepalive=0.05, replay=server == "resuming")
    await emulator.start()
    entry = make_entry(emulator, "sse")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    bus: list[Event] = []
    unsub = hass.bus.async_listen(EVENT_SPRECORD, bus.append)
    # A stream that has carried an event: a stream that never did has no id
    # to resume from, so what a fault hides at once would be lost to any
    # server (a limit of SSE, not of the server kind).
    emulator.emit("startup")
    await wait_until(lambda: len(bus) == 1)
    yield Harness(hass, emulator, entry, bus, server)
    unsub()
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
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
    """The entry reloads while a call rings; it is not resurrected.

    An update or an options change does this; a restart of Home Assistant
    is the same over the same storage, which this harness cannot stop.
    """
    call_id = next(_call_ids)
    h.emulator.emit("incoming_call", call(call_id))
    await wait_until(lambda: h.hass.states.get(CALL_STATE).state == "ringing")
    assert await h.hass.config_entries.async_reload(h.entry.entry_id)
    await h.hass.async_block_till_done()
    assert h.hass.states.get(CALL_STATE).state == "idle"
    h.emulator.emit("call_end", end(call_id))  # the end of the forgotten call


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
    watch = h.entry.runtime_data.coordinator.client.watch
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
}
STREAM_KEEPS = {"garbage_bytes", "truncated_utf8", "burst_10000"}
"""Faults the stream survives without reconnecting."""


@dataclass
class Before:
    """Figures taken just before a fault, to prove it happened."""

    drops: int
    malformed: int
    rejected_auth: int
    rejected_forced: int
    dns_failures: int
    coordinator: Any


def before(h: Harness) -> Before:
    """Take the figures a fault must move."""
    return Before(
        h.link.drops,
        h.link.malformed_events,
        h.emulator.stats.rejected_auth,
        h.emulator.stats.rejected_forced,
        h.dns_failures,
        h.entry.runtime_data.coordinator,
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
    "entry_reload_mid_call": lambda h, b: (
        h.entry.runtime_data.coordinator is not b.coordinator
    ),
    "burst_10000": lambda _h, _b: True,  # its own body counts the 10,000
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
    repetitions = 1 if kind == "burst_10000" and REPETITIONS < 20 else REPETITIONS
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
            if kind not in STREAM_KEEPS and emulator.stats.connects == connects:
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
    seen = harness.delivered(during)
    lost = during - set(seen)
    figures["lost_during"] = len(lost)
    figures["duplicates"] = sum(count - 1 for count in seen.values())
    figures["max_streams"] = emulator.stats.max_open_streams
    figures["duplicates"] += sum(
        count - 1 for count in harness.delivered(sent_before).values()
    )
    assert figures["faults_seen"] == repetitions, "the fault did not happen"
    if kind in STREAM_KEEPS:
        assert figures["reconnects"] == 0
    else:
        assert figures["reconnects"] >= repetitions
    assert figures["lost_after"] == 0
    assert figures["duplicates"] == 0
    if server == "resuming":
        assert not lost
    else:
        # Without resuming, only what was sent inside the gap may be lost.
        assert lost <= in_gap
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
    bus: list[Event] = []
    hass.bus.async_listen(EVENT_SPRECORD, bus.append)
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
    figures["faults_seen"] = entry.runtime_data.coordinator.webhook.bad_requests // 2
    assert figures["lost_after"] == 0
    assert figures["duplicates"] == 0
    assert entry.runtime_data.coordinator.webhook.bad_requests == 2 * REPETITIONS
    assert entry.runtime_data.coordinator.webhook.unknown_pbx_requests == REPETITIONS
    assert len(entry.runtime_data.coordinator.pbxs) == 1  # ours only
    assert {e.data["event_type"] for e in bus} == {"startup", "incoming_call"}
    assert sum(e.data["event_type"] == "startup" for e in bus) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await emulator.stop()
    figures["passed"] = True
