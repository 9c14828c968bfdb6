"""The emulator's own behaviour: limits, control API, scenarios, CLI."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
import contextlib
import hashlib
import itertools
import json
import os
from pathlib import Path
import random
import re
import signal
import sys
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.sprecord.api import SpRecordClient, parse_event
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator
from emulator.__main__ import _parser, _serve
from emulator.scenarios import SCENARIOS, Step
from emulator.server import make_device_id

AUTH = {"Authorization": "Bearer demo"}
SECOND_PBX = make_device_id(1)


@pytest.fixture
async def http(
    emulator: SpRecordEmulator,
) -> AsyncIterator[aiohttp.ClientSession]:
    """Return a session whose relative URLs go to the emulator."""
    async with aiohttp.ClientSession(base_url=emulator.url) as session:
        yield session


async def wait_for(condition: Any) -> None:
    """Wait until `condition()` holds, within two seconds."""
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.005)


async def read_frames(response: aiohttp.ClientResponse, count: int) -> bytes:
    """Read until `count` blank-line-terminated frames came."""
    data = b""
    async with asyncio.timeout(2):
        while data.count(b"\r\n\r\n") < count:
            data += await response.content.readany()
    return data


def envelopes(data: bytes) -> list[dict[str, Any]]:
    """Return the events of SSE frames as dicts."""
    return [
        parse_event(frame.split(b"data: ", 1)[1]).as_dict()
        for frame in data.split(b"\r\n\r\n")
        if b"data: " in frame
    ]


# --- the API ---------------------------------------------


async def test_stream_frames_have_ids_and_crlf(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.get("/sys/events", headers=AUTH) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        await wait_for(lambda: emulator.open_streams() == 1)
        emulator.emit("startup")
        emulator.emit("incoming_call", {"call_id": 1})
        data = await read_frames(response, 2)
    first, second, _ = data.split(b"\r\n\r\n")
    assert first.startswith(b"id: 1\r\ndata: ")
    assert second.startswith(b"id: 2\r\ndata: ")
    envelope = parse_event(first.split(b"data: ", 1)[1]).as_dict()
    assert envelope == {
        "device_id": DEFAULT_DEVICE_ID,
        "event_type": "startup",
        "payload": {},
    }


async def test_keepalive_comments(socket_enabled: None) -> None:
    emulator = SpRecordEmulator(keepalive=0.02)
    await emulator.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emulator.url}/sys/events", headers=AUTH) as response,
        ):
            data = await read_frames(response, 3)
        assert data.startswith(b": ping\r\n\r\n: ping\r\n\r\n")
    finally:
        await emulator.stop()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic demo"}],
)
async def test_stream_needs_the_bearer_key(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with http.get("/sys/events", headers=headers) as response:
        assert response.status == 401
        assert "detail" in await response.json()
    assert emulator.stats.rejected_auth == 1


async def test_at_most_three_streams_per_key(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.accounts["other"] = "device-2"
    responses = [await http.get("/sys/events", headers=AUTH) for _ in range(3)]
    fourth = await http.get("/sys/events", headers=AUTH)
    assert fourth.status == 429
    assert await fourth.json() == {"detail": "Too many connections (at most 3)"}
    other = await http.get("/sys/events", headers={"Authorization": "Bearer other"})
    assert other.status == 200  # the limit is per key
    assert emulator.stats.max_open_streams == 3
    for response in [*responses, other]:
        response.close()
    await wait_for(lambda: emulator.open_streams() == 0)


async def test_replay_only_the_keys_events_after_last_event_id(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.accounts["other"] = "device-2"
    emulator.emit("startup")
    emulator.emit("startup", key="other")
    emulator.emit("incoming_sms", {"n": 3})
    headers = {**AUTH, "Last-Event-ID": "1"}
    async with http.get("/sys/events", headers=headers) as response:
        data = await read_frames(response, 1)
    assert data.startswith(b"id: 3\r\n")


async def test_no_replay_when_the_gap_is_older_than_history(
    socket_enabled: None,
) -> None:
    emulator = SpRecordEmulator(keepalive=0, history=2)
    await emulator.start()
    try:
        for _ in range(5):
            emulator.emit("startup")
        async with aiohttp.ClientSession() as session:
            headers = {**AUTH, "Last-Event-ID": "1"}
            async with session.get(
                f"{emulator.url}/sys/events", headers=headers
            ) as response:
                await wait_for(lambda: emulator.open_streams() == 1)
                emulator.emit("startup")
                data = await read_frames(response, 1)
        assert data.startswith(b"id: 6\r\n")  # 2..5 are gone, nothing replayed
    finally:
        await emulator.stop()


async def test_refused_key_drops_streams_and_fails_auth(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    response = await http.get("/sys/events", headers=AUTH)
    await wait_for(lambda: emulator.open_streams() == 1)
    emulator.refuse_key("demo")
    assert await response.content.read() == b""  # closed by the server
    async with http.get("/sys/events", headers=AUTH) as again:
        assert again.status == 401
    emulator.refuse_key("demo", refuse=False)
    async with http.get("/sys/events", headers=AUTH) as again:
        assert again.status == 200


async def test_client_disconnect_frees_the_slot_at_once(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    for _ in range(20):
        response = await http.get("/sys/events", headers=AUTH)
        assert response.status == 200
        response.close()
        await wait_for(lambda: emulator.open_streams() == 0)
    assert emulator.stats.max_open_streams == 1
    assert emulator.stats.connects == 20


# --- several PBXs on one key ---------------------------------------------


def test_made_up_device_ids_look_like_the_vendors() -> None:
    ids = [make_device_id(n) for n in range(1, 6)]
    assert len(set(ids)) == 5
    assert ids == [make_device_id(n) for n in range(1, 6)]  # the same every run
    for device_id in ids:
        # The vendor's example has 69 characters, not valid base64; ours are.
        assert len(device_id) == 68
        assert device_id.endswith("=")
        assert len(base64.b64decode(device_id, validate=True)) == 50


def test_accounts_take_one_pbx_or_a_list() -> None:
    emulator = SpRecordEmulator(
        accounts={"demo": [DEFAULT_DEVICE_ID, SECOND_PBX], "other": "device-2"}
    )
    assert emulator.accounts == {"demo": DEFAULT_DEVICE_ID, "other": "device-2"}
    assert emulator.pbxs() == emulator.pbxs("demo") == [DEFAULT_DEVICE_ID, SECOND_PBX]
    assert emulator.pbxs("other") == ["device-2"]
    assert emulator.state()["pbxs"] == {
        "demo": [DEFAULT_DEVICE_ID, SECOND_PBX],
        "other": ["device-2"],
    }
    assert SpRecordEmulator().pbxs() == [DEFAULT_DEVICE_ID]
    with pytest.raises(ValueError, match="at least one PBX"):
        SpRecordEmulator(accounts={"demo": []})


def test_add_pbx() -> None:
    emulator = SpRecordEmulator()
    emulator.accounts["other"] = "device-2"  # as tests add keys
    assert emulator.add_pbx() == SECOND_PBX  # a made-up id
    assert emulator.add_pbx() == make_device_id(2)
    assert emulator.add_pbx("mine", key="other") == "mine"
    assert emulator.add_pbx("mine", key="other") == "mine"  # already there
    assert emulator.add_pbx(SECOND_PBX, key="other") == SECOND_PBX
    assert emulator.add_pbx(key="other") == make_device_id(3)  # not a taken one
    assert emulator.all_pbxs() == {
        "demo": [DEFAULT_DEVICE_ID, SECOND_PBX, make_device_id(2)],
        "other": ["device-2", "mine", SECOND_PBX, make_device_id(3)],
    }
    assert emulator.accounts["demo"] == DEFAULT_DEVICE_ID  # still the default
    with pytest.raises(KeyError):
        emulator.add_pbx(key="nobody")


async def test_a_key_with_two_pbxs_streams_the_events_of_both(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.add_pbx(SECOND_PBX)
    async with http.get("/sys/events", headers=AUTH) as response:
        await wait_for(lambda: emulator.open_streams() == 1)
        emulator.emit("startup")
        emulator.emit("startup", device_id=SECOND_PBX)
        emulator.emit("incoming_call", {"call_id": 1, "trunk": "GSM1"})
        emulator.emit(
            "incoming_call", {"call_id": 1, "trunk": "GSM1"}, device_id=SECOND_PBX
        )
        data = await read_frames(response, 4)
    assert [(e["device_id"], e["event_type"]) for e in envelopes(data)] == [
        (DEFAULT_DEVICE_ID, "startup"),
        (SECOND_PBX, "startup"),
        (DEFAULT_DEVICE_ID, "incoming_call"),
        (SECOND_PBX, "incoming_call"),
    ]
    # Both PBXs share the key's stream limit, and resuming gives both.
    headers = {**AUTH, "Last-Event-ID": "2"}
    async with http.get("/sys/events", headers=headers) as response:
        data = await read_frames(response, 2)
    assert [e["device_id"] for e in envelopes(data)] == [DEFAULT_DEVICE_ID, SECOND_PBX]


async def test_a_keys_hook_gets_the_events_of_both_pbxs(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.add_pbx(SECOND_PBX)
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        if body["event_type"] == "verification":
            digest = hashlib.md5(body["payload"].encode()).hexdigest()  # noqa: S324
            return web.json_response({"result": digest})
        received.append(body)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        body = {"hook": f"http://127.0.0.1:{port}/hook", "subscribe": ["startup"]}
        async with http.post(
            "/sys/subscribe_events", json=body, headers=AUTH
        ) as response:
            assert response.status == 200
        emulator.emit("startup", device_id=SECOND_PBX)
        emulator.emit("startup")
        await emulator.hooks.drain()
    finally:
        await runner.cleanup()
    assert [e["device_id"] for e in received] == [SECOND_PBX, DEFAULT_DEVICE_ID]
    # The handshake names the key's first PBX.
    assert emulator.hooks.verifications[0]["ok"]


async def test_control_adds_a_pbx(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post("/_emulator/pbxs") as response:
        assert await response.json() == {
            "key": "demo",
            "device_id": SECOND_PBX,
            "pbxs": [DEFAULT_DEVICE_ID, SECOND_PBX],
        }
    emulator.accounts["other"] = "device-2"
    body = {"key": "other", "device_id": "branch"}
    async with http.post("/_emulator/pbxs", json=body) as response:
        assert (await response.json())["pbxs"] == ["device-2", "branch"]
    async with http.get("/_emulator/state") as response:
        assert (await response.json())["pbxs"] == {
            "demo": [DEFAULT_DEVICE_ID, SECOND_PBX],
            "other": ["device-2", "branch"],
        }
    event = {"event_type": "startup", "key": "other", "device_id": "branch"}
    async with http.post("/_emulator/events", json=event) as response:
        assert response.status == 200


# --- subscribe_events validation ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "body must be a JSON object"),
        ({"subscribe": []}, "hook must be a string"),
        ({"hook": "ftp://x", "subscribe": []}, "http(s) URL"),
        ({"hook": "http://x"}, "subscribe must be a list"),
        (
            {"hook": "http://x", "subscribe": ["ringing"]},
            "unknown event types: ringing",
        ),
    ],
)
async def test_subscribe_validates_the_body(
    http: aiohttp.ClientSession, body: Any, detail: str
) -> None:
    async with http.post("/sys/subscribe_events", json=body, headers=AUTH) as response:
        assert response.status == 422
        assert detail in (await response.json())["detail"]


async def test_subscribe_not_json_and_no_key(http: aiohttp.ClientSession) -> None:
    async with http.post("/sys/subscribe_events", data="{", headers=AUTH) as response:
        assert response.status == 422
    async with http.post("/sys/subscribe_events", json={}) as response:
        assert response.status == 401


async def test_subscribe_to_unreachable_hook_fails(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    body = {"hook": f"http://127.0.0.1:{unused_tcp_port}/h", "subscribe": ["call_end"]}
    async with http.post("/sys/subscribe_events", json=body, headers=AUTH) as response:
        assert response.status == 400
        assert "unreachable" in (await response.json())["detail"]
    assert emulator.state()["hooks"]["verifications"][0]["error"]


async def test_empty_hook_clears_the_registration(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    body = {"hook": "", "subscribe": []}
    async with http.post("/sys/subscribe_events", json=body, headers=AUTH) as response:
        assert await response.json() == {"hook": "", "subscribe": []}
    assert emulator.hooks.get("demo") is None


# --- control API ---------------------------------------------


async def test_control_events_and_state(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/_emulator/events", json={"event_type": "startup"}
    ) as response:
        assert await response.json() == {"ids": [1]}
    events = [{"event_type": "call_end", "payload": {"call_id": 1}}] * 2
    async with http.post("/_emulator/events", json={"events": events}) as response:
        assert await response.json() == {"ids": [2, 3]}
    async with http.get("/_emulator/state") as response:
        state = await response.json()
    assert state["stats"]["events_emitted"] == 3
    assert state["open_streams"] == {}
    async with http.post("/_emulator/reset") as response:
        assert (await response.json())["stats"]["events_emitted"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {}},
        {"events": [5]},
        {"event_type": "startup", "key": "nobody"},
    ],
)
async def test_control_events_rejects(http: aiohttp.ClientSession, body: Any) -> None:
    async with http.post("/_emulator/events", json=body) as response:
        assert response.status == 422


@pytest.mark.parametrize("data", ["[1]", "{"])
async def test_control_body_must_be_a_json_object(
    http: aiohttp.ClientSession, data: str
) -> None:
    async with http.post("/_emulator/events", data=data) as response:
        assert response.status == 422


async def test_control_raw_drop_stall(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    stream = await http.get("/sys/events", headers=AUTH)
    await wait_for(lambda: emulator.open_streams() == 1)
    async with http.post("/_emulator/raw", json={"text": "data: 1\r\n\r\n"}) as r:
        assert await r.json() == {"streams": 1}
    encoded = base64.b64encode(b"data: 2\r\n\r\n").decode()
    async with http.post("/_emulator/raw", json={"base64": encoded}) as r:
        assert await r.json() == {"streams": 1}
    assert await read_frames(stream, 2) == b"data: 1\r\n\r\ndata: 2\r\n\r\n"
    async with http.post("/_emulator/stall") as r:
        assert await r.json() == {"streams": 1}
    async with http.post("/_emulator/drop", json={"mode": "close"}) as r:
        assert await r.json() == {"streams": 1}
    await wait_for(lambda: emulator.open_streams() == 0)
    stream.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_emulator/raw", {}),
        ("/_emulator/raw", {"base64": "***"}),
        ("/_emulator/drop", {"mode": "explode"}),
        ("/_emulator/auth", {"key": "nobody"}),
        ("/_emulator/fail_streams", {"status": 200}),
        ("/_emulator/fail_streams", {"status": 500, "count": 0}),
        ("/_emulator/scenario", {"name": "party"}),
        ("/_emulator/scenario", {"name": "office", "speed": 0}),
        ("/_emulator/pbxs", {"key": "nobody"}),
        ("/_emulator/pbxs", {"device_id": 5}),
        ("/_emulator/pbxs", {"device_id": ""}),
        ("/_emulator/auth_scheme", {"scheme": "cookie:x"}),
        ("/_emulator/auth_scheme", {"scheme": "bearer", "openapi": "yes"}),
        ("/_emulator/auth_scheme", {}),
        ("/_emulator/stream_behaviour", {"keepalive": "15"}),
        ("/_emulator/stream_behaviour", {"keepalive": True}),
        ("/_emulator/stream_behaviour", {"keepalive": -1}),
        ("/_emulator/stream_behaviour", {"keepalive_style": "whistle"}),
        ("/_emulator/stream_behaviour", {"keepalive_style": 1}),
        ("/_emulator/stream_behaviour", {"replay": "no"}),
        ("/_emulator/idle_cut", {"seconds": "55"}),
        ("/_emulator/idle_cut", {"seconds": True}),
        ("/_emulator/idle_cut", {"seconds": -1}),
    ],
)
async def test_control_rejects_bad_requests(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> None:
    async with http.post(path, json=body) as response:
        assert response.status == 422


async def test_control_auth_and_fail_streams(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post("/_emulator/auth", json={"valid": False}) as r:
        assert await r.json() == {"key_valid": False}
    async with http.get("/sys/events", headers=AUTH) as r:
        assert r.status == 401
    async with http.post("/_emulator/auth", json={"valid": True}) as r:
        assert await r.json() == {"key_valid": True}
    async with http.post(
        "/_emulator/fail_streams", json={"status": 503, "count": 2}
    ) as r:
        assert r.status == 200
    statuses = []
    for _ in range(3):
        async with http.get("/sys/events", headers=AUTH) as r:
            statuses.append(r.status)
    assert statuses == [503, 503, 200]
    assert emulator.stats.rejected_forced == 2


async def test_the_key_is_taken_one_way_at_a_time(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    """Like the real server: one scheme, declared in /openapi.json or not."""
    async with http.get("/openapi.json") as r:
        assert r.status == 404  # published only when asked
    body = {"scheme": "query:token", "openapi": True}
    async with http.post("/_emulator/auth_scheme", json=body) as r:
        assert await r.json() == body
    async with http.get("/sys/events", headers=AUTH) as r:
        assert r.status == 401  # bearer is not this server's way
    async with http.get("/sys/events", params={"token": "demo"}) as r:
        assert r.status == 200
    async with http.get("/openapi.json") as r:
        document = await r.json()
    assert document["components"]["securitySchemes"]["SpRecordKey"] == {
        "type": "apiKey",
        "in": "query",
        "name": "token",
    }
    assert document["paths"]["/sys/events"]["get"]["security"] == [{"SpRecordKey": []}]
    emulator.set_auth_scheme("header:X-API-Key")
    async with http.get("/sys/events", headers={"X-API-Key": "demo"}) as r:
        assert r.status == 200
    async with http.get("/sys/events", headers={"X-API-Key": "other"}) as r:
        assert r.status == 401
    assert emulator.state()["auth_scheme"] == "header:X-API-Key"
    with pytest.raises(ValueError, match="not an authentication scheme"):
        emulator.set_auth_scheme("header:")


async def test_keepalives_and_resuming_are_set_at_run_time(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    """What the vendor leaves open can be each plausible way."""
    body = {"keepalive": 0.05, "keepalive_style": "empty-data", "replay": False}
    async with http.post("/_emulator/stream_behaviour", json=body) as r:
        assert await r.json() == body
    assert {k: emulator.state()[k] for k in body} == body
    async with http.get("/sys/events", headers=AUTH) as r:
        received = b""
        while received.count(b"event: ping") < 2:
            received += await r.content.readany()
    assert b"event: ping\r\ndata:\r\n\r\n" in received
    async with http.post(
        "/_emulator/stream_behaviour", json={"keepalive_style": "comment"}
    ) as r:
        assert (await r.json())["keepalive"] == 0.05  # the rest kept
    async with http.get("/sys/events", headers=AUTH) as r:
        assert (await r.content.readany()).startswith(b": ping\r\n\r\n")
    emulator.emit("startup")
    async with http.get("/sys/events", headers={**AUTH, "Last-Event-ID": "0"}) as r:
        assert b"startup" not in await r.content.readany()  # nothing resumed


# --- an idle-cutting proxy in front ---------------------------------------------


async def test_idle_cut_ends_a_silent_stream_cleanly(socket_enabled: None) -> None:
    """Like a proxy's end of a response: the body ends, the connection is fine."""
    emulator = SpRecordEmulator(keepalive=0, idle_cut=0.05)
    await emulator.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emulator.url}/sys/events", headers=AUTH) as response,
        ):
            assert response.status == 200
            async with asyncio.timeout(2):
                assert await response.content.read() == b""
            assert response.content.at_eof()
        await wait_for(lambda: emulator.open_streams() == 0)
        assert emulator.stats.idle_cuts == 1
        assert emulator.state()["idle_cut"] == 0.05
        assert emulator.state()["stats"]["idle_cuts"] == 1
    finally:
        await emulator.stop()


