"""The watchdog fits the server: keep-alives learnt, quiet streams kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import errno
import socket
from typing import Any

import aiohttp
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.sprecord import link as link_module
from custom_components.sprecord.api import SpRecordClient
from custom_components.sprecord.api.watch import (
    KEEPALIVE_MISSES,
    MIN_SILENCE,
    QUIET_SILENCE,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    UNPROBED_SILENCE,
    SilenceWatch,
    enable_tcp_keepalive,
)
from custom_components.sprecord.link import Link
from emulator import SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_states import CALL_STATE, call

CONNECTED = "binary_sensor.sprecord_minipbx_cloud_connection"


# --- The watch on its own ---------------------------------------------------


def test_a_server_never_seen_to_keep_alive_gets_the_long_limit() -> None:
    watch = SilenceWatch()
    assert watch.interval is None
    assert watch.limit == QUIET_SILENCE
    watch.stream_opened()
    watch.chunk(10.0, keepalive=False)
    watch.chunk(3600.0, keepalive=False)  # events, however far apart
    assert watch.interval is None
    assert watch.limit == QUIET_SILENCE


def test_keepalives_teach_the_interval_and_a_few_missed_are_death() -> None:
    watch = SilenceWatch()
    watch.stream_opened()
    watch.chunk(100.0, keepalive=True)  # the first chunk: no gap before it
    assert watch.interval is None
    watch.chunk(115.0, keepalive=True)
    assert watch.interval == 15.0
    assert watch.limit == KEEPALIVE_MISSES * 15.0
    watch.chunk(116.0, keepalive=False)  # an event
    watch.chunk(131.0, keepalive=True)  # the server's idle timer restarted
    assert watch.interval == 16.0  # a gap with an event in it is longer
    assert watch.as_dict() == {
        "keepalive_interval": 16.0,
        "silence_limit": KEEPALIVE_MISSES * 16.0,
    }


def test_busy_traffic_does_not_shorten_a_fixed_timers_interval() -> None:
    """A server pinging every 30 s on a timer, events every 3 s between."""
    watch = SilenceWatch()
    watch.stream_opened()
    now = 0.0
    for _ in range(5):
        watch.chunk(now, keepalive=True)
        for _ in range(9):
            now += 3.0
            watch.chunk(now, keepalive=False)
        now += 3.0
    assert watch.interval == 30.0
    assert watch.limit == KEEPALIVE_MISSES * 30.0


def test_an_unprobed_socket_gets_a_shorter_quiet_limit() -> None:
    watch = SilenceWatch()
    watch.stream_opened(probed=False)
    assert watch.limit == UNPROBED_SILENCE < QUIET_SILENCE
    watch.stream_opened(probed=True)
    assert watch.limit == QUIET_SILENCE


def test_a_comment_sent_only_on_connect_teaches_nothing() -> None:
    watch = SilenceWatch()
    for opened in (0.0, 7200.0, 14400.0):  # every stream starts with one
        watch.stream_opened()
        watch.chunk(opened + 0.01, keepalive=True)
    assert watch.interval is None
    assert watch.limit == QUIET_SILENCE


def test_the_limit_is_bounded_both_ways() -> None:
    watch = SilenceWatch(quiet_limit=600.0)
    watch.stream_opened()
    watch.chunk(0.0, keepalive=True)
    watch.chunk(1.0, keepalive=True)  # a server pinging every second
    assert watch.limit == MIN_SILENCE
    watch.chunk(501.0, keepalive=True)  # a very slow one
    assert watch.limit == 600.0


def test_gaps_are_measured_within_one_stream() -> None:
    watch = SilenceWatch()
    watch.stream_opened()
    watch.chunk(0.0, keepalive=True)
    watch.stream_opened()  # a reconnect an hour later
    watch.chunk(3600.0, keepalive=True)
    assert watch.interval is None


def test_only_recent_gaps_count() -> None:
    watch = SilenceWatch()
    watch.stream_opened()
    watch.chunk(0.0, keepalive=True)
    watch.chunk(300.0, keepalive=True)  # one long stall of the server
    assert watch.interval == 300.0
    now = 300.0
    for _ in range(8):
        now += 15.0
        watch.chunk(now, keepalive=True)
    assert watch.interval == 15.0


def test_a_timeout_forgets_the_interval() -> None:
    # A server that stopped keeping alive is not torn down every minute for
    # ever: after one timeout the stream gets the long limit again.
    watch = SilenceWatch()
    watch.stream_opened()
    watch.chunk(0.0, keepalive=True)
    watch.chunk(15.0, keepalive=True)
    assert watch.limit == 60.0
    watch.timed_out()
    assert watch.interval is None
    assert watch.limit == QUIET_SILENCE


def test_tcp_keepalive_is_set_on_a_socket(socket_enabled: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert enable_tcp_keepalive(sock)
        assert_probing(sock)


def assert_probing(sock: Any) -> None:
    """Assert the kernel probes the socket's idle peer as we asked."""
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == TCP_KEEPIDLE
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == TCP_KEEPINTVL
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == TCP_KEEPCNT
    # A dead peer is found within a few minutes.
    assert TCP_KEEPIDLE + TCP_KEEPCNT * TCP_KEEPINTVL <= 180


class RefusingSocket:
    """A socket whose options cannot be set (a platform without them)."""

    def __init__(self, fail_on: int | None = None) -> None:
        """Fail every option, or only `fail_on`."""
        self.fail_on = fail_on
        self.set: list[int] = []

    def setsockopt(self, _level: int, option: int, _value: int) -> None:
        """Refuse the option."""
        if self.fail_on is None or option == self.fail_on:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        self.set.append(option)


