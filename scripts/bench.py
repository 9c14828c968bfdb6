"""Benchmark the integration against the emulator, each figure beside a floor.

Run it with `scripts/bench`. It starts a real Home Assistant in this process
(temporary config dir, no pytest), sets the integration up against an
in-process emulator through the config flow, measures, and prints one JSON
object on stdout; progress goes to stderr. Every figure is measured beside a
baseline in the same run:

- event->state latency vs the bare parser reading the same event off a socket,
- end-to-end throughput of a burst vs parser-only throughput of that burst;
  every event looked for by its identity (type, call id), and the states the
  burst ends in checked,
- the integration's own path (EventStream -> models) vs aiohttp-sse-client2
  followed by json.loads on the same recorded bytes (like for like), and our
  bare SSE parser vs aiohttp-sse-client2's beside it: ratios within each run,
  the median of the runs,
- the reconnect gap after a server-side close or drop (to the new stream's
  headers, p50 and max), for a server that resumes and one that does not,
  with the events sent inside the gaps that were lost,
- a quiet night behind a proxy that cuts silent streams after 25, 55, 60 or
  90 s: the share of 8 hours connected, our reconnect policy beside an
  `EventSource`-like one (3 s after every close), on a simulated clock whose
  connects take as long as the real reconnects measured in the same run,
- entry setup time, CPU per 1,000 events (beside the floor's), RSS and the
  interpreter's allocated blocks before/after 100,000 events,
- loading a 10,000-contact vCard (time, and how late the loop ran meanwhile
  against the idle loop), and the phonebook lookup an event makes; the
  latency events come from the phonebook's numbers, each seen once; a ~1 MB
  vCard of one quoted-printable value soft-broken every 76 characters,
  read beside the 10,000-contact vCard (seconds per MB of each),

Each target of the README's table has `met` in the JSON, and `targets_met`
sums them up. The emulator and Home Assistant share the process and its
loop, so the CPU figure includes the emulator's share (the floor runs show
how big that is).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import gc
import json
import logging
import os
from pathlib import Path
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from typing import Any, Self

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from homeassistant import auth, bootstrap, config_entries, loader  # noqa: E402
from homeassistant.const import CONF_API_KEY, CONF_URL, EVENT_STATE_CHANGED  # noqa: E402
from homeassistant.core import CoreState, Event, HomeAssistant, callback  # noqa: E402
from homeassistant.setup import async_setup_component  # noqa: E402

from custom_components.sprecord import reconnect  # noqa: E402
from custom_components.sprecord.api import EventStream, SSEParser  # noqa: E402
from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD  # noqa: E402
from custom_components.sprecord.phonebook import read_phonebook_file  # noqa: E402
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator  # noqa: E402

CALL_STATE = "sensor.sprecord_minipbx_call_state"
LAST_CALL = "sensor.sprecord_minipbx_last_call_result"
MISSED_CALLS = "sensor.sprecord_minipbx_missed_calls"
HA_KEY = "demo"
FLOOR_KEY = "floor"
"""A second account: the bare-parser baselines read their own stream."""

LATENCY_EVENTS = int(os.environ.get("BENCH_LATENCY_EVENTS", "500"))
BURST_EVENTS = int(os.environ.get("BENCH_BURST_EVENTS", "20000"))
PARSER_FRAMES = int(os.environ.get("BENCH_PARSER_FRAMES", "50000"))
MEMORY_EVENTS = int(os.environ.get("BENCH_MEMORY_EVENTS", "100000"))
RECONNECT_DROPS = int(os.environ.get("BENCH_RECONNECT_DROPS", "20"))
PHONEBOOK_CONTACTS = int(os.environ.get("BENCH_PHONEBOOK_CONTACTS", "10000"))
QP_FOLDED_BYTES = int(os.environ.get("BENCH_QP_FOLDED_BYTES", "1000000"))
"""Size of the vCard whose one quoted-printable value is soft-broken."""
HEALTHY_STREAM_SECONDS = 0.2
"""The bench's life after which a stream's end is a cut, reconnected at once
(the integration's is `reconnect.HEALTHY_STREAM_SECONDS`, 5 s): scaled down
so that drops can follow closely."""
NIGHT_HOURS = 8.0
IDLE_CUTS = (25.0, 55.0, 60.0, 90.0)
"""Seconds of silence after which proxies seen in the wild end a response."""
EVENTSOURCE_RETRY = 3.0
"""A browser's `EventSource`: reconnect this long after every close."""
QUIET_NIGHT_TARGET = 0.99
"""Target: connected at least this share of the night at each idle cut."""
GAP_TARGET_MS = 50.0
"""Target: the gap after a clean close, p50, on loopback."""
LATENCY_TARGET_MS = 5.0
"""Target: event -> state latency, p99."""
THROUGHPUT_TARGET = 5000
"""Target: events per second of a burst, none lost."""
MEMORY_BLOCKS_PER_EVENT_MAX = 0.01
"""Target (flat memory): after a warm-up, fewer allocated blocks gained than
one per 100 events; anything kept per event would be at least one each."""
MEMORY_RSS_GROWTH_MAX_MB = 5.0
"""Target (flat memory): resident memory grows by less than this."""
BURST_FIRST = 1_000_000
"""The burst's first event number (call ids apart from the other parts')."""
MEMORY_FIRST = 10_000_000
MEMORY_WARM_UP = 10_000
"""Events before the allocated blocks are counted again (caches fill)."""
EMIT_BATCH = 1000
"""A burst is emitted in batches of this many, yielding to the loop between."""
SERVE_CHUNK = 16 * 1024
"""The recorded stream is written in writes of this size (a busy server)."""
PARSER_RUNS = int(os.environ.get("BENCH_PARSER_RUNS", "5"))
PARSER_RATIO_TARGET = 1.0
"""Target: our EventStream with models at least as fast as aiohttp-sse-client2
followed by json.loads (the median of the runs' same-run ratios)."""
WAIT_TIMEOUT = 60.0


def log(message: str) -> None:
    """Print progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    """Return this process's resident memory in MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource  # noqa: PLC0415 (only where /proc is missing)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """Describe the machine the figures come from."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


def call_event(
    number: int, caller: str = "+79161234567", status: str = "success"
) -> tuple[str, dict[str, Any]]:
    """Return event `number` of an alternating incoming_call/call_end series."""
    call_id = 100000 + number // 2
    if number % 2 == 0:
        return "incoming_call", {
            "call_id": call_id,
            "call_src": caller,
            "call_dst": "101",
            "trunk": "GSM1",
        }
    return "call_end", {
        "call_id": call_id,
        "record_id": call_id,
        "duration": 0,
        "status": status,
    }


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Home Assistant -------------------------------------------------------------


async def start_hass(config_dir: str) -> HomeAssistant:
    """Return a running Home Assistant core with registries, without pytest."""
    hass = HomeAssistant(config_dir)
    hass.config.skip_pip = True
    hass.config.skip_pip_packages = []
    await hass.config.async_set_time_zone("UTC")
    hass.config.country = "RU"  # numbers without + are read as Russian ones
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    loader.async_setup(hass)
    await bootstrap.async_load_base_functionality(hass)
    hass.auth = await auth.auth_manager_from_config(hass, [], [])
    # Like the test harness: running, without firing `homeassistant_start`, so
    # the HTTP server (a dependency of `webhook`) never listens.
    hass.set_state(CoreState.running)
    http = {"server_host": ["127.0.0.1"], "server_port": free_port()}
    if not await async_setup_component(hass, "http", {"http": http}):
        raise RuntimeError("http did not set up")
    if not await async_setup_component(hass, "webhook", {}):
        raise RuntimeError("webhook did not set up")
    return hass


async def wait_for(condition: Callable[[], bool], limit: float) -> bool:
    """Yield to the loop until `condition()` holds; tell whether it did."""
    deadline = time.perf_counter() + limit
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0)
    return True


