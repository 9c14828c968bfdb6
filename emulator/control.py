r"""HTTP control API of the emulator, under `/_emulator/`.

The same operations as the emulator's methods, for the demo, the browser
journey and benchmarks that run it as a separate process. Bodies are JSON:

- `POST events`: `{"event_type", "payload", "key"?, "device_id"?}`, or
  `{"events": [...]}` of those: emits events, answers their SSE ids. Without
  `device_id` an event comes from the key's first PBX.
- `POST pbxs`: `{"key"?, "device_id"?}`: gives the key (default: the first)
  one more PBX, with a made-up id when none is given; answers
  `{"key", "device_id", "pbxs"}` (`pbxs`: all the key's PBX ids, first the
  default one).
- `POST raw`: `{"text"}` or `{"base64"}`: writes raw bytes to every stream.
- `POST drop`: `{"mode"}` (`abort`, `close` or `mid_event`): ends every stream.
- `POST stall`: open streams go silent, their sockets kept.
- `POST auth`: `{"key"?, "valid"}`: makes a key fail authentication, or pass.
- `POST auth_scheme`: `{"scheme", "openapi"?}`: the one way the key is taken
  from now on (`bearer`, `header:NAME`, `query:NAME`); with `openapi`,
  `/openapi.json` declares it.
- `POST fail_streams`: `{"status", "count"?}`: the next stream requests fail.
- `POST stream_behaviour`: `{"keepalive"?, "keepalive_style"?, "replay"?}`:
  seconds between keep-alives (0: none), their form (`comment`,
  `empty-data`), and whether `Last-Event-ID` resumes; answers all three.
- `POST idle_cut`: `{"seconds"}`: an idle-cutting proxy in front: a stream
  that sent nothing for that long is ended cleanly (0 or null: none);
  `DELETE` takes it away. Both answer `{"idle_cut"}` (null: none).
- `POST scenario`: `{"name", "speed"?}` plays a scenario; `DELETE` stops it.
- `GET state`: each key's PBXs (`pbxs`: key -> device ids, first the
  default one), the stream behaviour and idle cut, open streams, counts
  (`idle_cuts` among them), hooks and deliveries.
- `POST reset`: resets the counts.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import json_error
from .scenarios import SCENARIOS

if TYPE_CHECKING:
    from .server import SpRecordEmulator

PREFIX = "/_emulator"


def add_control_routes(app: web.Application, emulator: SpRecordEmulator) -> None:
    """Add the control routes for `emulator` to `app`."""
    routes = _ControlRoutes(emulator)
    app.router.add_post(f"{PREFIX}/events", routes.events)
    app.router.add_post(f"{PREFIX}/pbxs", routes.add_pbx)
    app.router.add_post(f"{PREFIX}/raw", routes.raw)
    app.router.add_post(f"{PREFIX}/drop", routes.drop)
    app.router.add_post(f"{PREFIX}/stall", routes.stall)
    app.router.add_post(f"{PREFIX}/auth", routes.auth)
    app.router.add_post(f"{PREFIX}/auth_scheme", routes.auth_scheme)
    app.router.add_post(f"{PREFIX}/fail_streams", routes.fail_streams)
    app.router.add_post(f"{PREFIX}/stream_behaviour", routes.stream_behaviour)
    app.router.add_post(f"{PREFIX}/idle_cut", routes.set_idle_cut)
    app.router.add_delete(f"{PREFIX}/idle_cut", routes.clear_idle_cut)
    app.router.add_post(f"{PREFIX}/scenario", routes.start_scenario)
    app.router.add_delete(f"{PREFIX}/scenario", routes.stop_scenario)
    app.router.add_get(f"{PREFIX}/state", routes.state)
    app.router.add_post(f"{PREFIX}/reset", routes.reset)


async def _body(request: web.Request) -> dict[str, Any]:
    """Return the JSON object body (empty when there is none)."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as err:
        raise web.HTTPUnprocessableEntity(text="body must be JSON") from err
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(text="body must be a JSON object")
    return body