async def test_idle_cut_counts_silence_from_the_last_event(
    socket_enabled: None,
) -> None:
    """Every event sent restarts the silence: the cut comes after the last one."""
    emulator = SpRecordEmulator(keepalive=0, idle_cut=0.05)
    await emulator.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emulator.url}/sys/events", headers=AUTH) as response,
        ):
            await wait_for(lambda: emulator.open_streams() == 1)
            emulator.emit("startup")
            assert (await read_frames(response, 1)).startswith(b"id: 1\r\n")
            assert emulator.stats.idle_cuts == 0
            async with asyncio.timeout(2):
                assert await response.content.read() == b""
        assert emulator.stats.idle_cuts == 1
    finally:
        await emulator.stop()


async def test_idle_cut_spares_a_stream_with_keepalives(socket_enabled: None) -> None:
    """Keep-alives more often than the cut keep the stream, however late."""
    emulator = SpRecordEmulator(keepalive=0.01, idle_cut=0.03)
    await emulator.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emulator.url}/sys/events", headers=AUTH) as response,
        ):
            data = await read_frames(response, 10)
            assert data.count(b": ping\r\n\r\n") >= 10
            assert emulator.open_streams() == 1
        assert emulator.stats.idle_cuts == 0
    finally:
        await emulator.stop()