async def setup_entry(hass: HomeAssistant, emu: SpRecordEmulator) -> float:
    """Add the entry through the config flow; return seconds until entities."""
    start = time.perf_counter()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emu.url, CONF_API_KEY: HA_KEY}
    )
    if result["type"] != "create_entry":
        raise RuntimeError(f"config flow failed: {result}")
    if not await wait_for(lambda: hass.states.get(CALL_STATE) is not None, 30):
        raise RuntimeError(f"{CALL_STATE} never appeared")
    elapsed = time.perf_counter() - start
    if not await wait_for(lambda: emu.open_streams(HA_KEY) == 1, 10):
        raise RuntimeError("the integration did not open its stream")
    return elapsed


class BusCounter:
    """Count `sprecord_event` bus events; wake a waiter at a target count."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Listen on the bus."""
        self.count = 0
        self.last_at = 0.0
        self._target = 0
        self._future: asyncio.Future[float] | None = None
        self._unsub = hass.bus.async_listen(EVENT_SPRECORD, self._on_event)

    @callback
    def _on_event(self, _event: Event) -> None:
        self.count += 1
        self.last_at = time.perf_counter()
        future = self._future
        if future is not None and self.count >= self._target and not future.done():
            future.set_result(self.last_at)

    def expect(self, target: int) -> asyncio.Future[float]:
        """Return a future set (to its perf_counter) at the target count."""
        self._target = target
        self._future = asyncio.get_running_loop().create_future()
        if self.count >= target:
            self._future.set_result(self.last_at)
        return self._future

    def close(self) -> None:
        """Stop listening."""
        self._unsub()


async def emit_burst(
    emu: SpRecordEmulator,
    key: str,
    count: int,
    first: int,
    last_status: str = "success",
) -> None:
    """Emit `count` call events in batches, yielding to the loop between.

    The last event (a `call_end` when `count` is even) ends with `last_status`.
    """
    last = first + count - 1
    for start in range(0, count, EMIT_BATCH):
        for number in range(first + start, first + min(start + EMIT_BATCH, count)):
            status = last_status if number == last else "success"
            event_type, payload = call_event(number, status=status)
            emu.emit(event_type, payload, key=key)
        await asyncio.sleep(0)


# --- the bare-parser floor ------------------------------------------------------


