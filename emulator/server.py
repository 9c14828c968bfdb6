"""The SpRecord cloud emulator: event streams, webhooks and their limits.

It behaves as `shared/spec` describes the cloud: `GET /sys/events` streams
events as SSE (at most `max_streams` at once per key; the next gets 429),
`POST /sys/subscribe_events` verifies a hook with the MD5 handshake before it
stores it and then delivers events to it. Where the spec is silent it makes
the choices the client documents: the key is sent as `Authorization: Bearer`,
every event carries an SSE `id:`, a stream resumes after `Last-Event-ID`, and
a comment line keeps an idle stream alive.

One key (one account) may have several PBXs, as the vendor's cloud allows:
`accounts` maps a key to one device id or to a list of them (the first is the
key's default PBX), `add_pbx()` adds one later and `pbxs()` lists them. All
PBXs of a key share its streams, hook and stream limit; each event carries
the `device_id` of the PBX it comes from (`emit(..., device_id=...)`; default:
the key's first PBX). Scenarios spread their traffic over the key's PBXs.
`make_device_id(n)` gives the n-th made-up PBX id, base64-looking like the
vendor's and the same on every run.

Everything a test needs to break it on purpose lives on the class as methods
(drop, stall, raw bytes, failing auth, failing statuses, an idle-cutting
proxy in front) and is also served over HTTP under `/_emulator/` (see
`control.py`).
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
import hashlib
import itertools
import json
import random
import time
from typing import Any, Literal

from aiohttp import web

from .errors import json_error
from .scenarios import SCENARIOS, Step
from .webhooks import HookRegistry

DEFAULT_DEVICE_ID = (
    "Y7d6hP0mjNBI+WBT+yptpgY7uY+zX1Oumg9CQ7nr7HACJHy9Fg8IhCr41wO3j0Jl7zUU="
)
"""The PBX id from the vendor's own example."""


def make_device_id(number: int) -> str:
    """Return a made-up PBX id, the same for the same `number` on every run.

    It looks like the vendor's: the base64 of 50 bytes, 68 characters of
    `A-Z`, `a-z`, `0-9`, `+` and `/` ending in `=`.
    """
    digest = hashlib.sha512(f"sprecord-emulator-pbx-{number}".encode()).digest()
    return base64.b64encode(digest[:50]).decode()


DropMode = Literal["close", "abort", "mid_event"]
_STOP = object()
"""Queue marker: end the response cleanly."""
_CUT = object()
"""Queue marker: write half an event, then cut the TCP connection."""
_HALF_EVENT = b'id: 0\r\ndata: {"device_id": "x", "event_ty'
_POLL_SECONDS = 0.5
"""How often an idle stream handler checks that its client is still there."""
KEEPALIVE_STYLES = ("comment", "empty-data")
"""Keep-alive forms seen on SSE servers: a `: ping` comment line (what
sse-starlette, common under FastAPI, sends), or an event whose data is
empty."""


@dataclass(eq=False)
class _Stream:
    """One open SSE connection."""

    number: int
    key: str
    request: web.Request
    queue: asyncio.Queue[bytes | object] = field(default_factory=asyncio.Queue)
    stalled: bool = False
    opened: float | None = None
    """`time.perf_counter()` when its headers were sent."""