async def test_idle_cut_reconnects_resume(socket_enabled: None) -> None:
    """Cut, reconnect with `Last-Event-ID`: what came meanwhile is replayed."""
    emulator = SpRecordEmulator(keepalive=0, idle_cut=0.05)
    await emulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{emulator.url}/sys/events"
            async with session.get(url, headers=AUTH) as response:
                await wait_for(lambda: emulator.open_streams() == 1)
                emulator.emit("startup")
                data = await response.content.read()  # the event, then the cut
                assert data.startswith(b"id: 1\r\n")
                assert data.endswith(b"\r\n\r\n")
            emulator.emit("incoming_sms", {"sms_src": "+7"})
            headers = {**AUTH, "Last-Event-ID": "1"}
            async with session.get(url, headers=headers) as response:
                assert (await response.content.read()).startswith(b"id: 2\r\n")
        assert emulator.stats.idle_cuts == 2
        assert emulator.stats.connects == 2
    finally:
        await emulator.stop()


async def test_control_sets_and_clears_the_idle_cut(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    assert emulator.state()["idle_cut"] is None
    async with http.post("/_emulator/idle_cut", json={"seconds": 0.05}) as r:
        assert await r.json() == {"idle_cut": 0.05}
    async with http.get("/_emulator/state") as r:
        assert (await r.json())["idle_cut"] == 0.05
    async with http.get("/sys/events", headers=AUTH) as stream:
        assert await stream.content.read() == b""  # cut
    async with http.get("/_emulator/state") as r:
        assert (await r.json())["stats"]["idle_cuts"] == 1
    async with http.delete("/_emulator/idle_cut") as r:
        assert await r.json() == {"idle_cut": None}
    assert emulator.idle_cut is None
    async with http.post("/_emulator/idle_cut", json={"seconds": 55}) as r:
        assert await r.json() == {"idle_cut": 55}
    async with http.post("/_emulator/idle_cut", json={"seconds": 0}) as r:
        assert await r.json() == {"idle_cut": None}
    async with http.post("/_emulator/idle_cut", json={"seconds": None}) as r:
        assert await r.json() == {"idle_cut": None}
    with pytest.raises(ValueError, match="idle_cut"):
        emulator.set_idle_cut(-1)


def test_connected_seconds_counts_overlaps_once() -> None:
    emulator = SpRecordEmulator()
    emulator.stream_spans.extend(
        [
            ("demo", 0.0, 2.0),
            ("demo", 1.0, 3.0),
            ("other", 2.5, 4.0),
            ("demo", 5.0, 6.0),
        ]
    )
    assert emulator.connected_seconds(0.5, 5.5) == 2.5 + 1.0 + 0.5
    assert emulator.connected_seconds(0.5, 5.5, key="demo") == 2.5 + 0.5
    assert emulator.connected_seconds(3.0, 5.0, key="demo") == 0.0


async def test_control_scenario_plays_and_stops(
    emulator: SpRecordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        "/_emulator/scenario", json={"name": "office", "speed": 1000}
    ) as r:
        assert r.status == 200
    await wait_for(lambda: emulator.stats.events_emitted >= 5)
    async with http.delete("/_emulator/scenario") as r:
        assert await r.json() == {"stopped": True}
    async with http.delete("/_emulator/scenario") as r:
        assert await r.json() == {"stopped": False}


# --- scenarios ---------------------------------------------


def office_day() -> list[Step]:
    """Return the steps of the first office day and a bit of the second."""
    return list(itertools.islice(SCENARIOS["office"](random.Random(7)), 80))


def test_office_scenario_is_a_realistic_day() -> None:
    steps = office_day()
    assert steps[0].event_type == "startup"
    kinds = Counter(step.event_type for step in steps)
    assert kinds["startup"] == 1  # only once, not every day
    assert {"incoming_call", "outgoing_call", "start_talk", "call_end"} <= set(kinds)
    assert {"incoming_sms", "answer_elsewhere"} <= set(kinds)
    statuses = {s.payload["status"] for s in steps if s.event_type == "call_end"}
    assert {"success", "no_answer", "busy"} <= statuses
    trunks = {s.payload.get("trunk") for s in steps} - {None}
    assert trunks == {"GSM1", "GSM2"}
    extensions = {
        s.payload["call_dst"] for s in steps if s.event_type == "incoming_call"
    }
    assert extensions <= {str(n) for n in range(101, 108)}
    texts = [s.payload["text"] for s in steps if s.event_type == "incoming_sms"]
    assert any("Добрый день" in t for t in texts)
    assert any(t.isascii() for t in texts)
    assert all(step.delay >= 0 for step in steps)
    for step in steps:  # every event is valid for the client
        parse_event(
            {"device_id": "d", "event_type": step.event_type, "payload": step.payload}
        )


def test_office_scenario_has_two_calls_at_once() -> None:
    active: set[str] = set()
    most = 0
    for step in office_day():
        call_id = str(step.payload.get("call_id", ""))
        if step.event_type in ("incoming_call", "outgoing_call"):
            active.add(call_id)
        elif step.event_type == "call_end":
            active.discard(call_id)
        most = max(most, len(active))
    assert most >= 2


def test_office_scenario_sends_call_ids_loosely_typed() -> None:
    steps = office_day()
    starts = [s.payload["call_id"] for s in steps if s.event_type == "incoming_call"]
    ends = [s.payload["call_id"] for s in steps if s.event_type == "call_end"]
    assert all(isinstance(i, int) for i in starts)
    assert all(isinstance(i, str) for i in ends)


def _without_dates(steps: list[Step]) -> list[list[Any]]:
    """Return the steps as JSON rows, without SMS dates (those are of now)."""
    return [
        [
            round(step.delay, 6),
            step.event_type,
            {k: v for k, v in step.payload.items() if k != "date"},
        ]
        for step in steps
    ]


def test_office_scenario_with_one_pbx_is_unchanged() -> None:
    """The same seed plays what it played before keys had several PBXs."""
    steps = office_day()
    assert {step.pbx for step in steps} == {0}
    explicit = list(itertools.islice(SCENARIOS["office"](random.Random(7), pbxs=1), 80))
    assert _without_dates(explicit) == _without_dates(steps)
    rows = json.dumps(_without_dates(steps), ensure_ascii=False, sort_keys=True)
    # Taken from the scenario as it was before accounts had several PBXs.
    assert hashlib.sha256(rows.encode()).hexdigest() == (
        "a23edac98fbadfcece26cc6d0f105138ca68f790f0da800e76397352688e1dba"
    )


def test_office_scenario_spreads_over_two_pbxs() -> None:
    steps = list(itertools.islice(SCENARIOS["office"](random.Random(7), pbxs=2), 200))
    by_pbx = {
        pbx: [s for s in steps if s.pbx == pbx]
        for pbx in sorted({s.pbx for s in steps})
    }
    assert set(by_pbx) == {0, 1}
    for pbx_steps in by_pbx.values():
        kinds = Counter(step.event_type for step in pbx_steps)
        assert kinds["startup"] == 1  # each PBX was switched on, once
        assert {"incoming_call", "outgoing_call", "call_end", "incoming_sms"} <= set(
            kinds
        )
        assert {s.payload["trunk"] for s in pbx_steps if "trunk" in s.payload} == {
            "GSM1",
            "GSM2",
        }
    # The first PBX plays the one-PBX day: the second's traffic is extra.
    one_pbx = itertools.islice(SCENARIOS["office"](random.Random(7)), len(by_pbx[0]))
    assert [(s.event_type, s.payload.get("call_id")) for s in by_pbx[0]] == [
        (s.event_type, s.payload.get("call_id")) for s in one_pbx
    ]
    # Both count call ids alike: the same call id rings on both PBXs' GSM1 at
    # once, each call ending on its own PBX.
    active: set[tuple[int, str]] = set()
    shared = False
    for step in steps:
        call_id = str(step.payload.get("call_id", ""))
        if step.event_type in ("incoming_call", "outgoing_call"):
            active.add((step.pbx, call_id))
            other = (1 - step.pbx, call_id)
            shared = shared or (other in active and step.payload["trunk"] == "GSM1")
        elif step.event_type == "call_end":
            active.remove((step.pbx, call_id))
    assert shared
    for step in steps:
        parse_event(
            {"device_id": "d", "event_type": step.event_type, "payload": step.payload}
        )


def test_office_scenario_with_three_pbxs() -> None:
    steps = list(itertools.islice(SCENARIOS["office"](random.Random(7), pbxs=3), 200))
    assert {step.pbx for step in steps} == {0, 1, 2}
    assert all(step.delay >= 0 for step in steps)


async def test_play_spreads_over_the_keys_pbxs(
    emulator: SpRecordEmulator,
) -> None:
    emulator.add_pbx(SECOND_PBX)
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        async with await client.connect() as stream:
            emulator.play("office", speed=500, seed=1)
            async with asyncio.timeout(2):
                events = [await anext(stream) for _ in range(4)]
    assert emulator.stop_playing()
    assert [(e.type, e.device_id) for e in events[:2]] == [
        ("startup", DEFAULT_DEVICE_ID),
        ("startup", SECOND_PBX),
    ]
    assert {e.device_id for e in events[2:]} == {DEFAULT_DEVICE_ID, SECOND_PBX}


async def test_play_reaches_a_client(
    emulator: SpRecordEmulator,
) -> None:
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        async with await client.connect() as stream:
            emulator.play("office", speed=500, seed=1)
            async with asyncio.timeout(2):
                events = [await anext(stream) for _ in range(4)]
    assert events[0].type == "startup"
    assert emulator.stop_playing()


# --- CLI ---------------------------------------------


def test_cli_arguments() -> None:
    args = _parser().parse_args(
        ["--port", "0", "--api-key", "a", "--api-key", "b", "--scenario", "office"]
    )
    assert args.api_keys == ["a", "b"]
    assert args.scenario == "office"
    assert args.keepalive == 15.0
    assert args.pbxs == 1
    assert args.idle_cut == 0.0
    assert _parser().parse_args(["--pbxs", "3"]).pbxs == 3
    assert _parser().parse_args(["--idle-cut", "55"]).idle_cut == 55.0


def test_cli_idle_cut_must_not_be_negative(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--idle-cut", "-1"])
    assert "--idle-cut" in capsys.readouterr().err


@pytest.mark.parametrize("pbxs", ["0", "-1", "two"])
def test_cli_pbxs_must_be_a_positive_number(
    pbxs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--pbxs", pbxs])
    assert "--pbxs" in capsys.readouterr().err


async def test_cli_serves_until_a_signal(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        [
            *("--port", "0", "--scenario", "office", "--speed", "100"),
            *("--seed", "1", "--idle-cut", "55"),
        ]
    )
    task = asyncio.create_task(_serve(args))
    printed = ""
    async with asyncio.timeout(2):
        while "playing" not in printed:
            printed += capsys.readouterr().out
            await asyncio.sleep(0.01)
    assert "streams silent for 55 s are cut" in printed
    url = re.search(r"on (http://127\.0\.0\.1:\d+)", printed)
    assert url is not None, printed
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url[1]}/sys/events", headers=AUTH) as response:
            assert response.status == 200  # it serves...
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(task, 2)
            assert task.result() is None  # ...and a signal ends it cleanly,
            # The open stream ends too: reading it to the end returns.
            rest = await asyncio.wait_for(response.content.read(), 2)
            assert response.content.at_eof()
            assert b"event" not in rest or rest.endswith(b"\r\n\r\n")
        with pytest.raises(aiohttp.ClientConnectionError):  # and frees the port
            await session.get(f"{url[1]}/sys/events", headers=AUTH)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)


async def test_cli_as_a_process_streams_and_limits(
    socket_enabled: None, unused_tcp_port: int
) -> None:
    """`python -m emulator` serves events; a 4th stream gets 429 (acceptance)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "--port",
        str(unused_tcp_port),
        "--api-key",
        "demo",
        "--scenario",
        "office",
        "--speed",
        "50",
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[1],
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 10)
        assert f"127.0.0.1:{unused_tcp_port}" in banner.decode()
        url = f"http://127.0.0.1:{unused_tcp_port}"
        async with aiohttp.ClientSession() as session:
            client = SpRecordClient(session, url, "demo")
            streams = [await client.connect() for _ in range(3)]
            async with asyncio.timeout(5):
                event = await anext(streams[0])
            assert event.device_id == DEFAULT_DEVICE_ID
            async with session.get(f"{url}/sys/events", headers=AUTH) as fourth:
                assert fourth.status == 429
            for stream in streams:
                stream.close()
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_cli_as_a_process_with_two_pbxs(
    socket_enabled: None, unused_tcp_port: int
) -> None:
    """`python -m emulator --pbxs 2`: one key, two PBXs, the office on both."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "--port",
        str(unused_tcp_port),
        "--api-key",
        "demo",
        "--api-key",
        "other",
        "--pbxs",
        "2",
        "--scenario",
        "office",
        "--speed",
        "100",
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[1],
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
            for _ in range(3)
        ]
        assert f"127.0.0.1:{unused_tcp_port}" in lines[0]
        assert lines[1].split() == [
            "key",
            "demo:",
            "PBX",
            f"{DEFAULT_DEVICE_ID},",
            "PBX",
            SECOND_PBX,
        ]
        assert lines[2].split() == ["key", "other:", "PBX", make_device_id(2)]
        url = f"http://127.0.0.1:{unused_tcp_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/_emulator/state") as response:
                assert (await response.json())["pbxs"] == {
                    "demo": [DEFAULT_DEVICE_ID, SECOND_PBX],
                    "other": [make_device_id(2)],
                }
            client = SpRecordClient(session, url, "demo")
            seen: set[str] = set()
            async with await client.connect() as stream, asyncio.timeout(10):
                while len(seen) < 2:
                    seen.add((await anext(stream)).device_id)
        assert seen == {DEFAULT_DEVICE_ID, SECOND_PBX}
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