def test_tcp_keepalive_degrades_quietly() -> None:
    assert not enable_tcp_keepalive(None)
    assert not enable_tcp_keepalive(RefusingSocket())
    partial = RefusingSocket(fail_on=socket.TCP_KEEPCNT)
    assert enable_tcp_keepalive(partial)  # the kernel's default count stays
    assert partial.set == [
        socket.SO_KEEPALIVE,
        socket.TCP_KEEPIDLE,
        socket.TCP_KEEPINTVL,
    ]


# --- The client against both kinds of server --------------------------------


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """Return a plain aiohttp session."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.mark.parametrize("style", ["comment", "empty-data"])
async def test_the_client_learns_the_servers_keepalives(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession, style: str
) -> None:
    emulator.set_stream_behaviour(keepalive=0.05, keepalive_style=style)
    client = SpRecordClient(session, emulator.url, "demo")
    assert client.watch.limit == QUIET_SILENCE
    stream = await client.connect()
    async with stream:
        await wait_until(lambda: emulator.open_streams() == 1)
        next_event = asyncio.ensure_future(anext(stream))
        await wait_until(lambda: client.watch.interval is not None)
        assert 0.03 < (client.watch.interval or 0) < 1.0
        assert client.watch.limit == MIN_SILENCE
        emulator.emit("startup")  # keep-alives are no events; this one is
        assert (await next_event).type == "startup"
        assert stream.malformed_events == 0


async def test_a_stream_socket_is_probed_by_tcp_keepalive(
    emulator: SpRecordEmulator, session: aiohttp.ClientSession
) -> None:
    stream = await SpRecordClient(session, emulator.url, "demo").connect()
    async with stream:
        assert stream.tcp_keepalive
        connection = stream._response.connection
        assert connection is not None
        assert connection.transport is not None
        assert_probing(connection.transport.get_extra_info("socket"))


# --- The integration, with time moved ---------------------------------------


def link_of(entry: MockConfigEntry) -> Link:
    """Return the entry's link."""
    link: Link = entry.runtime_data.link
    return link


def move_time(hass: HomeAssistant, seconds: float) -> None:
    """Run every timer due within `seconds` from now."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))


async def test_a_quiet_hour_without_keepalives_keeps_the_stream(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    # The `emulator` fixture is a server that never sends keep-alives.
    link = link_of(setup_entry)
    assert link.client.watch.interval is None
    for _ in range(6):
        move_time(hass, 600)  # an hour, ten minutes at a time
        await hass.async_block_till_done()
    assert emulator.stats.connects == 1
    assert link.stats.drops == 0
    emulator.emit("incoming_call", call(1))  # the same stream still delivers
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert emulator.stats.connects == 1


async def test_a_silent_peer_without_keepalives_is_left_after_the_long_limit(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    emulator.emit("startup")  # an id to resume from
    await wait_until(lambda: link_of(setup_entry).stats.last_event is not None)
    emulator.stall_streams()  # the socket stays; nothing comes any more
    emulator.emit("incoming_call", call(1))
    move_time(hass, link_module.STREAM_READ_TIMEOUT - 60)
    await hass.async_block_till_done()
    assert emulator.stats.connects == 1
    move_time(hass, link_module.STREAM_READ_TIMEOUT + 1)
    await wait_until(lambda: emulator.stats.connects == 2)
    await wait_for_state(hass, CALL_STATE, "ringing")  # resumed
    assert emulator.stats.max_open_streams == 1


async def test_a_silent_peer_that_kept_alive_is_left_after_a_few_intervals(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    emulator.set_stream_behaviour(keepalive=0.05)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    watch = link_of(config_entry).client.watch
    await wait_until(lambda: watch.interval is not None)
    assert watch.limit == MIN_SILENCE
    emulator.emit("startup")
    await wait_until(lambda: link_of(config_entry).stats.last_event is not None)
    emulator.stall_streams()
    emulator.emit("incoming_call", call(1))  # lost on the stalled socket...
    move_time(hass, MIN_SILENCE - 5)
    await hass.async_block_till_done()
    assert emulator.stats.connects == 1
    move_time(hass, MIN_SILENCE + 1)
    await wait_until(lambda: emulator.stats.connects == 2)
    await wait_for_state(hass, CALL_STATE, "ringing")  # ...and resumed
    assert hass.states.get(CONNECTED).state == STATE_ON  # a short drop
    # The timeout made the watch forget; the new stream teaches it again.
    await wait_until(lambda: watch.interval is not None)
    assert emulator.stats.max_open_streams == 1
    await hass.config_entries.async_unload(config_entry.entry_id)


async def test_a_dead_peer_found_by_the_kernel_is_reconnected(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    emulator.emit("startup")
    link = link_of(setup_entry)
    await wait_until(lambda: link.stats.last_event is not None)
    stream = link.stream._stream
    assert stream is not None
    assert stream.tcp_keepalive
    emulator.stall_streams()
    emulator.emit("incoming_call", call(1))
    # When its probes go unanswered the kernel fails the socket's next read
    # with ETIMEDOUT; asyncio closes the transport with that error. This
    # sandbox cannot drop packets, so the failure is delivered the same way.
    connection = stream._response.connection
    assert connection is not None
    transport = connection.transport
    assert transport is not None
    transport._force_close(  # type: ignore[attr-defined]
        TimeoutError(errno.ETIMEDOUT, "Connection timed out")
    )
    await wait_until(lambda: emulator.stats.connects == 2)
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert link.stats.drops == 1
    assert emulator.stats.max_open_streams == 1