class _ControlRoutes:
    """Handlers that call the emulator's methods."""

    def __init__(self, emulator: SpRecordEmulator) -> None:
        self._emulator = emulator

    async def events(self, request: web.Request) -> web.Response:
        """Emit one event or a list of them."""
        body = await _body(request)
        items = body.get("events", [body])
        ids = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(
                item.get("event_type"), str
            ):
                return json_error(422, "every event needs an event_type")
            key = item.get("key")
            if key is not None and key not in self._emulator.accounts:
                return json_error(422, "unknown key")
            ids.append(
                self._emulator.emit(
                    item["event_type"],
                    item.get("payload"),
                    key=key,
                    device_id=item.get("device_id"),
                )
            )
        return web.json_response({"ids": ids})

    async def add_pbx(self, request: web.Request) -> web.Response:
        """Give a key one more PBX."""
        body = await _body(request)
        key = body.get("key", next(iter(self._emulator.accounts)))
        if key not in self._emulator.accounts:
            return json_error(422, "unknown key")
        device_id = body.get("device_id")
        if device_id is not None and (not isinstance(device_id, str) or not device_id):
            return json_error(422, "device_id must be a non-empty string")
        device_id = self._emulator.add_pbx(device_id, key=key)
        return web.json_response(
            {"key": key, "device_id": device_id, "pbxs": self._emulator.pbxs(key)}
        )

    async def raw(self, request: web.Request) -> web.Response:
        """Write raw bytes to every open stream."""
        body = await _body(request)
        if "base64" in body:
            try:
                data = base64.b64decode(body["base64"], validate=True)
            except (binascii.Error, TypeError):
                return json_error(422, "base64 is not valid")
        elif isinstance(body.get("text"), str):
            data = body["text"].encode()
        else:
            return json_error(422, "give text or base64")
        return web.json_response({"streams": self._emulator.emit_raw(data)})

    async def drop(self, request: web.Request) -> web.Response:
        """End every open stream from the server side."""
        mode = (await _body(request)).get("mode", "abort")
        if mode not in ("abort", "close", "mid_event"):
            return json_error(422, "mode is abort, close or mid_event")
        return web.json_response({"streams": self._emulator.drop_streams(mode)})

    async def stall(self, request: web.Request) -> web.Response:
        """Make every open stream go silent with its socket kept open."""
        await _body(request)
        return web.json_response({"streams": self._emulator.stall_streams()})

    async def auth(self, request: web.Request) -> web.Response:
        """Make a key fail authentication, or pass again."""
        body = await _body(request)
        key = body.get("key", next(iter(self._emulator.accounts)))
        if key not in self._emulator.accounts:
            return json_error(422, "unknown key")
        self._emulator.refuse_key(key, refuse=not body.get("valid", False))
        return web.json_response({"key_valid": bool(body.get("valid", False))})

    async def auth_scheme(self, request: web.Request) -> web.Response:
        """Take the key one way only, declared in `/openapi.json` or not."""
        body = await _body(request)
        scheme, openapi = body.get("scheme"), body.get("openapi", False)
        if not isinstance(scheme, str) or not isinstance(openapi, bool):
            return json_error(422, "scheme must be a string, openapi a boolean")
        try:
            self._emulator.set_auth_scheme(scheme, openapi=openapi)
        except ValueError as err:
            return json_error(422, str(err))
        return web.json_response({"scheme": scheme, "openapi": openapi})

    async def stream_behaviour(self, request: web.Request) -> web.Response:
        """Set keep-alives (interval, style) and whether streams resume."""
        body = await _body(request)
        keepalive = body.get("keepalive")
        style = body.get("keepalive_style")
        replay = body.get("replay")
        if keepalive is not None and (
            isinstance(keepalive, bool) or not isinstance(keepalive, int | float)
        ):
            return json_error(422, "keepalive must be a number of seconds")
        if style is not None and not isinstance(style, str):
            return json_error(422, "keepalive_style must be a string")
        if replay is not None and not isinstance(replay, bool):
            return json_error(422, "replay must be a boolean")
        try:
            self._emulator.set_stream_behaviour(
                keepalive=keepalive, keepalive_style=style, replay=replay
            )
        except ValueError as err:
            return json_error(422, str(err))
        emulator = self._emulator
        return web.json_response(
            {
                "keepalive": emulator.keepalive,
                "keepalive_style": emulator.keepalive_style,
                "replay": emulator.replay,
            }
        )

    async def set_idle_cut(self, request: web.Request) -> web.Response:
        """Put an idle-cutting proxy in front of the streams, or take it away."""
        seconds = (await _body(request)).get("seconds")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or seconds < 0
        ):
            return json_error(422, "seconds must be 0 (none) or more, or null")
        self._emulator.set_idle_cut(seconds)
        return web.json_response({"idle_cut": self._emulator.idle_cut})

    async def clear_idle_cut(self, _request: web.Request) -> web.Response:
        """Take the idle-cutting proxy away."""
        self._emulator.set_idle_cut(None)
        return web.json_response({"idle_cut": None})

    async def fail_streams(self, request: web.Request) -> web.Response:
        """Answer the next stream requests with an error status."""
        body = await _body(request)
        status, count = body.get("status"), body.get("count", 1)
        if not isinstance(status, int) or not 400 <= status <= 599:
            return json_error(422, "status must be 400..599")
        if not isinstance(count, int) or count < 1:
            return json_error(422, "count must be a positive integer")
        self._emulator.fail_streams(status, count)
        return web.json_response({"status": status, "count": count})

    async def start_scenario(self, request: web.Request) -> web.Response:
        """Start playing a scenario (replacing one that plays)."""
        body = await _body(request)
        name, speed = body.get("name"), body.get("speed", 1.0)
        if name not in SCENARIOS:
            return json_error(422, f"scenarios: {', '.join(SCENARIOS)}")
        if not isinstance(speed, int | float) or speed <= 0:
            return json_error(422, "speed must be a positive number")
        self._emulator.play(name, speed=float(speed))
        return web.json_response({"scenario": name, "speed": speed})

    async def stop_scenario(self, _request: web.Request) -> web.Response:
        """Stop the scenario that plays."""
        return web.json_response({"stopped": self._emulator.stop_playing()})

    async def state(self, _request: web.Request) -> web.Response:
        """Report open streams, counts, hooks and deliveries."""
        return web.json_response(self._emulator.state())

    async def reset(self, _request: web.Request) -> web.Response:
        """Reset the counts."""
        self._emulator.reset_stats()
        return web.json_response(self._emulator.state())
