"""What strangers can put in, and what an entry leaves behind.

A caller chooses its number, an SMS sender its sender id and text, and anyone
who knows the webhook's URL can POST whole events. These tests read the
integration as such a stranger would: forged POSTs, hostile text, forged log
lines; and the races and leftovers of an entry that unloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import patch

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryDisabler, ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.sprecord.api import (
    IncomingCallEvent,
    IncomingSmsEvent,
    ProtocolError,
    SpRecordClient,
    SpRecordError,
    SubscriptionSettings,
    parse_event,
)
from custom_components.sprecord.api.clean import (
    MAX_LINE_NAME,
    MAX_NUMBER,
    MAX_PBX_ID,
    MAX_SMS_TEXT,
    clean_field,
    clean_message,
    for_log,
)
from custom_components.sprecord.config_flow import account_id
from custom_components.sprecord.const import (
    CONF_DEVICE_ID,
    DOMAIN,
    EVENT_SPRECORD_LOG,
    ISSUE_TOO_MANY_CONNECTIONS,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from custom_components.sprecord.coordinator import MAX_PBXS
from custom_components.sprecord.storage import STORAGE_VERSION
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator
from emulator.server import make_device_id

from .helpers import set_up_short_call_entry, wait_for_state, wait_until
from .test_states import CALL_STATE, call, end
from .test_webhook import hook_entry, make_entry, post  # noqa: F401

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
"""Every bidi control character: none may survive the parse."""
RECENT = "sensor.sprecord_minipbx_recent_calls"


def envelope(event_type: str, payload: Any, device_id: str = "pbx") -> dict[str, Any]:
    """Return an event envelope."""
    return {"device_id": device_id, "event_type": event_type, "payload": payload}


def registry_counts(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[int, int]:
    """Return how many devices and entities the entry has."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    return len(devices), len(entities)


# --- point 4: text from the PBX is made safe once, at the parse --------------


def test_bidi_and_other_controls_leave_numbers_ids_and_extensions() -> None:
    hostile = f"+7{BIDI}916\x00\x1b[31m 123\n\u2028\ufeff\u200b"
    event = parse_event(
        envelope(
            "incoming_call",
            {"call_id": f"8{BIDI}\n", "call_src": hostile, "call_dst": f"10{BIDI}1"},
        )
    )
    assert isinstance(event, IncomingCallEvent)
    assert event.call_src == "+7916[31m 123"  # the escape's text stays, harmless
    assert event.call_dst == "101"
    assert event.call_id == "8"
    elsewhere = parse_event(
        envelope("answer_elsewhere", {"call_id": "8", "number": "\u202e201"})
    )
    assert elsewhere.payload_dict()["number"] == "201"


def test_a_sender_id_loses_its_bidi_controls_and_an_sms_keeps_its_lines() -> None:
    text = f"Code 1234\r\nDo not\ttell{BIDI} anyone\x07\rBye\u2029👨\u200d👩\u200d👧"
    event = parse_event(
        envelope("incoming_sms", {"sms_src": "\u202eMum\u202c", "text": text})
    )
    assert isinstance(event, IncomingSmsEvent)
    assert event.sms_src == "Mum"
    assert event.text == "Code 1234\nDo not\ttell anyone\nBye\n👨\u200d👩\u200d👧"


def test_numbers_and_texts_are_bounded() -> None:
    event = parse_event(
        envelope(
            "incoming_sms",
            {"sms_src": "9" * 1000, "text": "x" * 50_000, "date": "d" * 1000},
        )
    )
    assert isinstance(event, IncomingSmsEvent)
    assert event.sms_src == "9" * (MAX_NUMBER - 1) + "…"
    assert len(event.text) == MAX_SMS_TEXT
    assert event.text.endswith("x…")
    assert event.date == "d" * 63 + "…"
    ended = parse_event(envelope("call_end", {"call_id": "1", "status": "s" * 100}))
    assert len(ended.payload_dict()["status"]) == 32
    # Made safe once: what comes out reads back the same.
    assert parse_event(event.as_dict()) == event
    assert parse_event(ended.as_dict()) == ended


def test_the_cleaners_are_idempotent_and_keep_honest_text() -> None:
    for honest in ("+7 916 123-45-67", "Сбербанк", "GSM1", "Mum (home)"):
        assert clean_field(honest) == honest
    letter = "Привет!\nКак дела?\tХорошо 😀"
    assert clean_message(letter) == letter
    once = clean_message("a\u202e\r\n" * 6000)
    assert clean_message(once) == once
    assert clean_field(clean_field("\u202e" + "1" * 100)) == clean_field("1" * 100)