class FloorReader:
    """A raw aiohttp GET of /sys/events fed to `SSEParser`: the floor."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Prepare the reader; `start()` opens the stream."""
        self._session = session
        self._url = url
        self.count = 0
        self._target = 0
        self._future: asyncio.Future[float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._response: aiohttp.ClientResponse | None = None

    async def start(self, emu: SpRecordEmulator) -> None:
        """Open the stream and read it in a task."""
        self._response = await self._session.get(
            f"{self._url}/sys/events",
            headers={"Authorization": f"Bearer {FLOOR_KEY}"},
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._task = asyncio.create_task(self._read(self._response))
        if not await wait_for(lambda: emu.open_streams(FLOOR_KEY) == 1, 10):
            raise RuntimeError("the floor stream did not open")

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        parser = SSEParser()
        content = response.content
        while chunk := await content.readany():
            events = parser.feed(chunk)
            if not events:
                continue
            self.count += len(events)
            future = self._future
            if future is not None and self.count >= self._target and not future.done():
                future.set_result(time.perf_counter())

    def expect(self, target: int) -> asyncio.Future[float]:
        """Return a future set (to its perf_counter) at the target count."""
        self._target = target
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    async def stop(self) -> None:
        """Close the stream."""
        if self._response is not None:
            self._response.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task


# --- the phonebook ----------------------------------------------------------------


def contact_number(index: int) -> str:
    """Return contact `index`'s number as the PBX sends it (E.164)."""
    return f"+7916{index:07d}"


def write_vcard(path: Path, contacts: int) -> tuple[int, int]:
    """Write a vCard of `contacts` people, numbers written the ways people do.

    Every tenth contact has a second number. Return how many numbers, and
    the file's size in bytes.
    """
    ways = (
        lambda d: f"+7 916 {d[:3]}-{d[3:5]}-{d[5:]}",
        lambda d: f"8 (916) {d[:3]}-{d[3:5]}-{d[5:]}",
        lambda d: f"7916{d}",
    )
    numbers = 0
    with path.open("w", encoding="utf-8") as file:
        for index in range(contacts):
            digits = f"{index:07d}"
            lines = [
                "BEGIN:VCARD",
                "VERSION:3.0",
                f"FN:Контакт {index}",
                f"TEL;TYPE=CELL:{ways[index % 3](digits)}",
            ]
            if index % 10 == 0:
                lines.append(f"TEL;TYPE=WORK:+7 495 {digits[:3]}-{digits[3:]}")
            lines.append("END:VCARD")
            numbers += len(lines) - 4
            file.write("\r\n".join(lines) + "\r\n")
    return numbers, path.stat().st_size


def write_qp_folded_vcard(path: Path, size: int) -> int:
    """Write one card whose quoted-printable note is soft-broken every 76 bytes.

    A phone's vCard 2.1 export writes a long note (or photo) this way.
    Return the file's size in bytes.
    """
    word = ["=D0=97", "=D0=B0", "=D0=BC", "=D0=B5", "=D1=82", "=D0=BA", "=D0=B0", " "]
    chunks: list[str] = []
    line: list[str] = []
    width = written = 0
    while written < size:  # lines of at most 75 characters and a `=`
        for token in word:
            if width + len(token) > 75:
                chunks.append("".join(line))
                line, width = [], 0
            line.append(token)
            width += len(token)
            written += len(token)
    chunks.append("".join(line))
    lines = [
        "BEGIN:VCARD",
        "VERSION:2.1",
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=90=D0=BD=D0=BD=D0=B0",
        "TEL;CELL:+7 916 000-00-01",
        "NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:" + "=\r\n".join(chunks),
        "END:VCARD",
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    return path.stat().st_size


async def measure_qp_folded(
    hass: HomeAssistant, config_dir: str, plain: Path, plain_size: int
) -> dict[str, Any]:
    """Read the soft-broken vCard, and beside it the plain one, the same way."""
    path = Path(config_dir, "folded.vcf")
    size = await hass.async_add_executor_job(
        write_qp_folded_vcard, path, QP_FOLDED_BYTES
    )
    timings: dict[str, float] = {}
    for name, file in (("qp_folded", path), ("plain", plain)):
        start = time.perf_counter()
        loaded = await hass.async_add_executor_job(
            read_phonebook_file, config_dir, file.name, "RU"
        )
        timings[name] = time.perf_counter() - start
        if not loaded.contacts:
            raise RuntimeError(f"the {name} vCard gave no contact")
    plain_mb = plain_size / 1e6
    return {
        "file_mb": round(size / 1e6, 2),
        "load_s": round(timings["qp_folded"], 3),
        "s_per_mb": round(timings["qp_folded"] / (size / 1e6), 3),
        "baseline_plain_vcard": {
            "file_mb": round(plain_mb, 2),
            "load_s": round(timings["plain"], 3),
            "s_per_mb": round(timings["plain"] / plain_mb, 3),
        },
    }


class LoopLag:
    """How late the event loop runs a 5 ms sleeper: it is blocked if late."""

    def __init__(self) -> None:
        """Measure nothing yet."""
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - start - 0.005)

    def __enter__(self) -> Self:
        """Start measuring."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop measuring."""
        if self._task is not None:
            self._task.cancel()


async def measure_phonebook(
    hass: HomeAssistant, emu: SpRecordEmulator, config_dir: str
) -> dict[str, Any]:
    """Load a big vCard the user's way; time it, the loop, the lookups.

    The file is named in the options (the entry reloads and reads it), then
    read again by the `reload_phonebook` action while a 5 ms sleeper checks
    that the loop stays free; the idle loop's lateness is the baseline.
    """
    path = Path(config_dir, "contacts.vcf")
    numbers, size = await hass.async_add_executor_job(
        write_vcard, path, PHONEBOOK_CONTACTS
    )
    [entry] = hass.config_entries.async_entries(DOMAIN)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    if result["type"] == "menu":  # the entry's settings, beside the auto-dialers
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "settings"}
        )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"transport": "sse", "call_timeout": 180, "phonebook_file": path.name},
    )
    if result["type"] != "create_entry":
        raise RuntimeError(f"the options refused the phonebook: {result}")
    await hass.async_block_till_done()
    if not await wait_for(lambda: emu.open_streams(HA_KEY) == 1, 10):
        raise RuntimeError("the entry did not come back after the options")
    phonebook = entry.runtime_data.coordinator.phonebook

    with LoopLag() as idle:
        await asyncio.sleep(1.0)
    with LoopLag() as loading:
        start = time.perf_counter()
        await hass.services.async_call(DOMAIN, "reload_phonebook", {}, blocking=True)
        load_s = time.perf_counter() - start
        await asyncio.sleep(0.05)
    if phonebook.phonebook.file_contacts != PHONEBOOK_CONTACTS:
        raise RuntimeError("the phonebook did not load every contact")

    # The lookup an event makes: the first sight of a number parses it, a
    # number seen before is a cache hit; either is one dictionary access.
    lookups = [contact_number(i) for i in range(0, PHONEBOOK_CONTACTS, 7)]
    start = time.perf_counter()
    cold = [phonebook.name_for(n) for n in lookups]
    cold_us = (time.perf_counter() - start) / len(lookups) * 1e6
    start = time.perf_counter()
    warm = [phonebook.name_for(n) for n in lookups]
    warm_us = (time.perf_counter() - start) / len(lookups) * 1e6
    if cold != warm or None in cold:
        raise RuntimeError("a phonebook number was not found by its name")
    qp_folded = await measure_qp_folded(hass, config_dir, path, size)
    return {
        "contacts": PHONEBOOK_CONTACTS,
        "numbers": numbers,
        "file_mb": round(size / 1e6, 2),
        "load_s": round(load_s, 3),
        "loop_lag_ms": {
            "during_load_max": round(loading.worst * 1000, 2),
            "idle_baseline_max": round(idle.worst * 1000, 2),
        },
        "lookup_us": {
            "first_sight": round(cold_us, 1),
            "seen_before": round(warm_us, 2),
        },
        "qp_folded_vcard": qp_folded,
    }


