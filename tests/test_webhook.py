"""The webhook transport, with the emulator doing the real handshake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
from dataclasses import dataclass
import hashlib
import json
import logging
import time
from typing import Any
from unittest.mock import AsyncMock, patch

import aiohttp
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_URL, CONF_WEBHOOK_ID, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util.aiohttp import MockRequest
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sprecord import (
    link as link_module,
    webhook_subscription as subscription_module,
)
from custom_components.sprecord.api import SpRecordClient
from custom_components.sprecord.config_flow import account_id
from custom_components.sprecord.const import (
    CONF_CALL_TIMEOUT,
    CONF_CLOUDHOOK_URL,
    CONF_DEVICE_ID,
    CONF_HOOK_URL,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_SPRECORD,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from custom_components.sprecord.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.sprecord.webhook import MAX_BODY
from custom_components.sprecord.webhook_subscription import EVENT_TYPES
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import open_settings, wait_for_sms, wait_for_state, wait_until
from .test_states import CALL_STATE, LAST_SMS, call, end

WEBHOOK_ID = "a1" * 32
CONNECTED = "binary_sensor.sprecord_minipbx_cloud_connection"


def make_entry(emulator: SpRecordEmulator, transport: str) -> MockConfigEntry:
    """Return an entry of the emulator's account with a given transport."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="SpRecord MiniPBX",
        data={
            CONF_URL: emulator.url,
            CONF_API_KEY: "demo",
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
        options={CONF_TRANSPORT: transport, CONF_CALL_TIMEOUT: 180},
        unique_id=account_id("demo"),
    )


@pytest.fixture
async def hook_entry(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    request: pytest.FixtureRequest,
) -> AsyncIterator[MockConfigEntry]:
    """Set up an entry in webhook mode (or the mode a test parametrizes)."""
    transport = getattr(request, "param", TRANSPORT_WEBHOOK)
    entry = make_entry(emulator, transport)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)


async def post(
    ha_url: str, body: bytes | str, **headers: str
) -> aiohttp.ClientResponse:
    """POST a raw body to the entry's webhook, as anyone on the internet can."""
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{ha_url}/api/webhook/{WEBHOOK_ID}",
            data=body.encode() if isinstance(body, str) else body,
            headers=headers,
        )
        await response.read()
        return response


async def stand_in_entry(
    hass: HomeAssistant, emulator: SpRecordEmulator
) -> MockConfigEntry:
    """Set up a webhook-mode entry with no external URL: SSE stands in."""
    await hass.config.async_update(external_url=None)
    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    return entry


@dataclass
class CloudMocks:
    """Home Assistant Cloud, patched: what a test can look at."""

    create: AsyncMock
    delete: AsyncMock
    listeners: list[Any]


@contextlib.contextmanager
def home_assistant_cloud(
    hass: HomeAssistant, relay: str, create: Any = None
) -> Iterator[CloudMocks]:
    """Make Home Assistant Cloud active; cloudhooks relay to `relay`."""
    hass.config.components.add("cloud")
    mocks = CloudMocks(
        create=AsyncMock(return_value=relay, side_effect=create),
        delete=AsyncMock(),
        listeners=[],
    )

    def listen(hass: HomeAssistant, target: Any) -> Any:
        mocks.listeners.append(target)
        return lambda: None

    cloud = "homeassistant.components.cloud"
    with (
        patch(f"{cloud}.async_active_subscription", return_value=True),
        patch(f"{cloud}.async_get_or_create_cloudhook", mocks.create),
        patch(f"{cloud}.async_listen_connection_change", side_effect=listen),
        patch(f"{cloud}.async_delete_cloudhook", mocks.delete),
    ):
        yield mocks