@pytest.mark.parametrize(
    "device_id",
    ["pbx one", "pbx\none", "ид", "a" * (MAX_PBX_ID + 1), "x\u202e", "a.b", "{}"],
)
def test_a_pbx_id_that_is_no_base64_is_refused(device_id: str) -> None:
    with pytest.raises(ProtocolError, match="device_id is not a PBX id") as err:
        parse_event(envelope("startup", {}, device_id))
    assert device_id not in str(err.value)  # not echoed


@pytest.mark.parametrize(
    "device_id", [DEFAULT_DEVICE_ID, "a" * MAX_PBX_ID, "pbx-1_x", "QUJD+/=="]
)
def test_base64_pbx_ids_are_taken(device_id: str) -> None:
    assert parse_event(envelope("startup", {}, device_id)).device_id == device_id


@pytest.mark.parametrize(
    "trunk", ["GSM1\n", "\u202eGSM1", "GSM\x001", "L" * (MAX_LINE_NAME + 1)]
)
@pytest.mark.parametrize("event_type", ["incoming_call", "incoming_sms"])
def test_a_line_name_that_is_no_name_is_refused(trunk: str, event_type: str) -> None:
    payload = {"call_id": "1", "text": "hi", "trunk": trunk}
    with pytest.raises(ProtocolError, match=r"payload\.trunk is not a line name"):
        parse_event(envelope(event_type, payload))


def test_line_names_within_bounds_are_taken_and_blank_ones_are_none() -> None:
    longest = "Линия " + "L" * (MAX_LINE_NAME - 6)
    event = parse_event(envelope("incoming_call", {"call_id": "1", "trunk": longest}))
    assert isinstance(event, IncomingCallEvent)
    assert event.trunk == longest
    blank = parse_event(envelope("incoming_call", {"call_id": "1", "trunk": "  "}))
    assert isinstance(blank, IncomingCallEvent)
    assert blank.trunk is None


@pytest.mark.parametrize("event_type", ["x\ny", "call\u202eend", "t" * 65, " "])
def test_an_event_type_that_is_no_name_is_refused(event_type: str) -> None:
    with pytest.raises(ProtocolError, match="event_type is not the name of a type"):
        parse_event(envelope(event_type, {}))


def test_an_id_of_controls_only_is_blank() -> None:
    with pytest.raises(ProtocolError, match=r"payload\.call_id is empty"):
        parse_event(envelope("call_end", {"call_id": "\u202e\n"}))


# --- point 7: no forged log lines --------------------------------------------


def test_for_log_escapes_controls_and_bounds_the_text() -> None:
    assert for_log("a\nERROR forged\r\x1b[0m\u202eb") == (
        "a\\nERROR forged\\r\\x1b[0m\\u202eb"
    )
    assert for_log("x" * 500) == "x" * 200 + "…"
    assert for_log(ValueError("two\nlines")) == "two\\nlines"
    assert for_log("Привет, мир") == "Привет, мир"


def our_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the messages the integration logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components.sprecord")
    ]