# --- the parts ------------------------------------------------------------------


async def measure_latency(
    hass: HomeAssistant, emu: SpRecordEmulator, floor: FloorReader
) -> dict[str, float]:
    """Emit events one at a time; time emit -> new state, and emit -> parsed."""
    loop = asyncio.get_running_loop()
    waiter: list[asyncio.Future[float]] = []

    @callback
    def on_state(event: Event) -> None:
        if event.data.get("entity_id") != CALL_STATE:
            return
        if waiter and not waiter[0].done():
            waiter[0].set_result(time.perf_counter())

    unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, on_state)
    ours: list[float] = []
    named = 0
    try:
        for number in range(LATENCY_EVENTS):
            # Each call from another contact: a number seen for the first time.
            caller = contact_number(number // 2 * 13 % PHONEBOOK_CONTACTS)
            event_type, payload = call_event(number, caller)
            waiter[:] = [loop.create_future()]
            start = time.perf_counter()
            emu.emit(event_type, payload, key=HA_KEY)
            done = await asyncio.wait_for(waiter[0], 10)
            ours.append((done - start) * 1000)
            state = hass.states.get(CALL_STATE)
            if event_type == "incoming_call" and state is not None:
                named += state.attributes.get("caller_name") is not None
            await asyncio.sleep(0.001)  # one event at a time: let the loop idle
    finally:
        unsub()

    floor_ms: list[float] = []
    for number in range(LATENCY_EVENTS):
        event_type, payload = call_event(number)
        future = floor.expect(floor.count + 1)
        start = time.perf_counter()
        emu.emit(event_type, payload, key=FLOOR_KEY)
        done = await asyncio.wait_for(future, 10)
        floor_ms.append((done - start) * 1000)
        await asyncio.sleep(0.001)
    return {
        "calls_named": f"{named} of {(LATENCY_EVENTS + 1) // 2}",
        "p50": round(statistics.median(ours), 3),
        "p99": round(pct(ours, 0.99), 3),
        "floor_p50": round(statistics.median(floor_ms), 3),
        "floor_p99": round(pct(floor_ms, 0.99), 3),
        "target": {
            "p99_max_ms": LATENCY_TARGET_MS,
            "met": pct(ours, 0.99) <= LATENCY_TARGET_MS,
        },
    }


def final_states(hass: HomeAssistant) -> dict[str, Any]:
    """Return what the states that a burst ends in show."""
    call_state = hass.states.get(CALL_STATE)
    last_call = hass.states.get(LAST_CALL)
    missed = hass.states.get(MISSED_CALLS)
    return {
        "call_state": call_state.state if call_state else None,
        "last_call_result": last_call.state if last_call else None,
        "last_call_id": last_call.attributes.get("call_id") if last_call else None,
        "missed_calls": int(missed.state) if missed else None,
    }


async def measure_throughput(
    hass: HomeAssistant, emu: SpRecordEmulator, floor: FloorReader
) -> tuple[dict[str, Any], dict[str, float]]:
    """Push a burst through the integration and through the bare parser.

    Every event of the burst is looked for by its identity (type, call id),
    so a duplicate cannot stand in for a lost one. The burst's last call is
    missed (`no_answer`): afterwards the call state must be idle, the last
    call that one, and the missed calls one more. Return the figures and the
    CPU seconds per 1,000 events, end to end and of the floor.
    """
    missed_before = final_states(hass)["missed_calls"] or 0
    last_call_id = identity(BURST_FIRST + BURST_EVENTS - 1)[1]
    delivered = Delivered(hass)
    try:
        done = delivered.expect(BURST_EVENTS)
        cpu0 = time.process_time()
        start = time.perf_counter()
        await emit_burst(emu, HA_KEY, BURST_EVENTS, BURST_FIRST, "no_answer")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(done), WAIT_TIMEOUT)
        cpu = time.process_time() - cpu0
        end = done.result() if done.done() else time.perf_counter()
        expected = {"call_state": "idle", "last_call_result": "no_answer"}
        expected |= {"last_call_id": last_call_id, "missed_calls": missed_before + 1}
        # Anything late still counts; the states settle after the last event.
        await wait_for(lambda: final_states(hass) == expected, 2.0)
        await asyncio.sleep(0.2)
    finally:
        delivered.close()
    wanted = [identity(n) for n in range(BURST_FIRST, BURST_FIRST + BURST_EVENTS)]
    lost = sum(1 for i in wanted if i not in delivered.seen)
    received = BURST_EVENTS - lost
    states = final_states(hass)

    floor_done = floor.expect(floor.count + BURST_EVENTS)
    fcpu0 = time.process_time()
    fstart = time.perf_counter()
    await emit_burst(emu, FLOOR_KEY, BURST_EVENTS, BURST_FIRST)
    fend = await asyncio.wait_for(floor_done, WAIT_TIMEOUT)
    fcpu = time.process_time() - fcpu0
    events_per_s = round(received / (end - start))
    figures = {
        "events": BURST_EVENTS,
        "events_per_s": events_per_s,
        "lost": lost,
        "duplicates": delivered.duplicates,
        "floor_events_per_s": round(BURST_EVENTS / (fend - fstart)),
        "final_state": {
            **states,
            "expected": expected,
            "ok": states == expected,
        },
        "target": {
            "min_events_per_s": THROUGHPUT_TARGET,
            "lost": 0,
            "met": events_per_s >= THROUGHPUT_TARGET
            and lost == 0
            and states == expected,
        },
    }
    cpu_figures = {
        "integration": round(cpu / BURST_EVENTS * 1000, 4),
        "floor": round(fcpu / BURST_EVENTS * 1000, 4),
    }
    return figures, cpu_figures