async def test_handshake_registers_the_hook_and_events_arrive_by_post(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    hook = emulator.hooks.get("demo")
    assert hook is not None
    assert hook.url == f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    assert hook.subscribe == EVENT_TYPES
    # The verification answer is exactly {"result": "<md5 hex of payload>"}.
    [verification] = emulator.hooks.verifications
    assert verification["ok"]
    expected = hashlib.md5(verification["payload"].encode()).hexdigest()  # noqa: S324
    assert json.loads(verification["answer"]) == {"result": expected}
    assert len(expected) == 32
    # Webhook mode holds no stream: the key was checked and the stream closed.
    await wait_until(lambda: emulator.open_streams() == 0)

    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    emulator.emit("call_end", end(1))
    await wait_for_state(hass, CALL_STATE, "idle")
    link = hook_entry.runtime_data.link
    assert link.stats.events_by_transport == {"webhook": 2}
    assert link.webhook is not None
    assert link.subscription.registered
    assert (
        hass.states.get("binary_sensor.sprecord_minipbx_cloud_connection").state == "on"
    )


@pytest.mark.parametrize("hook_entry", [TRANSPORT_BOTH], indirect=True)
async def test_both_transports_deliver_200_events_exactly_once(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    await wait_until(lambda: emulator.open_streams() == 1)
    bus = async_capture_events(hass, EVENT_SPRECORD)
    for number in range(100):
        emulator.emit("incoming_call", call(number, trunk=f"GSM{number % 2 + 1}"))
        emulator.emit("call_end", end(number, duration=number))
    await emulator.hooks.drain()
    stats = hook_entry.runtime_data.link.stats
    await wait_until(lambda: stats.events_by_transport["sse"] == 200)
    await wait_until(lambda: stats.events_by_transport["webhook"] == 200)
    await hass.async_block_till_done()
    assert len(bus) == 200
    keys = [(e.data["event_type"], e.data["payload"]["call_id"]) for e in bus]
    assert len(set(keys)) == 200  # none twice
    assert stats.duplicates == 200
    assert hass.states.get(CALL_STATE).state == "idle"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("not json", {}),
        ("[1, 2, 3]", {}),
        ('{"device_id": "x", "event_type": "call_end", "payload": {}}', {}),
        ("x" * (MAX_BODY + 1), {}),
        (b"\xff\xfe\x00", {}),
    ],
)
async def test_bad_bodies_get_400_and_one_log_line(
    hass: HomeAssistant,
    ha_url: str,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    body: str | bytes,
    headers: dict[str, str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.sprecord")
    for _ in range(3):
        response = await post(ha_url, body, **headers)
        assert response.status == 400
    ours = [r for r in caplog.records if "Refused a webhook request" in r.getMessage()]
    assert [r.levelname for r in ours] == ["WARNING", "DEBUG", "DEBUG"]
    assert not [r for r in caplog.records if r.exc_info]
    assert hook_entry.runtime_data.link.webhook.bad_requests == 3


async def test_body_announced_too_large_is_refused_unread(
    hass: HomeAssistant, ha_url: str, hook_entry: MockConfigEntry
) -> None:
    response = await post(ha_url, "{}", **{"Content-Length": str(MAX_BODY + 10)})
    assert response.status == 400


async def test_a_post_of_another_pbx_is_dropped_not_followed(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anyone with the URL can POST: a PBX never comes from a POST."""
    # The first PBX came with the verification of the entry's subscription.
    assert hook_entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID
    bus = async_capture_events(hass, EVENT_SPRECORD)
    other = {
        "device_id": "another-pbx",
        "event_type": "incoming_call",
        "payload": call(5),
    }
    for _ in range(3):
        response = await post(ha_url, json.dumps(other))
        assert response.status == 200  # answered: nothing for a sender to retry
    await hass.async_block_till_done()
    assert bus == []
    assert hass.states.get("sensor.sprecord_minipbx_2_call_state") is None
    coordinator = hook_entry.runtime_data.coordinator
    link = hook_entry.runtime_data.link
    assert list(coordinator.pbxs) == [DEFAULT_DEVICE_ID]
    assert link.webhook.unknown_pbx_requests == 3
    assert caplog.text.count("Dropped a webhook event of a PBX") == 1
    assert hook_entry.data[CONF_DEVICE_ID] == DEFAULT_DEVICE_ID  # not rewritten
    # Its own PBX's events are taken.
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")


@pytest.mark.parametrize("hook_entry", [TRANSPORT_BOTH], indirect=True)
async def test_another_pbx_of_the_account_comes_from_the_stream(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """With SSE on too, a new PBX is followed and then takes its POSTs."""
    await wait_until(lambda: emulator.open_streams() == 1)
    other = emulator.add_pbx("another-pbx")
    emulator.emit("incoming_call", call(5), device_id=other)
    await wait_for_state(hass, "sensor.sprecord_minipbx_2_call_state", "ringing")
    await emulator.hooks.drain()
    emulator.emit("call_end", end(5), device_id=other)
    await wait_for_state(hass, "sensor.sprecord_minipbx_2_call_state", "idle")
    await emulator.hooks.drain()
    link = hook_entry.runtime_data.link
    await wait_until(lambda: link.stats.events_by_transport["webhook"] >= 1)
    assert hass.states.get(CALL_STATE).state == "idle"  # the first PBX's
    assert hook_entry.data[CONF_DEVICE_ID] == DEFAULT_DEVICE_ID  # not rewritten


async def test_a_refused_handshake_falls_back_to_sse(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    with patch(
        "custom_components.sprecord.webhook.verification_response",
        return_value={"result": "0" * 32},
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.hooks.verifications)
        # The cloud did not take the hook: events come over SSE meanwhile
        # (on the second stream: the first only proved the key at setup).
        await wait_until(
            lambda: emulator.stats.connects == 2 and emulator.open_streams() == 1
        )
    assert emulator.hooks.get("demo") is None
    assert not emulator.hooks.verifications[0]["ok"]
    assert "did not take the webhook" in caplog.text
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_without_external_url_webhook_mode_uses_sse_until_there_is_one(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await stand_in_entry(hass, emulator)
    assert "has no external URL" in caplog.text
    assert emulator.hooks.verifications == []

    # An external URL appears: the hook is registered and SSE stops.
    await hass.config.async_update(external_url=ha_url)
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    await wait_until(lambda: emulator.open_streams() == 0)
    emulator.emit("incoming_sms", {"sms_src": "BANK", "text": "Код 5", "trunk": "GSM1"})
    await wait_for_sms(hass, LAST_SMS, "Код 5")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_changed_url_is_registered_again(
    hass: HomeAssistant,
    ha_url: str,
    hass_client_no_auth: ClientSessionGenerator,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Home Assistant moves to a new address (a second port serves it too).
    second = str((await hass_client_no_auth()).make_url("/")).rstrip("/")
    await hass.config.async_update(external_url=second)
    await wait_until(lambda: emulator.hooks.get("demo").url.startswith(second))
    assert emulator.hooks.verifications[1]["ok"]
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")

    # A new address the cloud cannot reach: it keeps the hook it has.
    await hass.config.async_update(external_url="http://127.0.0.1:9")
    await wait_until(lambda: len(emulator.hooks.verifications) == 3)
    await wait_until(lambda: "did not take the webhook" in caplog.text)
    assert emulator.hooks.get("demo").url.startswith(second)

    # Another core change that leaves the URL as it is sends nothing.
    await hass.config.async_update(external_url=second)
    await hass.config.async_update(location_name="Office")
    await hass.async_block_till_done()
    assert len(emulator.hooks.verifications) == 3


async def test_unload_unregisters_the_webhook(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    assert await hass.config_entries.async_unload(hook_entry.entry_id)
    assert WEBHOOK_ID not in hass.data.get("webhook", {})
    emulator.emit("incoming_call", call(1))
    await emulator.hooks.drain()
    assert hass.states.get(CALL_STATE).state == "unavailable"


async def test_removal_subscribes_an_empty_list(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    await hass.config_entries.async_remove(hook_entry.entry_id)
    await hass.async_block_till_done()
    hook = emulator.hooks.get("demo")
    assert hook is not None
    assert hook.subscribe == []  # nothing is delivered any more
    assert emulator.hooks.verifications[-1]["ok"]
    assert WEBHOOK_ID not in hass.data.get("webhook", {})


async def test_removal_when_the_cloud_refuses_is_logged(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.refuse_key("demo")
    await hass.config_entries.async_remove(hook_entry.entry_id)
    await hass.async_block_till_done()
    assert "Could not tell the SpRecord cloud to stop webhook deliveries" in caplog.text


async def test_removal_of_an_sse_entry_calls_nothing(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert emulator.hooks.verifications == []


async def test_cloudhook_is_used_when_home_assistant_cloud_is_active(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    # The cloud relays to this instance: its URL here leads to our webhook.
    relay = f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    with home_assistant_cloud(hass, relay) as cloud:
        create, delete, listeners = cloud.create, cloud.delete, cloud.listeners
        entry = make_entry(emulator, TRANSPORT_WEBHOOK)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        assert create.await_count == 1
        assert entry.data[CONF_CLOUDHOOK_URL] == relay
        assert emulator.hooks.get("demo").url == relay
        # A cloud reconnect re-checks the URL; it is the same, nothing is sent.
        listeners[0]("cloud_connected")
        await hass.async_block_till_done()
        assert len(emulator.hooks.verifications) == 1
        assert create.await_count == 1  # the saved cloudhook is reused

        await hass.config_entries.async_remove(entry.entry_id)
        await hass.async_block_till_done()
        delete.assert_awaited_once_with(hass, WEBHOOK_ID)
    assert emulator.hooks.get("demo").subscribe == []


async def test_options_refuse_webhook_without_a_reachable_url(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    result = await open_settings(hass, setup_entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_WEBHOOK, CONF_CALL_TIMEOUT: 180}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TRANSPORT: "no_webhook_url"}
    # The entry keeps SSE.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.runtime_data.link.transport == TRANSPORT_SSE


async def test_options_switch_to_webhook_when_reachable(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    result = await open_settings(hass, setup_entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_BOTH, CONF_CALL_TIMEOUT: 180}
    )
    # It replaces the account's hook: the user is asked first.
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "webhook_replace"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    assert setup_entry.runtime_data.link.transport == TRANSPORT_BOTH


async def test_webhook_mode_starts_while_other_clients_hold_every_stream(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        others = [await client.connect() for _ in range(3)]
        entry = make_entry(emulator, TRANSPORT_WEBHOOK)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        emulator.emit("incoming_call", call(1))
        await wait_for_state(hass, CALL_STATE, "ringing")
        for stream in others:
            stream.close()
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- issue 10: the paths users take ---------------------------------------------


async def test_home_assistant_cloud_delivery_as_mock_request(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """Home Assistant Cloud hands a cloudhook delivery on as a `MockRequest`."""
    payload = "cloud-check-1234"
    request = MockRequest(
        content=json.dumps(
            {
                "device_id": DEFAULT_DEVICE_ID,
                "event_type": "verification",
                "payload": payload,
            }
        ).encode(),
        mock_source="cloud",
        method="POST",
    )
    response = await webhook.async_handle_webhook(hass, WEBHOOK_ID, request)
    assert response.status == 200
    expected = hashlib.md5(payload.encode()).hexdigest()  # noqa: S324
    assert json.loads(response.body) == {"result": expected}

    event = {
        "device_id": DEFAULT_DEVICE_ID,
        "event_type": "incoming_call",
        "payload": call(7),
    }
    request = MockRequest(
        content=json.dumps(event).encode(), mock_source="cloud", method="POST"
    )
    response = await webhook.async_handle_webhook(hass, WEBHOOK_ID, request)
    assert response.status == 200
    await wait_for_state(hass, CALL_STATE, "ringing")

    too_large = MockRequest(
        content=b"x" * (MAX_BODY + 1), mock_source="cloud", method="POST"
    )
    response = await webhook.async_handle_webhook(hass, WEBHOOK_ID, too_large)
    assert response.status == 400


async def test_a_body_that_arrives_in_pieces_is_read_whole(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """A long SMS, chunked by a proxy: every piece is read before parsing."""
    text = "Длинное сообщение. " * 300  # about 11 KB of UTF-8, cut mid-letter
    body = json.dumps(
        {
            "device_id": DEFAULT_DEVICE_ID,
            "event_type": "incoming_sms",
            "payload": {"sms_src": "+79031234567", "text": text, "trunk": "GSM1"},
        },
        ensure_ascii=False,
    ).encode()
    pieces = [body[i : i + 1001] for i in range(0, len(body), 1001)]
    assert len(pieces) > 5

    async def chunked() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(0.01)  # each piece its own TCP write

    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{ha_url}/api/webhook/{WEBHOOK_ID}", data=chunked()
        )
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert response.status == 200, await response.text()
    await hass.async_block_till_done()
    state = hass.states.get(LAST_SMS)
    assert state is not None
    assert state.attributes["text"] == text

    # The cap holds for a chunked body too: no length is announced.
    async def too_long() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1000 + 2):
            yield b"x" * 1000

    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{ha_url}/api/webhook/{WEBHOOK_ID}", data=too_long()
        )
        assert response.status == 400


async def test_a_form_encoded_verification_is_answered(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """The vendor's page writes the verification as `key = value` pairs."""
    response = await post(
        ha_url,
        f"device_id={DEFAULT_DEVICE_ID.replace('+', '%2B')}"
        "&event_type=verification&payload=abc123",
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    expected = hashlib.md5(b"abc123").hexdigest()  # noqa: S324
    assert await response.json() == {"result": expected}
    # A form that is not a verification is not an event.
    response = await post(ha_url, "event_type=incoming_call&payload=x")
    assert response.status == 400


async def test_leaving_webhook_mode_tells_the_cloud_and_deletes_the_cloudhook(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    assert emulator.hooks.get("demo").subscribe == EVENT_TYPES
    assert hook_entry.data[CONF_HOOK_URL] == f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    result = await open_settings(hass, hook_entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.hooks.get("demo").subscribe == [])
    await wait_until(lambda: CONF_HOOK_URL not in hook_entry.data)
    assert emulator.hooks.verifications[-1]["ok"]
    assert hook_entry.runtime_data.link.transport == TRANSPORT_SSE
    # Removing the entry later has nothing left to undo.
    verifications = len(emulator.hooks.verifications)
    await hass.config_entries.async_remove(hook_entry.entry_id)
    await hass.async_block_till_done()
    assert len(emulator.hooks.verifications) == verifications


async def test_leaving_webhook_mode_with_a_cloudhook_deletes_it(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    relay = f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    with home_assistant_cloud(hass, relay) as cloud:
        delete = cloud.delete
        entry = make_entry(emulator, TRANSPORT_WEBHOOK)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        result = await open_settings(hass, entry)
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180}
        )
        await hass.async_block_till_done()
        await wait_until(lambda: CONF_CLOUDHOOK_URL not in entry.data)
        delete.assert_awaited_once_with(hass, WEBHOOK_ID)
    assert emulator.hooks.get("demo").subscribe == []
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("error", ["CloudNotConnected", "CloudNotAvailable"])
async def test_cloud_errors_while_making_the_cloudhook_are_caught(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    error: str,
) -> None:
    from homeassistant.components import cloud  # noqa: PLC0415

    monkeypatch.setattr(subscription_module, "RETRY_MIN", 0.01)
    monkeypatch.setattr(subscription_module, "RETRY_MAX", 0.05)
    relay = f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    attempts = 0
    cloud_back = False

    async def flaky(hass: HomeAssistant, webhook_id: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 3 or not cloud_back:
            raise getattr(cloud, error)
        return relay

    with home_assistant_cloud(hass, relay, create=flaky):
        entry = make_entry(emulator, TRANSPORT_WEBHOOK)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        # SSE stands in while the cloudhook cannot be made (its stream is
        # the second: the first only proved the key at setup)...
        await wait_until(
            lambda: emulator.stats.connects == 2 and emulator.open_streams() == 1
        )
        emulator.emit("incoming_call", call(1))
        await wait_for_state(hass, CALL_STATE, "ringing")
        await wait_until(lambda: attempts >= 3)
        # ...and the cloudhook is asked for again until it works.
        cloud_back = True
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        await wait_until(lambda: emulator.open_streams() == 0)
    assert attempts >= 4
    logged = [r for r in caplog.records if "could not make" in r.getMessage()]
    assert len(logged) == 1  # once, not per retry
    assert "Task exception was never retrieved" not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_vendors_own_verification_notation_is_answered(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """The vendor's page writes the request as `key = value` pairs in braces."""
    body = (
        "{\n  device_id = Y7d6hP0mjNBI,\n  event_type = verification,\n"
        "  payload = 3f9a77c2\n}"
    )
    response = await post(ha_url, body)
    assert response.status == 200
    expected = hashlib.md5(b"3f9a77c2").hexdigest()  # noqa: S324
    assert await response.json() == {"result": expected}


async def test_diagnostics_hide_the_registered_hook_url(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,
) -> None:
    """The hook's URL holds the webhook id, which is all that guards it."""
    assert WEBHOOK_ID in hook_entry.data[CONF_HOOK_URL]
    diagnostics = await async_get_config_entry_diagnostics(hass, hook_entry)
    text = json.dumps(diagnostics)
    assert WEBHOOK_ID not in text, [
        line for line in text.split(",") if WEBHOOK_ID in line
    ]


async def test_leaving_webhook_mode_retries_until_the_cloud_takes_it(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused unsubscription keeps the cloudhook (the cloud still posts)."""
    monkeypatch.setattr(subscription_module, "RETRY_MIN", 0.01)
    relay = f"{ha_url}/api/webhook/{WEBHOOK_ID}"
    with home_assistant_cloud(hass, relay) as cloud:
        delete = cloud.delete
        entry = make_entry(emulator, TRANSPORT_WEBHOOK)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        emulator.fail_subscriptions(500, count=2)
        result = await open_settings(hass, entry)
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180}
        )
        await hass.async_block_till_done()
        await wait_until(lambda: CONF_CLOUDHOOK_URL not in entry.data)
        delete.assert_awaited_once_with(hass, WEBHOOK_ID)
    assert emulator.hooks.get("demo").subscribe == []
    assert emulator.stats.rejected_subscriptions == 2
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_stream_is_read_a_while_after_the_webhook_takes_over(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event the cloud sent on the stream just before the hook took over."""
    monkeypatch.setattr(link_module, "HANDOVER", 1.0)
    entry = await stand_in_entry(hass, emulator)
    await hass.config.async_update(external_url=ha_url)
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    await wait_until(lambda: entry.runtime_data.link.webhook_registered)
    # Late on the stream only (the hook was not there when it was sent).
    envelope = {
        "device_id": DEFAULT_DEVICE_ID,
        "event_type": "incoming_call",
        "payload": call(3),
    }
    assert emulator.emit_raw(f"data: {json.dumps(envelope)}\n\n".encode()) == 1
    await wait_for_state(hass, CALL_STATE, "ringing")
    await wait_until(lambda: emulator.open_streams() == 0)  # then it is closed
    emulator.emit("call_end", end(3))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_stream_drop_during_the_handover_leaves_the_entities_available(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook delivers: the stand-in stream's end is no outage."""
    monkeypatch.setattr(link_module, "HANDOVER", 1.0)
    monkeypatch.setattr(link_module, "LINK_GRACE", 0.1)
    entry = await stand_in_entry(hass, emulator)
    emulator.fail_streams(503, count=100)  # the stream will not come back
    await hass.config.async_update(external_url=ha_url)
    link = entry.runtime_data.link
    await wait_until(lambda: link.webhook_registered)
    emulator.drop_streams("abort")  # during the handover
    await wait_until(lambda: emulator.open_streams() == 0)
    await asyncio.sleep(0.3)  # past the grace
    await wait_until(lambda: not link.connected)
    await asyncio.sleep(1.2)  # past the handover
    assert link.available
    assert hass.states.get(CALL_STATE).state == "idle"
    emulator.clear_failures()
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")  # by the webhook
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_subscription_started_again_midway_takes_its_own_verification(
    hass: HomeAssistant, ha_url: str, emulator: SpRecordEmulator, fast_link: None
) -> None:
    """The attempt it replaced ends while the new one waits for the cloud."""
    subscribe = SpRecordClient.subscribe_events
    first_waits = asyncio.Event()

    async def first_never_answered(
        client: SpRecordClient, url: str, events: list[str]
    ) -> None:
        if not first_waits.is_set():
            first_waits.set()
            await asyncio.Event().wait()
        await subscribe(client, url, events)

    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    with patch.object(SpRecordClient, "subscribe_events", first_never_answered):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(first_waits.is_set)
        link = entry.runtime_data.link
        link.subscription.async_resubscribe()
        await wait_until(lambda: link.webhook_registered)
    # The PBX came with the verification of the second attempt.
    assert entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_stream_closed_after_the_handover_is_no_drop(
    hass: HomeAssistant, ha_url: str, emulator: SpRecordEmulator, fast_link: None
) -> None:
    """Webhook only: the stand-in stream ends, the link stays up by the webhook."""
    entry = await stand_in_entry(hass, emulator)
    link = entry.runtime_data.link
    await wait_until(lambda: link.connected)
    await hass.config.async_update(external_url=ha_url)
    await wait_until(lambda: link.webhook_registered)
    await wait_until(lambda: not link.stream.reading)
    assert not link.connected
    assert link.available
    assert link.stats.drops == 0
    history = link.stream.history
    assert len(history.recent) == 1  # the stand-in stream, and its end
    assert history.disconnected_seconds(time.monotonic()) > 0
    assert hass.states.get(CONNECTED).state == STATE_ON
    assert await hass.config_entries.async_unload(entry.entry_id)