async def test_a_refused_body_cannot_forge_a_log_line(
    hass: HomeAssistant,
    ha_url: str,
    hook_entry: MockConfigEntry,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.sprecord")
    forged = "x\n2026-12-06 ERROR (MainThread) [homeassistant] Forged line"
    for body in (
        {"device_id": DEFAULT_DEVICE_ID, "event_type": forged, "payload": 5},
        {"device_id": "pbx", "event_type": "call_end", "payload": {"call_id": []}},
        {"device_id": f"a\n{forged}", "event_type": "startup"},
    ):
        response = await post(ha_url, json.dumps(body))
        assert response.status == 400
        assert "Forged line" not in await response.text()
    messages = [m for m in our_messages(caplog) if "Refused" in m]
    assert len(messages) == 3
    for message in messages:
        assert "\n" not in message
        assert "Forged line" not in message


async def test_outside_error_texts_are_logged_escaped(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server's error text (a reason phrase, say) starts no log line."""
    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    with patch.object(
        SpRecordClient,
        "subscribe_events",
        side_effect=SpRecordError("HTTP 500 Oops\nERROR forged"),
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: "did not take the webhook" in caplog.text)
    link = entry.runtime_data.link
    link.async_malformed_event(ProtocolError("bad\nERROR forged"))
    messages = [m for m in our_messages(caplog) if "forged" in m]
    assert len(messages) == 2
    assert all("\n" not in m and "\\nERROR forged" in m for m in messages)
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- point 6: a POST cannot bring in a PBX, and bounds on what it names ------


async def test_twenty_forged_posts_make_no_device_and_no_entity(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The review's case: twenty POSTs made 32 devices and 177 entities."""
    before = registry_counts(hass, hook_entry)
    for number in range(20):
        device, trunk = [
            (f"forged{number}", f"GSM{number}"),  # a PBX id nobody named
            ("A" * 60_000, "GSM1"),  # a PBX id of 60,000 characters
            (DEFAULT_DEVICE_ID, "T" * 60_000),  # a line of 60,000 characters
            (f"pbx{number}\n", f"GSM1{BIDI}"),  # controls in both
        ][number % 4]
        body = envelope("incoming_call", call(number, trunk=trunk), device)
        response = await post(ha_url, json.dumps(body))
        assert response.status == (200 if number % 4 == 0 else 400)
    await hass.async_block_till_done()
    assert registry_counts(hass, hook_entry) == before
    unique_ids = [
        e.unique_id
        for e in er.async_entries_for_config_entry(
            er.async_get(hass), hook_entry.entry_id
        )
    ]
    assert max(map(len, unique_ids)) < 100
    coordinator = hook_entry.runtime_data.coordinator
    link = hook_entry.runtime_data.link
    assert list(coordinator.pbxs) == [DEFAULT_DEVICE_ID]
    assert list(coordinator.primary.tracker.lines) == []
    assert link.webhook.unknown_pbx_requests == 5
    assert link.webhook.bad_requests == 15
    assert hook_entry.data[CONF_DEVICE_ID] == DEFAULT_DEVICE_ID
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([m for m in warnings if "Dropped a webhook event" in m]) == 1
    assert len([m for m in warnings if "Refused a webhook request" in m]) == 1


async def test_the_first_pbx_comes_from_the_verification_of_our_subscription(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    hook_entry: MockConfigEntry,  # noqa: F811
) -> None:
    # No event came yet: the cloud named the PBX when it verified the hook.
    assert emulator.hooks.verifications
    assert hook_entry.data[CONF_DEVICE_ID] == DEFAULT_DEVICE_ID
    assert list(hook_entry.runtime_data.coordinator.pbxs) == [DEFAULT_DEVICE_ID]


async def test_an_entry_that_has_not_learnt_its_pbx_takes_none_from_a_post(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    """The cloud refused the hook: SSE stands in, a POST cannot name the PBX."""
    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    with patch(
        "custom_components.sprecord.webhook.verification_response",
        return_value={"result": "0" * 32},
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_until(lambda: emulator.open_streams() == 1)
    before = registry_counts(hass, entry)
    forged = envelope("incoming_call", call(1, trunk="GSM9"), "forged")
    assert (await post(ha_url, json.dumps(forged))).status == 200
    await hass.async_block_till_done()
    assert CONF_DEVICE_ID not in entry.data
    assert registry_counts(hass, entry) == before
    assert hass.states.get(CALL_STATE).state == "idle"
    # The stream, which the key authenticates, names it.
    emulator.emit("startup")
    await wait_until(lambda: entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def set_up_verified_by(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    verify: Callable[[str], Awaitable[None]],
) -> MockConfigEntry:
    """Set a webhook entry up whose subscription first runs `verify(hook)`.

    `verify` POSTs what a PBX (or someone else) sends the hook while the
    integration subscribes; returns once the webhook is registered.
    """

    async def subscribe(url: str, events: list[str]) -> SubscriptionSettings:
        await verify(url)
        return SubscriptionSettings(hook=url, subscribe=tuple(events))

    entry = make_entry(emulator, TRANSPORT_WEBHOOK)
    entry.add_to_hass(hass)
    with patch.object(SpRecordClient, "subscribe_events", side_effect=subscribe):
        assert await hass.config_entries.async_setup(entry.entry_id)
        link = entry.runtime_data.link
        await wait_until(lambda: link.subscription.registered)
    return entry


async def test_two_verifications_during_our_subscription_name_no_pbx(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Someone POSTed a verification of their own meanwhile: take neither."""

    async def verify(url: str) -> None:
        async with aiohttp.ClientSession() as session:
            for device in ("pbx-one", "pbx-two", "pbx-two"):
                body = envelope("verification", "challenge", device)
                async with session.post(url, json=body) as response:
                    assert response.status == 200

    entry = await set_up_verified_by(hass, emulator, verify)
    coordinator = entry.runtime_data.coordinator
    assert "naming 2 different PBXs" in caplog.text
    assert CONF_DEVICE_ID not in entry.data
    assert coordinator.pbxs == {}
    # A verification outside our own subscription names nothing either.
    late = envelope("verification", "challenge", "pbx-three")
    assert (await post(ha_url, json.dumps(late))).status == 200
    assert coordinator.pbxs == {}
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("form", "learnt"),
    [
        ("device_id=pbx-form&event_type=verification&payload=abc", "pbx-form"),
        ("device_id=pbx%0Aform&event_type=verification&payload=abc", None),
        ("event_type=verification&payload=abc", None),
    ],
)
async def test_a_form_encoded_verification_names_its_pbx_if_it_is_one(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    form: str,
    learnt: str | None,
) -> None:
    async def verify(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=form) as response,
        ):
            assert response.status == 200

    entry = await set_up_verified_by(hass, emulator, verify)
    coordinator = entry.runtime_data.coordinator
    assert entry.data.get(CONF_DEVICE_ID) == learnt
    assert list(coordinator.pbxs) == ([learnt] if learnt else [])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_saved_state_with_made_up_names_is_not_taken_back(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    hass_storage: dict[str, Any],
    fast_link: None,
) -> None:
    """What an older version took from forged POSTs is dropped at start."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="SpRecord MiniPBX",
        data={
            CONF_URL: emulator.url,
            CONF_API_KEY: "demo",
            CONF_DEVICE_ID: "forged\nfirst",
        },
        unique_id=account_id("demo"),
    )
    hass_storage[f"{DOMAIN}.{entry.entry_id}"] = {
        "version": STORAGE_VERSION,
        "minor_version": 2,
        "key": f"{DOMAIN}.{entry.entry_id}",
        "data": {
            "pbx_id": "forged\nfirst",
            "lines": ["GSM1", "T" * 60_000, "GSM\u202e2"],
            "others": [{"pbx_id": "A" * 60_000, "number": 2, "lines": ["GSM1"]}],
        },
    }
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data.coordinator
    assert coordinator.pbxs == {}
    assert coordinator.primary.pbx_id is None
    assert list(coordinator.primary.tracker.lines) == ["GSM1"]
    emulator.emit("startup")
    await wait_until(lambda: entry.data.get(CONF_DEVICE_ID) == DEFAULT_DEVICE_ID)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_account_is_followed_for_sixteen_pbxs_at_most(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for number in range(1, MAX_PBXS + 3):
        emulator.emit("startup", device_id=make_device_id(number))
    coordinator = setup_entry.runtime_data.coordinator
    link = setup_entry.runtime_data.link
    await wait_until(lambda: link.stats.events_by_type["startup"] == 18)
    await hass.async_block_till_done()
    assert len(coordinator.pbxs) == MAX_PBXS
    assert caplog.text.count("Events of more than 16 PBXs") == 1


# --- point 15: a line first seen while the entry unloads ---------------------


async def test_a_line_first_seen_while_the_entry_unloads_leaves_no_zombie(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    entity_registry_enabled_by_default: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    coordinator = config_entry.runtime_data.coordinator
    unload_platforms = hass.config_entries.async_unload_platforms

    async def unload_then_a_new_line(entry: Any, platforms: Any) -> bool:
        unloaded = await unload_platforms(entry, platforms)
        # The stream still delivers until the entry's tasks are cancelled.
        for device in (DEFAULT_DEVICE_ID, "another-pbx"):
            payload = call(1, trunk="GSM7")
            event = parse_event(envelope("incoming_call", payload, device))
            coordinator.async_handle_event(event, "sse")
        return unloaded

    with patch.object(
        hass.config_entries, "async_unload_platforms", unload_then_a_new_line
    ):
        assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.line_gsm7_state") is None  # no zombie
    assert not [
        d
        for d in dr.async_entries_for_config_entry(
            dr.async_get(hass), config_entry.entry_id
        )
        if d.name != "SpRecord MiniPBX"
    ]  # nor a device of a new PBX

    # Set up again: the line was kept, its entity comes once, and idle.
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await wait_for_state(hass, "sensor.line_gsm7_state", "idle")
    assert "already exists" not in caplog.text
    assert await hass.config_entries.async_unload(config_entry.entry_id)


# --- point 16: an expired call whose end comes late is listed once -----------


async def test_a_call_that_expired_and_then_ended_is_listed_once(
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    entry = await set_up_short_call_entry(hass, emulator)
    logged = async_capture_events(hass, EVENT_SPRECORD_LOG)
    for call_id in range(1, 22):
        emulator.emit("incoming_call", call(call_id, trunk="GSM1"))
        emulator.emit("start_talk", call(call_id, trunk="GSM1"))
    tracker = entry.runtime_data.coordinator.primary.tracker
    await wait_until(lambda: len(tracker.active) == 21)
    freezer.tick(timedelta(minutes=6))
    async_fire_time_changed(hass)
    await wait_for_state(hass, CALL_STATE, "idle")  # all expired
    await wait_until(lambda: len(logged) == 21)
    await hass.async_block_till_done()
    listed = hass.states.get(RECENT).attributes["calls"]
    assert len(listed) == 20  # the first one is out of the list already
    assert {c["result"] for c in listed} == {"unknown"}

    # The real ends come late: each entry learns how its call ended, in its
    # place; none is listed or logged again.
    emulator.emit("call_end", end(21, duration=421))
    emulator.emit("call_end", end(20, duration=420))
    emulator.emit("call_end", end(1, duration=401))  # out of the list
    await wait_until(lambda: tracker.last_call and tracker.last_call.call_id == "1")
    await hass.async_block_till_done()
    listed = hass.states.get(RECENT).attributes["calls"]
    assert [(c["result"], c["duration"]) for c in listed[:3]] == [
        ("success", 421),
        ("success", 420),
        ("unknown", None),
    ]
    assert len(listed) == 20
    assert all(c["duration"] != 401 for c in listed)
    assert len(logged) == 21  # one logbook line per call

    # A call of its own is listed as usual.
    emulator.emit("call_end", end(30, duration=7))
    await wait_until(lambda: len(logged) == 22)
    await hass.async_block_till_done()
    assert hass.states.get(RECENT).attributes["calls"][0]["duration"] == 7
    assert await hass.config_entries.async_unload(entry.entry_id)


# --- point 17: the "too many connections" issue goes with its entry ----------


@contextlib.asynccontextmanager
async def every_stream_held(emulator: SpRecordEmulator) -> AsyncIterator[None]:
    """Hold the server's three streams, as other clients would."""
    async with aiohttp.ClientSession() as session:
        client = SpRecordClient(session, emulator.url, "demo")
        streams = [await client.connect() for _ in range(3)]
        try:
            yield
        finally:
            for stream in streams:
                stream.close()


def busy_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """Return the entry's "too many connections" issue, if it is raised."""
    return ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_TOO_MANY_CONNECTIONS}_{entry.entry_id}"
    )


async def end_entry(hass: HomeAssistant, entry: MockConfigEntry, how: str) -> None:
    """Unload, disable or remove the entry."""
    if how == "unload":
        assert await hass.config_entries.async_unload(entry.entry_id)
    elif how == "disable":
        assert await hass.config_entries.async_set_disabled_by(
            entry.entry_id, ConfigEntryDisabler.USER
        )
    else:
        await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("how", ["unload", "disable", "remove"])
async def test_the_busy_issue_of_a_retrying_entry_goes_with_it(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
    how: str,
) -> None:
    async with every_stream_held(emulator):
        config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(config_entry.entry_id)
        assert config_entry.state is ConfigEntryState.SETUP_RETRY
        assert busy_issue(hass, config_entry) is not None
        await end_entry(hass, config_entry, how)
    assert busy_issue(hass, config_entry) is None


@pytest.mark.parametrize("how", ["unload", "disable", "remove"])
async def test_the_busy_issue_of_a_loaded_entry_goes_with_it(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    fast_link: None,
    how: str,
) -> None:
    """With both transports the entry loads while the streams are held."""
    async with every_stream_held(emulator):
        entry = make_entry(emulator, TRANSPORT_BOTH)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.LOADED
        assert busy_issue(hass, entry) is not None
        await wait_until(lambda: emulator.hooks.get("demo") is not None)
        await end_entry(hass, entry, how)
    assert busy_issue(hass, entry) is None


async def test_the_busy_issue_stays_while_the_entry_retries(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    """Only an entry that stops trying loses it: a retry keeps it raised."""
    async with every_stream_held(emulator):
        config_entry.add_to_hass(hass)
        await hass.config_entries.async_setup(config_entry.entry_id)
        hass.config_entries.async_update_entry(config_entry, title="Office")
        await hass.async_block_till_done()
        assert config_entry.state is ConfigEntryState.SETUP_RETRY
        assert busy_issue(hass, config_entry) is not None
        other = MockConfigEntry(domain=DOMAIN, options={"transport": TRANSPORT_SSE})
        other.add_to_hass(hass)
        await hass.config_entries.async_remove(other.entry_id)
        assert busy_issue(hass, config_entry) is not None
        await end_entry(hass, config_entry, "unload")