async def measure_memory(emu: SpRecordEmulator, counter: BusCounter) -> dict[str, Any]:
    """Push many events in batches, letting the loop drain.

    Resident memory before and after, and the interpreter's allocated blocks
    (`sys.getallocatedblocks`) before, after the first batch (the warm-up:
    bounded caches fill) and at the end: memory is flat when the blocks
    gained after the warm-up are fewer than one per 100 events.
    """
    # The warm-up outlasts the largest bounded cache (the stream ids kept to
    # recognise a replay, `dedupe.MAX_EVENTS`); a shorter run cannot be flat.
    warm_up = max(1, min(MEMORY_WARM_UP, MEMORY_EVENTS // 2))
    batch = 5000

    def blocks() -> int:
        gc.collect()
        return sys.getallocatedblocks()

    before_blocks = blocks()
    before = rss_mb()
    warm_blocks = before_blocks
    first = 0
    while first < MEMORY_EVENTS:
        count = min(batch, MEMORY_EVENTS - first, max(0, warm_up - first) or batch)
        done = counter.expect(counter.count + count)
        await emit_burst(emu, HA_KEY, count, MEMORY_FIRST + first)
        await asyncio.wait_for(done, WAIT_TIMEOUT)
        first += count
        if first == warm_up:
            await asyncio.sleep(0.5)
            warm_blocks = blocks()
    await asyncio.sleep(0.5)
    after_blocks = blocks()
    after = rss_mb()
    measured = MEMORY_EVENTS - warm_up
    per_event = (after_blocks - warm_blocks) / measured if measured else 0.0
    return {
        "events": MEMORY_EVENTS,
        "rss_mb": {"before": round(before, 1), "after": round(after, 1)},
        "allocated_blocks": {
            "before": before_blocks,
            "after_warm_up": warm_blocks,
            "after": after_blocks,
            "warm_up_events": warm_up,
            "gained_per_1000_events_after_warm_up": round(per_event * 1000, 2),
        },
        "target": {
            "blocks_per_event_max": MEMORY_BLOCKS_PER_EVENT_MAX,
            "rss_growth_max_mb": MEMORY_RSS_GROWTH_MAX_MB,
            "met": per_event < MEMORY_BLOCKS_PER_EVENT_MAX
            and after - before < MEMORY_RSS_GROWTH_MAX_MB,
        },
    }


class Delivered:
    """The identities (type, call id) of `sprecord_event`s on the bus."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Listen on the bus."""
        self.seen: dict[tuple[str, str], float] = {}
        self.duplicates = 0
        self._target = 0
        self._future: asyncio.Future[float] | None = None
        self._unsub = hass.bus.async_listen(EVENT_SPRECORD, self._on_event)

    @callback
    def _on_event(self, event: Event) -> None:
        identity = (
            str(event.data["event_type"]),
            str(event.data["payload"].get("call_id")),
        )
        now = time.perf_counter()
        if identity in self.seen:
            self.duplicates += 1
        else:
            self.seen[identity] = now
        future = self._future
        if future is not None and len(self.seen) >= self._target and not future.done():
            future.set_result(now)

    def expect(self, target: int) -> asyncio.Future[float]:
        """Return a future set (to its perf_counter) at `target` distinct events."""
        self._target = target
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    async def wait(self, identity: tuple[str, str], limit: float) -> float | None:
        """Return when `identity` arrived; None when not within `limit` s."""
        if await wait_for(lambda: identity in self.seen, limit):
            return self.seen[identity]
        return None

    def close(self) -> None:
        """Stop listening."""
        self._unsub()


def identity(number: int) -> tuple[str, str]:
    """Return the identity of `call_event(number)`."""
    event_type, payload = call_event(number)
    return event_type, str(payload["call_id"])


async def measure_reconnect(
    hass: HomeAssistant, emu: SpRecordEmulator, *, resuming: bool, first: int
) -> dict[str, Any]:
    """Drop the stream server-side again and again; time the gap each time.

    Before each drop the stream delivers an event and lives a while (a good
    stream, so the reconnect is immediate). The gap runs from the drop to
    the new stream's headers (the emulator stamps them); the connect time
    from the integration's call to connect to those headers. One event is
    sent inside each gap: a resuming server delivers it after
    `Last-Event-ID`, one that does not loses it; arrivals are matched by
    identity, not counted.
    """
    emu.set_stream_behaviour(replay=resuming)
    delivered = Delivered(hass)
    connects = ConnectTimer(hass, emu)
    gaps: dict[str, list[float]] = {"close": [], "abort": []}
    to_event: list[float] = []
    in_gap: list[tuple[str, str]] = []
    number = first
    try:
        for drop in range(RECONNECT_DROPS):
            mode = "close" if drop % 2 == 0 else "abort"
            emu.emit(*call_event(number), key=HA_KEY)  # the stream is good
            if await delivered.wait(identity(number), WAIT_TIMEOUT) is None:
                raise RuntimeError("an event on an open stream was not delivered")
            number += 1
            # A stream that lived a while: its end is a cut (scaled down here).
            await asyncio.sleep(HEALTHY_STREAM_SECONDS * 1.5)
            opened = len(emu.stream_open_times)
            start = time.perf_counter()
            emu.drop_streams(mode, key=HA_KEY)
            emu.emit(*call_event(number), key=HA_KEY)  # inside the gap
            in_gap.append(identity(number))
            number += 1
            if not await wait_for(
                lambda o=opened: len(emu.stream_open_times) > o, WAIT_TIMEOUT
            ):
                raise RuntimeError("the integration did not reconnect")
            gaps[mode].append(emu.stream_open_times[opened] - start)
            if resuming:
                arrived = await delivered.wait(in_gap[-1], WAIT_TIMEOUT)
                if arrived is not None:
                    to_event.append(arrived - start)
            log(
                f"reconnect {drop + 1} ({mode}, "
                f"{'resuming' if resuming else 'not resuming'}): "
                f"gap {gaps[mode][-1] * 1000:.1f} ms"
            )
        # Whatever is still to come has had its time.
        await asyncio.sleep(0.5)
    finally:
        delivered.close()
        connects.close()
    lost = [i for i in in_gap if i not in delivered.seen]
    result: dict[str, Any] = {
        "drops": RECONNECT_DROPS,
        "gap_ms": {
            mode: {
                "p50": round(pct(values, 0.5) * 1000, 1),
                "max": round(max(values) * 1000, 1),
            }
            for mode, values in gaps.items()
            if values
        },
        "sent_in_gap": len(in_gap),
        "lost": len(lost),
        "duplicates": delivered.duplicates,
        "connect_ms": connects.figures(emu),
    }
    if to_event:
        result["drop_to_event_ms"] = {
            "p50": round(pct(to_event, 0.5) * 1000, 1),
            "max": round(max(to_event) * 1000, 1),
        }
    return result


class ConnectTimer:
    """Time the integration's stream connects: its call to the headers.

    It wraps the entry's client's `connect`; each call is paired with the
    stream headers the emulator sends next.
    """

    def __init__(self, hass: HomeAssistant, emu: SpRecordEmulator) -> None:
        """Wrap the entry's client."""
        [entry] = hass.config_entries.async_entries(DOMAIN)
        self._client = entry.runtime_data.client
        self.calls: list[tuple[float, int]] = []
        """(perf_counter of the call, streams `emu` opened before it)."""
        original = self._client.connect

        async def connect(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((time.perf_counter(), len(emu.stream_open_times)))
            return await original(*args, **kwargs)

        setattr(self._client, "connect", connect)  # noqa: B010 (a method)

    def times(self, emu: SpRecordEmulator) -> list[float]:
        """Return the seconds from each connect to its stream's headers."""
        opened = list(emu.stream_open_times)
        return [
            opened[before] - called
            for called, before in self.calls
            if before < len(opened)
        ]

    def figures(self, emu: SpRecordEmulator) -> dict[str, float | int]:
        """Return the connect times, p50 and max, in milliseconds."""
        times = self.times(emu)
        return {
            "connects": len(times),
            "p50": round(pct(times, 0.5) * 1000, 2),
            "max": round(max(times) * 1000, 2),
        }

    def close(self) -> None:
        """Unwrap the client."""
        del self._client.connect


def simulate_night(
    idle_cut: float, connect_s: float, wait_after: Callable[[float], float]
) -> float:
    """Return the share of a night connected behind an idle-cutting proxy.

    On a simulated clock: each stream opens `connect_s` after its connect
    starts and, nothing being sent all night, is cut `idle_cut` later; the
    next connect starts `wait_after(lived)` after the cut.
    """
    night = NIGHT_HOURS * 3600
    now = connected = 0.0
    while now < night:
        now += connect_s
        lived = min(idle_cut, max(night - now, 0.0))
        connected += lived
        now += lived
        now += wait_after(lived)
    return connected / night


def slowest_connect(idle_cut: float) -> float:
    """Return the slowest connect (s) at which ours still meets the target.

    Loopback connects take a millisecond; a cloud's, with TLS, a few hundred:
    this says how slow they may be before the night falls below the target.
    """
    low, high = 0.0, idle_cut
    for _ in range(30):
        middle = (low + high) / 2
        policy = reconnect.ReconnectPolicy(rand=lambda: 1.0)
        share = simulate_night(
            idle_cut, middle, lambda lived, p=policy: p.stream_ended(lived, events=0)
        )
        low, high = (middle, high) if share >= QUIET_NIGHT_TARGET else (low, middle)
    return round(low, 3)


def measure_quiet_night(connect_s: float) -> dict[str, Any]:
    """Share of a quiet night connected, ours beside `EventSource`'s policy.

    Ours is `reconnect.ReconnectPolicy` itself (as shipped), told of each
    stream's end as the link tells it: no events, lived until the cut.
    """
    result: dict[str, Any] = {
        "hours": NIGHT_HOURS,
        "connect_ms": round(connect_s * 1000, 2),
        "eventsource_retry_s": EVENTSOURCE_RETRY,
    }
    met = True
    for cut in IDLE_CUTS:
        rand = random.Random(int(cut)).random  # noqa: S311 (not crypto)
        policy = reconnect.ReconnectPolicy(rand=rand)
        ours = simulate_night(
            cut, connect_s, lambda lived, p=policy: p.stream_ended(lived, events=0)
        )
        theirs = simulate_night(cut, connect_s, lambda _lived: EVENTSOURCE_RETRY)
        ok = ours >= QUIET_NIGHT_TARGET and ours > theirs
        met = met and ok
        result[f"idle_cut_{cut:g}_s"] = {
            "ours": round(ours, 5),
            "eventsource": round(theirs, 5),
            "met": ok,
            "slowest_connect_for_target_s": slowest_connect(cut),
        }
        log(
            f"quiet night, cut after {cut:g} s: connected {ours:.3%} "
            f"(EventSource-like {theirs:.3%})"
        )
    result["target"] = {
        "min_share": QUIET_NIGHT_TARGET,
        "above_eventsource": True,
        "met": met,
    }
    return result


def record_stream(frames: int) -> bytes:
    """Return the bytes of `frames` emulator frames (what a stream carries)."""
    emu = SpRecordEmulator()
    parts = []
    for number in range(frames):
        event_type, payload = call_event(number)
        envelope = {
            "device_id": DEFAULT_DEVICE_ID,
            "event_type": event_type,
            "payload": payload,
        }
        parts.append(emu.frame(number + 1, envelope))
    return b"".join(parts)


async def serve_recording(data: bytes) -> tuple[web.AppRunner, str]:
    """Serve the recorded bytes as an event stream on 127.0.0.1."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8"}
        )
        await response.prepare(request)
        view = memoryview(data)
        for offset in range(0, len(data), SERVE_CHUNK):
            await response.write(view[offset : offset + SERVE_CHUNK])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/stream"


def last_identity(frames: int) -> tuple[str, str]:
    """Return the (type, call id) of the recording's last event."""
    return identity(frames - 1)


async def run_ours(session: aiohttp.ClientSession, url: str, frames: int) -> float:
    """Read the recording with readany + SSEParser; return seconds."""
    start = time.perf_counter()
    parser = SSEParser()
    count = 0
    async with session.get(url) as response:
        content = response.content
        while count < frames and (chunk := await content.readany()):
            count += len(parser.feed(chunk))
    if count != frames:
        raise RuntimeError(f"our parser saw {count} of {frames} events")
    return time.perf_counter() - start


async def run_ours_stream(
    session: aiohttp.ClientSession, url: str, frames: int
) -> float:
    """Read the recording the integration's way: EventStream, events as models."""
    start = time.perf_counter()
    count = 0
    last: Any = None
    response = await session.get(url)
    async with EventStream(response, lambda _err: None) as stream:
        async for event in stream:
            last = event
            count += 1
            if count == frames:
                break
    elapsed = time.perf_counter() - start
    if count != frames:
        raise RuntimeError(f"EventStream saw {count} of {frames} events")
    if (last.type, last.call_id) != last_identity(frames):
        raise RuntimeError(f"EventStream's last event is not the last sent: {last}")
    return elapsed


async def run_theirs(
    session: aiohttp.ClientSession, url: str, frames: int, *, decode: bool = False
) -> float:
    """Read the recording with aiohttp-sse-client2's EventSource; return seconds.

    With `decode`, each event's data is also read with `json.loads`: the
    like-for-like of our EventStream, which hands out models.
    """
    from aiohttp_sse_client2 import client as sse_client  # noqa: PLC0415

    loads = json.loads
    start = time.perf_counter()
    count = 0
    envelope: Any = None
    async with sse_client.EventSource(url, session=session) as source:
        async for event in source:
            if decode:
                envelope = loads(event.data)
            count += 1
            if count == frames:
                break
    elapsed = time.perf_counter() - start
    if count != frames:
        raise RuntimeError(f"aiohttp-sse-client2 saw {count} of {frames} events")
    if decode and (
        envelope["event_type"],
        str(envelope["payload"]["call_id"]),
    ) != last_identity(frames):
        raise RuntimeError("aiohttp-sse-client2's last event is not the last sent")
    return elapsed


async def measure_parsers() -> dict[str, Any]:
    """Compare the readers on the same recorded stream over the same transport.

    Each run reads the recording four ways, one after another: our bare
    parser and aiohttp-sse-client2's (the parsers alone), and our EventStream
    with its models and aiohttp-sse-client2 followed by `json.loads` (the
    real path, like for like). The order alternates between runs; each ratio
    is taken within one run, and the median of the runs is reported.
    """
    data = record_stream(PARSER_FRAMES)
    megabytes = len(data) / 1e6
    log(f"parser: {PARSER_FRAMES} frames, {megabytes:.1f} MB recorded")
    runner, url = await serve_recording(data)
    times: dict[str, list[float]] = {
        "ours": [],
        "theirs": [],
        "stream": [],
        "theirs_json": [],
    }
    readers = {
        "ours": run_ours,
        "theirs": run_theirs,
        "stream": run_ours_stream,
        "theirs_json": lambda s, u, f: run_theirs(s, u, f, decode=True),
    }
    try:
        async with aiohttp.ClientSession() as session:
            for run in range(PARSER_RUNS):
                order = list(readers) if run % 2 == 0 else list(reversed(readers))
                for name in order:
                    gc.collect()
                    times[name].append(await readers[name](session, url, PARSER_FRAMES))
    finally:
        await runner.cleanup()

    def ratios(ours: str, theirs: str) -> list[float]:
        return [t / o for o, t in zip(times[ours], times[theirs], strict=True)]

    def mb_s(name: str) -> float:
        return round(megabytes / statistics.median(times[name]), 1)

    real = ratios("stream", "theirs_json")
    bare = ratios("ours", "theirs")
    real_ratio = round(statistics.median(real), 2)
    return {
        "recorded_mb": round(megabytes, 1),
        "frames": PARSER_FRAMES,
        "runs": PARSER_RUNS,
        "real_path": {
            "eventstream_models_mb_s": mb_s("stream"),
            "aiohttp_sse_client2_json_loads_mb_s": mb_s("theirs_json"),
            "ratio": real_ratio,
            "ratio_min": round(min(real), 2),
            "ratio_max": round(max(real), 2),
        },
        "bare_parser": {
            "ours_mb_s": mb_s("ours"),
            "aiohttp_sse_client2_mb_s": mb_s("theirs"),
            "ratio": round(statistics.median(bare), 2),
            "ratio_min": round(min(bare), 2),
            "ratio_max": round(max(bare), 2),
        },
        "target": {
            "real_path_ratio_min": PARSER_RATIO_TARGET,
            "met": real_ratio >= PARSER_RATIO_TARGET,
        },
    }


# --- main -------------------------------------------------------------------------


async def bench() -> dict[str, Any]:
    """Run every part; return the figures."""
    began = time.perf_counter()
    result: dict[str, Any] = {}
    log("parser vs aiohttp-sse-client2")
    result["parser"] = await measure_parsers()
    log(f"parser: {result['parser']}")

    emu = SpRecordEmulator(
        accounts={HA_KEY: DEFAULT_DEVICE_ID, FLOOR_KEY: DEFAULT_DEVICE_ID},
        keepalive=0,
    )
    await emu.start()
    with tempfile.TemporaryDirectory(prefix="sprecord-bench-") as config_dir:
        log("starting Home Assistant")
        hass = await start_hass(config_dir)
        session = aiohttp.ClientSession()
        floor = FloorReader(session, emu.url)
        counter: BusCounter | None = None
        try:
            log("setting the entry up through the config flow")
            result["setup_s"] = round(await setup_entry(hass, emu), 3)
            log(f"setup: {result['setup_s']} s")
            log(f"phonebook: a vCard of {PHONEBOOK_CONTACTS} contacts")
            result["phonebook"] = await measure_phonebook(hass, emu, config_dir)
            log(f"phonebook: {result['phonebook']}")
            counter = BusCounter(hass)
            await floor.start(emu)

            log(f"latency: {LATENCY_EVENTS} events one at a time")
            result["latency_ms"] = await measure_latency(hass, emu, floor)
            log(f"latency: {result['latency_ms']}")

            log(f"throughput: a burst of {BURST_EVENTS} events")
            throughput, cpu = await measure_throughput(hass, emu, floor)
            result["throughput"] = throughput
            result["cpu_s_per_1000_events"] = cpu
            log(f"throughput: {throughput}; CPU s/1000: {cpu}")
            await floor.stop()

            log(f"memory: {MEMORY_EVENTS} events in batches")
            result["memory"] = await measure_memory(emu, counter)
            log(f"memory: {result['memory']}")

            # The real reconnect path; only the life after which a stream's
            # end is a cut (5 s) is scaled down so drops can follow closely.
            reconnect.HEALTHY_STREAM_SECONDS = HEALTHY_STREAM_SECONDS
            gaps: dict[str, Any] = {"healthy_stream_s": HEALTHY_STREAM_SECONDS}
            for resuming in (True, False):
                kind = "resuming" if resuming else "not_resuming"
                log(f"reconnect: {RECONNECT_DROPS} drops, server {kind}")
                gaps[kind] = await measure_reconnect(
                    hass,
                    emu,
                    resuming=resuming,
                    first=2_000_000 if resuming else 3_000_000,
                )
                log(f"reconnect ({kind}): {gaps[kind]}")
            gap_p50 = gaps["resuming"]["gap_ms"]["close"]["p50"]
            gaps["target"] = {
                "gap_after_clean_close_p50_ms": GAP_TARGET_MS,
                "met": gap_p50 <= GAP_TARGET_MS and gaps["resuming"]["lost"] == 0,
            }
            result["reconnect"] = gaps
            # The night's connects take as long as this run's real ones.
            connect_ms = statistics.median(
                gaps[kind]["connect_ms"]["p50"] for kind in ("resuming", "not_resuming")
            )
            connect_ms = round(connect_ms, 2)
            log(f"quiet night: {NIGHT_HOURS:g} h, connects of {connect_ms} ms")
            result["quiet_night"] = measure_quiet_night(connect_ms / 1000)
        finally:
            if counter is not None:
                counter.close()
            await floor.stop()
            await session.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    for entry in hass.config_entries.async_entries(DOMAIN):
                        await hass.config_entries.async_unload(entry.entry_id)
                    await hass.async_stop(force=True)
            await emu.stop()
    result["machine"] = machine()
    targets = {
        "latency_p99": result["latency_ms"]["target"]["met"],
        "throughput": result["throughput"]["target"]["met"],
        "parser_real_path": result["parser"]["target"]["met"],
        "reconnect_gap": result["reconnect"]["target"]["met"],
        "quiet_night": result["quiet_night"]["target"]["met"],
        "memory_flat": result["memory"]["target"]["met"],
    }
    result["targets_met"] = {**targets, "all": all(targets.values())}
    log(f"done in {time.perf_counter() - began:.1f} s; targets: {targets}")
    order = [
        "targets_met",
        "latency_ms",
        "phonebook",
        "throughput",
        "parser",
        "reconnect",
        "quiet_night",
        "setup_s",
        "cpu_s_per_1000_events",
        "memory",
        "machine",
    ]
    return {key: result[key] for key in order}


def main() -> None:
    """Run the benchmark; print its JSON on stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(bench())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