@dataclass
class EmulatorStats:
    """What the emulator saw; tests and benchmarks read it."""

    connects: int = 0
    """Streams accepted."""
    rejected_auth: int = 0
    rejected_busy: int = 0
    """Streams refused with 429."""
    rejected_forced: int = 0
    """Streams refused with a status forced by `fail_streams()`."""
    rejected_subscriptions: int = 0
    """Subscriptions refused with a status forced by `fail_subscriptions()`."""
    max_open_streams: int = 0
    """The most streams one key held open at the same moment."""
    idle_cuts: int = 0
    """Streams ended because they sent nothing for `idle_cut` seconds."""
    events_emitted: int = 0
    frames_written: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the figures as a dict."""
        return dict(self.__dict__)


class SpRecordEmulator:
    """An in-process SpRecord cloud; `start()` serves it on a port."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, str | Sequence[str]] | None = None,
        max_streams: int = 3,
        keepalive: float = 15.0,
        keepalive_style: str = "comment",
        history: int = 1000,
        replay: bool = True,
        separator: str = "\r\n",
        verify_timeout: float = 10.0,
        auth_scheme: str = "bearer",
        openapi: bool = False,
        idle_cut: float | None = None,
    ) -> None:
        """Configure the emulator.

        `accounts` maps API keys to the PBX device id they see, or to a list
        of device ids when the account has several PBXs, the first being the
        key's default (default: key `demo`, the vendor's example device).
        `keepalive` is the interval of keep-alives on an idle stream (0:
        a server that sends none); `keepalive_style` is their form, a
        comment line or an event with empty data (`KEEPALIVE_STYLES`).
        `history` events are kept for resuming after `Last-Event-ID` when
        `replay` is on. `auth_scheme` is the one way
        the key is taken (`set_auth_scheme()`); with `openapi`, the server
        serves an `/openapi.json` that declares it. `idle_cut` puts an
        idle-cutting proxy in front (`set_idle_cut()`).
        """
        self.auth_scheme = "bearer"
        self.openapi = openapi
        self.set_auth_scheme(auth_scheme, openapi=openapi)
        self.accounts: dict[str, str] = {}
        """API key -> the device id of its first (default) PBX."""
        self._more_pbxs: dict[str, list[str]] = {}
        """API key -> the device ids of its other PBXs, in the order added."""
        for key, given in (accounts or {"demo": DEFAULT_DEVICE_ID}).items():
            ids = [given] if isinstance(given, str) else list(given)
            if not ids:
                raise ValueError(f"key {key!r} needs at least one PBX")
            self.accounts[key] = ids[0]
            for device_id in ids[1:]:
                self.add_pbx(device_id, key=key)
        self.max_streams = max_streams
        self.keepalive = keepalive
        self.keepalive_style = "comment"
        self.set_stream_behaviour(keepalive_style=keepalive_style)
        self.replay = replay
        self.idle_cut: float | None = None
        """Seconds of silence after which a stream is ended (None: never)."""
        self.set_idle_cut(idle_cut)
        self.resume_overlap = 0
        """Events at or before `Last-Event-ID` sent again on resuming (a server
        that resumes at-least-once); 0 resumes exactly after it."""
        self.resume_beyond_history = False
        """Resuming after an id older than the events kept: send all those kept
        (True), or nothing (False)."""
        self.separator = separator
        self.stats = EmulatorStats()
        self.hooks = HookRegistry(verify_timeout=verify_timeout)
        self._history: deque[tuple[int, str, bytes]] = deque(maxlen=history)
        self._ids = itertools.count(1)
        self._stream_numbers = itertools.count(1)
        self._streams: dict[str, set[_Stream]] = {}
        self._refused_keys: set[str] = set()
        self._forced: deque[int] = deque()
        self._forced_subscriptions: deque[int] = deque()
        self.stream_open_times: deque[float] = deque(maxlen=1000)
        """`time.perf_counter()` when each stream's headers were sent."""
        self.stream_spans: deque[tuple[str, float, float]] = deque(maxlen=1000)
        """(key, opened, ended) of the streams that ended, in
        `time.perf_counter()` seconds (see `connected_seconds()`)."""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._player: asyncio.Task[None] | None = None
        self.url = ""
        """The base URL once `start()` has run."""
        self.app = self._build_app()

    # --- serving ----------------------------------------------------------

    def _build_app(self) -> web.Application:
        """Build the aiohttp application with the API and control routes."""
        from .control import add_control_routes  # noqa: PLC0415 (cycle)

        app = web.Application()
        app.router.add_get("/sys/events", self._handle_events)
        app.router.add_get("/openapi.json", self._handle_openapi)
        app.router.add_post("/sys/subscribe_events", self._handle_subscribe)
        add_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); return the base URL."""
        # Cancel a stream handler as soon as its client goes away, so the
        # connection count is exact (aiohttp does not do it by default).
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        await self.hooks.start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def restart_server(self, pause: float = 0.0) -> None:
        """Stop listening (every connection ends), wait, listen again.

        Clients see their streams end and connections refused meanwhile, as
        during a deployment of the cloud. Events, hooks and counts are kept.
        """
        assert self._runner is not None  # noqa: S101 (started first)
        host, port = self._runner.addresses[0][:2]
        await self._runner.cleanup()
        self._runner = None
        if pause:
            await asyncio.sleep(pause)
        self.app = self._build_app()
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        """Stop serving and end every stream, scenario and delivery."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.drop_streams("close")
        await self.hooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def run_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a background job that `stop()` cancels."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- the API ----------------------------------------------------------

    def set_auth_scheme(self, scheme: str, *, openapi: bool = False) -> None:
        """Take the key one way only, as the real server does.

        `scheme` is `bearer` (an `Authorization: Bearer` header), `header:NAME`
        or `query:NAME`. With `openapi`, `/openapi.json` declares the scheme,
        as FastAPI does; without, it answers 404.
        """
        kind, _, name = scheme.partition(":")
        if not (kind == "bearer" and not name) and not (
            kind in ("header", "query") and name
        ):
            raise ValueError(f"not an authentication scheme: {scheme!r}")
        self.auth_scheme = scheme
        self.openapi = openapi

    def _presented_key(self, request: web.Request) -> str:
        """Return the key the request sends the way the server takes it."""
        kind, _, name = self.auth_scheme.partition(":")
        if kind == "header":
            return request.headers.get(name, "")
        if kind == "query":
            return request.query.get(name, "")
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return key if scheme.lower() == "bearer" else ""

    def openapi_document(self) -> dict[str, Any]:
        """Return the OpenAPI document a FastAPI server would serve."""
        kind, _, name = self.auth_scheme.partition(":")
        declared: dict[str, Any] = (
            {"type": "http", "scheme": "bearer"}
            if kind == "bearer"
            else {"type": "apiKey", "in": kind, "name": name}
        )
        operation: dict[str, Any] = {"security": [{"SpRecordKey": []}], "responses": {}}
        return {
            "openapi": "3.1.0",
            "info": {"title": "SpRecord cloud (emulated)", "version": "1"},
            "paths": {
                "/sys/events": {"get": operation},
                "/sys/subscribe_events": {"post": operation},
            },
            "components": {"securitySchemes": {"SpRecordKey": declared}},
        }

    async def _handle_openapi(self, _request: web.Request) -> web.Response:
        """Serve `/openapi.json` when the emulated server publishes one."""
        if not self.openapi:
            return json_error(404, "Not Found")
        return web.json_response(self.openapi_document())

    def _key_of(self, request: web.Request) -> str | None:
        """Return the request's API key if it is a valid, accepted one."""
        key = self._presented_key(request)
        if key not in self.accounts:
            return None
        if key in self._refused_keys:
            return None
        return key

    async def _handle_events(self, request: web.Request) -> web.StreamResponse:
        """Serve `GET /sys/events`: an endless SSE stream of the key's events."""
        key = self._key_of(request)
        if key is None:
            self.stats.rejected_auth += 1
            return json_error(401, "Invalid or missing API key")
        if self._forced:
            self.stats.rejected_forced += 1
            status = self._forced.popleft()
            return json_error(status, f"Emulated failure {status}")
        streams = self._streams.setdefault(key, set())
        if len(streams) >= self.max_streams:
            self.stats.rejected_busy += 1
            return json_error(429, f"Too many connections (at most {self.max_streams})")

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        stream = _Stream(next(self._stream_numbers), key, request)
        streams.add(stream)
        self.stats.connects += 1
        self.stats.max_open_streams = max(self.stats.max_open_streams, len(streams))
        try:
            await response.prepare(request)
            stream.opened = time.perf_counter()
            self.stream_open_times.append(stream.opened)
            await self._replay(stream, request.headers.get("Last-Event-ID"))
            await self._pump(stream, response)
        except ConnectionError:
            pass
        finally:
            streams.discard(stream)
            if stream.opened is not None:
                self.stream_spans.append((key, stream.opened, time.perf_counter()))
        return response

    def set_stream_behaviour(
        self,
        *,
        keepalive: float | None = None,
        keepalive_style: str | None = None,
        replay: bool | None = None,
    ) -> None:
        """Change what the vendor leaves open, for streams open and to come.

        `keepalive` seconds between keep-alives (0: none), their style, and
        whether `Last-Event-ID` resumes the stream.
        """
        if keepalive is not None:
            if keepalive < 0:
                raise ValueError("keepalive must be 0 or more seconds")
            self.keepalive = keepalive
        if keepalive_style is not None:
            if keepalive_style not in KEEPALIVE_STYLES:
                raise ValueError(
                    f"keepalive_style must be one of {', '.join(KEEPALIVE_STYLES)}"
                )
            self.keepalive_style = keepalive_style
        if replay is not None:
            self.replay = replay

    def set_idle_cut(self, seconds: float | None) -> None:
        """Behave like a proxy that ends a response silent for `seconds`.

        Many HTTP proxies do (nginx after 60 s, some routers after 55 s,
        office proxies sooner): a stream that sent nothing, neither an event
        nor a keep-alive, for that long is ended cleanly, as a proxy ends a
        response. None or 0 takes the proxy away. It holds for streams open
        and to come; silence counts from the stream's last write (or its
        headers).
        """
        if seconds is not None and seconds < 0:
            raise ValueError("idle_cut must be 0 (off) or more seconds")
        self.idle_cut = seconds or None

    def _keepalive_frame(self) -> bytes:
        """Return one keep-alive in the configured style."""
        end = self.separator
        if self.keepalive_style == "comment":
            return f": ping{end}{end}".encode()
        return f"event: ping{end}data:{end}{end}".encode()

    async def _replay(self, stream: _Stream, last_event_id: str | None) -> None:
        """Queue the key's events newer than `last_event_id`, if still held."""
        if not self.replay or not last_event_id or not last_event_id.isdigit():
            return
        # A server may resume at-least-once: from a little before the id.
        after = max(int(last_event_id) - self.resume_overlap, 0)
        # The gap older than what is kept: nothing to resume, or (a server
        # may do that instead) all that is kept.
        if (
            not self._history or self._history[0][0] > after + 1
        ) and not self.resume_beyond_history:
            return
        for event_id, key, frame in self._history:
            if event_id > after and key == stream.key:
                stream.queue.put_nowait(frame)

    async def _pump(self, stream: _Stream, response: web.StreamResponse) -> None:
        """Write queued frames (and keep-alives) until the stream ends.

        With an idle cut, a stream silent for that long ends here (cleanly).
        """
        queue = stream.queue
        transport = stream.request.transport
        loop = asyncio.get_running_loop()
        written = loop.time()  # its last bytes sent: the headers, at first
        while transport is not None and not transport.is_closing():
            silent = loop.time() - written
            # Silent, with nothing to send either: a proxy ends it here.
            if self.idle_cut is not None and silent >= self.idle_cut and queue.empty():
                self.stats.idle_cuts += 1
                return
            try:
                item = await asyncio.wait_for(queue.get(), self._wait(stream, silent))
            except TimeoutError:
                if self._keepalive_due(stream, loop.time() - written):
                    await response.write(self._keepalive_frame())
                    written = loop.time()
                continue
            items = [item]
            while not queue.empty():
                items.append(queue.get_nowait())
            if _STOP in items:
                return
            if stream.stalled:
                continue  # a stalled link: the socket stays, nothing reaches it
            if _CUT in items:
                await response.write(_HALF_EVENT)
                transport.abort()
                return
            await response.write(b"".join(i for i in items if isinstance(i, bytes)))
            written = loop.time()
            self.stats.frames_written += len(items)

    def _wait(self, stream: _Stream, silent: float) -> float:
        """Return how long a stream silent for `silent` s may wait for a frame."""
        wait = _POLL_SECONDS
        if self.keepalive > 0 and not stream.stalled:
            wait = min(wait, max(self.keepalive - silent, 0.001))
        if self.idle_cut is not None:
            wait = min(wait, max(self.idle_cut - silent, 0.001))
        return wait

    def _keepalive_due(self, stream: _Stream, silent: float) -> bool:
        """Tell whether a stream silent for `silent` s gets a keep-alive now."""
        return self.keepalive > 0 and not stream.stalled and silent >= self.keepalive

    async def _handle_subscribe(self, request: web.Request) -> web.Response:
        """Serve `POST /sys/subscribe_events`: verify the hook, then store it.

        One hook serves all the key's PBXs; the handshake names the first
        (the spec does not say which PBX an account's handshake names).
        """
        key = self._key_of(request)
        if key is None:
            return json_error(401, "Invalid or missing API key")
        if self._forced_subscriptions:
            self.stats.rejected_subscriptions += 1
            status = self._forced_subscriptions.popleft()
            return json_error(status, "Forced failure")
        try:
            body = await request.json()
        except ValueError:
            return json_error(422, "Body must be JSON")
        return await self.hooks.subscribe(key, self.accounts[key], body)

    # --- accounts and their PBXs ---------------------------------------------

    def pbxs(self, key: str | None = None) -> list[str]:
        """Return the device ids of the PBXs of `key` (default: first key).

        The first is the key's default PBX, `accounts[key]`.
        """
        key = key or next(iter(self.accounts))
        first = self.accounts[key]
        more = self._more_pbxs.get(key, [])
        return [first, *(d for d in more if d != first)]

    def add_pbx(self, device_id: str | None = None, *, key: str | None = None) -> str:
        """Give `key` (default: first key) one more PBX; return its device id.

        Without `device_id`, a new one is made up (see `make_device_id`).
        Adding a PBX the key already has changes nothing. Its events go to the
        key's streams and hook from then on, as the cloud does when a PBX is
        bound to an account.
        """
        key = key or next(iter(self.accounts))
        if key not in self.accounts:
            raise KeyError(key)
        if device_id is None:
            taken = {d for ids in self.all_pbxs().values() for d in ids}
            device_id = next(
                d for n in itertools.count(1) if (d := make_device_id(n)) not in taken
            )
        if device_id not in self.pbxs(key):
            self._more_pbxs.setdefault(key, []).append(device_id)
        return device_id

    def all_pbxs(self) -> dict[str, list[str]]:
        """Return every key's PBX device ids (see `pbxs()`)."""
        return {key: self.pbxs(key) for key in self.accounts}

    # --- events -----------------------------------------------------------

    def frame(self, event_id: int, envelope: Mapping[str, Any]) -> bytes:
        """Return the SSE frame of one event."""
        sep = self.separator
        data = json.dumps(envelope, ensure_ascii=False)
        return f"id: {event_id}{sep}data: {data}{sep}{sep}".encode()

    def emit(
        self,
        event_type: str,
        payload: Mapping[str, Any] | str | None = None,
        *,
        key: str | None = None,
        device_id: str | None = None,
    ) -> int:
        """Send an event to every stream and hook of `key` (default: first).

        `device_id` is the PBX it comes from (default: the key's first PBX);
        any id is sent as given, one of another key or of no key included.
        Returns the event's SSE id.
        """
        key = key or next(iter(self.accounts))
        envelope = {
            "device_id": device_id or self.accounts[key],
            "event_type": event_type,
            "payload": {} if payload is None else payload,
        }
        event_id = next(self._ids)
        frame = self.frame(event_id, envelope)
        self._history.append((event_id, key, frame))
        self.stats.events_emitted += 1
        for stream in self._streams.get(key, ()):
            stream.queue.put_nowait(frame)
        self.hooks.deliver(key, event_id, envelope)
        return event_id

    def emit_raw(self, data: bytes, *, key: str | None = None) -> int:
        """Write raw bytes to every open stream (of `key`, or all)."""
        count = 0
        for stream in self._all_streams(key):
            stream.queue.put_nowait(data)
            count += 1
        return count

    def play(
        self,
        name: str,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        key: str | None = None,
    ) -> None:
        """Start playing a scenario (see `scenarios.py`), replacing any other.

        The traffic is spread over the PBXs that `key` (default: first key)
        has now; with one PBX it is the same as before accounts had several.
        """
        self.stop_playing()
        key = key or next(iter(self.accounts))
        pbxs = self.pbxs(key)
        rng = random.Random(seed)  # noqa: S311 (not crypto)
        steps = SCENARIOS[name](rng, pbxs=len(pbxs))
        self._player = self.run_task(self._play(steps, speed, key, pbxs))

    def stop_playing(self) -> bool:
        """Stop the scenario that plays; tell whether one did."""
        player, self._player = self._player, None
        if player is None or player.done():
            return False
        player.cancel()
        return True

    async def _play(
        self, steps: Iterator[Step], speed: float, key: str, pbxs: list[str]
    ) -> None:
        """Emit the steps of a scenario at `speed` times their pace.

        A step's `pbx` is an index into `pbxs`, the key's PBXs at the start.
        """
        for step in steps:
            if step.delay:
                await asyncio.sleep(step.delay / speed)
            device_id = pbxs[step.pbx % len(pbxs)]
            self.emit(step.event_type, step.payload, key=key, device_id=device_id)

    # --- faults -----------------------------------------------------------

    def _all_streams(self, key: str | None = None) -> list[_Stream]:
        """Return the open streams of one key or of all keys."""
        if key is not None:
            return list(self._streams.get(key, ()))
        return [s for streams in self._streams.values() for s in streams]

    def drop_streams(self, mode: DropMode = "abort", *, key: str | None = None) -> int:
        """End every open stream from the server side; return how many.

        `close` ends the response cleanly, `abort` cuts the TCP connection,
        `mid_event` writes half an event and then cuts it.
        """
        streams = self._all_streams(key)
        for stream in streams:
            transport = stream.request.transport
            if mode == "close" or transport is None:
                stream.queue.put_nowait(_STOP)
            elif mode == "mid_event":
                stream.queue.put_nowait(_CUT)
            else:
                transport.abort()
        return len(streams)

    def stall_streams(self, *, key: str | None = None) -> int:
        """Keep every open stream's socket but send nothing more on it."""
        streams = self._all_streams(key)
        for stream in streams:
            stream.stalled = True
        return len(streams)

    def refuse_key(self, key: str, *, refuse: bool = True, drop: bool = True) -> None:
        """Make `key` fail authentication (401), or accept it again.

        With `drop`, its open streams are closed too, as a server does when a
        key is revoked.
        """
        if refuse:
            self._refused_keys.add(key)
            if drop:
                self.drop_streams("close", key=key)
        else:
            self._refused_keys.discard(key)

    def fail_streams(self, status: int, count: int = 1) -> None:
        """Answer the next `count` stream requests with HTTP `status`."""
        self._forced.extend([status] * count)

    def fail_subscriptions(self, status: int, count: int = 1) -> None:
        """Answer the next `count` `/sys/subscribe_events` with HTTP `status`."""
        self._forced_subscriptions.extend([status] * count)

    def clear_failures(self) -> None:
        """Forget the forced answers still to give."""
        self._forced.clear()
        self._forced_subscriptions.clear()

    def restart_ids(self) -> None:
        """Count SSE ids from 1 again, as a server that lost its state does."""
        self._ids = itertools.count(1)
        self._history.clear()

    def forget_history(self, keep: int) -> None:
        """Keep only the last `keep` events for resuming (a server keeps some)."""
        while len(self._history) > keep:
            self._history.popleft()

    def open_streams(self, key: str | None = None) -> int:
        """Return how many streams are open (for `key`, or in all)."""
        return len(self._all_streams(key))

    def connected_seconds(
        self, since: float, until: float | None = None, *, key: str | None = None
    ) -> float:
        """Return how long a stream (of `key`, or of any) was open in a span.

        `since` and `until` (default: now) are `time.perf_counter()`
        readings; time with two streams open counts once. It covers the
        last streams kept in `stream_spans` and the open ones.
        """
        until = time.perf_counter() if until is None else until
        spans = [
            (opened, ended)
            for span_key, opened, ended in self.stream_spans
            if key is None or span_key == key
        ]
        spans += [(s.opened, until) for s in self._all_streams(key) if s.opened]
        total, reach = 0.0, since
        for opened, ended in sorted(spans):
            start, end = max(opened, reach), min(ended, until)
            if end > start:
                total += end - start
                reach = end
        return total

    def reset_stats(self) -> None:
        """Start counting afresh (open streams stay open)."""
        self.stats = EmulatorStats(
            max_open_streams=max((len(s) for s in self._streams.values()), default=0)
        )
        self.hooks.reset_stats()

    def state(self) -> dict[str, Any]:
        """Return everything a test may want to read, as JSON."""
        return {
            "auth_scheme": self.auth_scheme,
            "keepalive": self.keepalive,
            "keepalive_style": self.keepalive_style,
            "replay": self.replay,
            "idle_cut": self.idle_cut,
            "openapi": self.openapi,
            "pbxs": self.all_pbxs(),
            "open_streams": {key: len(s) for key, s in self._streams.items()},
            "stats": self.stats.as_dict(),
            "hooks": self.hooks.state(),
        }
