"""Webhooks of the emulated cloud: the MD5 handshake and event delivery."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
import hashlib
import json
import logging
import secrets
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from .errors import json_error

_LOGGER = logging.getLogger(__name__)

EVENT_TYPES = frozenset(
    {
        "startup",
        "incoming_call",
        "outgoing_call",
        "start_talk",
        "call_end",
        "incoming_sms",
        "answer_elsewhere",
    }
)
_DELIVERY_LOG = 10_000


@dataclass
class Hook:
    """A registered hook of one key and the events it wants."""

    url: str
    subscribe: list[str]
    queue: asyncio.Queue[tuple[int, Mapping[str, Any]]] = field(
        default_factory=asyncio.Queue
    )
    worker: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Delivery:
    """One POST of an event to a hook, and how the hook answered."""

    event_id: int
    event_type: str
    url: str
    status: int | None
    """HTTP status of the hook's answer; None when it could not be reached."""

    @property
    def ok(self) -> bool:
        """Tell whether the hook took the event (a 2xx answer)."""
        return self.status is not None and self.status // 100 == 2


class HookRegistry:
    """Holds each key's hook, verifies new ones, and delivers events."""

    def __init__(self, *, verify_timeout: float = 10.0) -> None:
        """Create an empty registry."""
        self.verify_timeout = verify_timeout
        self._hooks: dict[str, Hook] = {}
        self._session: aiohttp.ClientSession | None = None
        self.deliveries: deque[Delivery] = deque(maxlen=_DELIVERY_LOG)
        self.verifications: list[dict[str, Any]] = []

    async def start(self) -> None:
        """Open the HTTP session used to call hooks."""
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Stop every delivery worker and close the session."""
        workers = [h.worker for h in self._hooks.values() if h.worker]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._hooks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reset_stats(self) -> None:
        """Forget past deliveries and verifications."""
        self.deliveries.clear()
        self.verifications.clear()

    def get(self, key: str) -> Hook | None:
        """Return the key's hook, if one is registered."""
        return self._hooks.get(key)

    async def subscribe(self, key: str, device_id: str, body: Any) -> web.Response:
        """Handle a subscription: validate, verify the hook, store it."""
        problem = _validate(body)
        if problem:
            return json_error(422, problem)
        url: str = body["hook"]
        subscribe: list[str] = list(dict.fromkeys(body["subscribe"]))
        if not url:
            # An empty hook clears the registration (no handshake needed).
            self._remove(key)
            return web.json_response({"hook": "", "subscribe": []})
        failure = await self._verify(url, device_id)
        if failure:
            return json_error(400, f"Hook verification failed: {failure}")
        self._remove(key)
        hook = Hook(url=url, subscribe=subscribe)
        hook.worker = asyncio.get_running_loop().create_task(self._worker(hook))
        self._hooks[key] = hook
        return web.json_response({"hook": url, "subscribe": subscribe})

    def _remove(self, key: str) -> None:
        """Drop the key's hook and stop its deliveries."""
        old = self._hooks.pop(key, None)
        if old and old.worker:
            old.worker.cancel()

    async def _verify(self, url: str, device_id: str) -> str | None:
        """POST the handshake to the hook; return what was wrong, if anything."""
        assert self._session is not None  # noqa: S101 (started first)
        challenge = secrets.token_urlsafe(24)
        expected = hashlib.md5(challenge.encode(), usedforsecurity=False).hexdigest()
        record: dict[str, Any] = {"url": url, "payload": challenge, "ok": False}
        self.verifications.append(record)
        body = {
            "device_id": device_id,
            "event_type": "verification",
            "payload": challenge,
        }
        try:
            async with asyncio.timeout(self.verify_timeout):
                async with self._session.post(url, json=body) as response:
                    record["status"] = response.status
                    text = await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            record["error"] = type(err).__name__
            return f"hook unreachable ({type(err).__name__})"
        record["answer"] = text[:500]
        if response.status != 200:
            return f"hook answered HTTP {response.status}"
        try:
            answer = json.loads(text)
        except ValueError:
            return "the answer is not JSON"
        if answer != {"result": expected}:
            return 'the answer must be {"result": "<md5 hex of payload>"}'
        record["ok"] = True
        return None

    def deliver(self, key: str, event_id: int, envelope: Mapping[str, Any]) -> None:
        """Queue an event for the key's hook if it subscribed to its type."""
        hook = self._hooks.get(key)
        if hook is not None and envelope["event_type"] in hook.subscribe:
            hook.queue.put_nowait((event_id, envelope))

    async def _worker(self, hook: Hook) -> None:
        """POST the hook's events one after another, in order."""
        assert self._session is not None  # noqa: S101 (started first)
        while True:
            event_id, envelope = await hook.queue.get()
            status: int | None = None
            try:
                async with self._session.post(
                    hook.url, json=envelope, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                _LOGGER.debug("Delivery of event %s failed: %s", event_id, err)
            self.deliveries.append(
                Delivery(event_id, envelope["event_type"], hook.url, status)
            )
            hook.queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued delivery has been attempted."""
        for hook in list(self._hooks.values()):
            await hook.queue.join()

    def state(self) -> dict[str, Any]:
        """Return the registered hooks and delivery figures."""
        return {
            "hooks": {
                key: {"url": h.url, "subscribe": h.subscribe}
                for key, h in self._hooks.items()
            },
            "deliveries": len(self.deliveries),
            "delivered_ok": sum(1 for d in self.deliveries if d.ok),
            "verifications": [
                {k: v for k, v in r.items() if k != "payload"}
                for r in self.verifications
            ],
        }


def _validate(body: Any) -> str | None:
    """Return what is wrong with a subscription body, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    hook = body.get("hook")
    if not isinstance(hook, str):
        return "hook must be a string"
    if hook:
        url = URL(hook)
        if url.scheme not in ("http", "https") or not url.host:
            return "hook must be an http(s) URL"
    subscribe = body.get("subscribe")
    if not isinstance(subscribe, list) or not all(
        isinstance(s, str) for s in subscribe
    ):
        return "subscribe must be a list of event types"
    unknown = sorted(set(subscribe) - EVENT_TYPES)
    if unknown:
        return f"unknown event types: {', '.join(unknown)}"
    return None
