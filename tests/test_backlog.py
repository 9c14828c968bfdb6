"""After a long absence, the stream's backlog updates the state but rings no bell.

Home Assistant was down for longer than the longest call; a server that
resumes sends what happened meanwhile as soon as the stream is back, and
may take its time over it. The clock is frozen: time passes when a test
says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed_exact,
)

from custom_components.sprecord.backlog import BACKLOG_MAX, BACKLOG_QUIET, BacklogHold
from custom_components.sprecord.const import (
    DOMAIN,
    EVENT_SPRECORD,
    EVENT_SPRECORD_LOG,
    TRANSPORT_BOTH,
)
from custom_components.sprecord.replay import Delivery
from custom_components.sprecord.resume import ResumePosition
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_replay import ev
from .test_states import CALL_EVENT, CALL_STATE, MISSED, SMS_EVENT, call, end
from .test_webhook import make_entry, post

LONG_ABSENCE = timedelta(hours=4)
"""Longer than the longest call (three hours unless set)."""


async def restart_after(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    absence: timedelta,
) -> list[Any]:
    """Ring a call, go away while the office goes on, come back after `absence`.

    Returns the `sprecord_event` bus events fired after the return.
    """
    emulator.emit("incoming_call", call(1))
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    sms_date = dt_util.now().isoformat(timespec="seconds")
    # Meanwhile: call 1 is answered and ends, call 2 is missed, an SMS comes,
    # and call 3 rings still when Home Assistant is back.
    emulator.emit("start_talk", call(1))
    emulator.emit("call_end", end(1, duration=30))
    emulator.emit("incoming_call", call(2, src="+79990000002", trunk="GSM2"))
    emulator.emit("call_end", end(2, status="no_answer"))
    emulator.emit(
        "incoming_sms",
        {"sms_src": "+79990000003", "text": "old", "trunk": "GSM1", "date": sms_date},
    )
    emulator.emit("incoming_call", call(3, src="+79990000004", trunk="GSM2"))
    freezer.tick(absence)
    fired = async_capture_events(hass, EVENT_SPRECORD)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: entry.runtime_data.link.stats.events_by_type.total() == 6)
    return fired


async def pass_time(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let `seconds` pass on the frozen clock; the timers due run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed_exact(hass)
    await hass.async_block_till_done()


def held(entry: MockConfigEntry, count: int) -> bool:
    """Tell whether the link has handed on `count` events since setup."""
    return entry.runtime_data.link.stats.events_by_type.total() == count


BACKLOG_FLAGS = [
    ("start_talk", "1", True),
    ("call_end", "1", True),
    ("incoming_call", "2", True),
    ("call_end", "2", True),
    ("incoming_sms", None, True),
    ("incoming_call", "3", False),
]
"""What `restart_after()`'s backlog replays after a long absence."""


def replayed_flags(fired: list[Any]) -> list[tuple[str, str | None, bool]]:
    """Return each fired event's type, call id and whether it was a replay."""
    return [
        (
            event.data["event_type"],
            event.data["payload"].get("call_id"),
            event.data.get("replayed", False),
        )
        for event in fired
    ]


async def test_after_a_long_absence_only_the_call_still_ringing_rings(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    # Held until nothing came for a moment: it is taken as a whole.
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.9)
    assert fired == []
    writes = async_capture_events(hass, "state_changed")
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.2)

    assert replayed_flags(fired) == BACKLOG_FLAGS
    # The state and the counters learnt everything...
    ringing = await wait_for_state(hass, CALL_STATE, "ringing")
    assert ringing.attributes["call_id"] == "3"
    assert hass.states.get(MISSED).state == "1"
    recent = hass.states.get("sensor.sprecord_minipbx_recent_calls")
    assert [(c["number"], c["result"]) for c in recent.attributes["calls"][:2]] == [
        ("+79990000002", "missed"),
        ("+79161234567", "success"),
    ]
    # ...but only call 3 fired the call event entity, and no SMS fired.
    triggered = [
        (write.data["entity_id"], write.data["new_state"].attributes.get("call_id"))
        for write in writes
        if write.data["entity_id"] in (CALL_EVENT, SMS_EVENT)
    ]
    assert triggered == [(CALL_EVENT, "3")]
    assert await hass.config_entries.async_unload(setup_entry.entry_id)


async def test_after_a_short_absence_everything_fires_at_once(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(
        hass, emulator, setup_entry, freezer, timedelta(minutes=10)
    )
    await wait_until(lambda: len(fired) == 6)
    assert not any(replayed for _, _, replayed in replayed_flags(fired))
    assert (await wait_for_state(hass, CALL_STATE, "ringing")).attributes[
        "call_id"
    ] == "3"
    assert await hass.config_entries.async_unload(setup_entry.entry_id)


async def test_a_backlog_held_at_unload_is_handled_and_saved(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    assert fired == []
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert len(fired) == 6
    saved = hass_storage[f"{DOMAIN}.{setup_entry.entry_id}"]["data"]
    assert saved["missed_count"] == 1
    # Call 3 rings still (its event is the 7th): the stream resumes from
    # before it, to show it again if it still rings.
    assert saved["resume"]["event_id"] == "6"
    assert saved["resume"]["latest"] == "7"
    assert [event_id for event_id, _ in saved["resume"]["again"]] == ["7"]


async def test_the_position_before_a_held_backlog_is_what_a_stop_saves(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    coordinator = setup_entry.runtime_data.coordinator
    # Home Assistant stops without unloading: the final write must not pass
    # the events it holds.
    assert coordinator.saved()["resume"]["event_id"] == "1"
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    # All handled; call 3 (the 7th event) still rings: held back before it.
    assert coordinator.saved()["resume"]["event_id"] == "6"


async def test_a_backlog_that_keeps_coming_is_held_until_it_is_over(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    sent_long_ago = (dt_util.now() - LONG_ABSENCE).isoformat(timespec="seconds")
    # The server takes its time: a piece of the backlog every 0.8 s, long
    # past the first seconds. Call 4 ends in it: it is replayed whole.
    late = [
        ("incoming_call", call(4, src="+79990000005", trunk="GSM1")),
        ("call_end", end(4, status="no_answer")),
        (
            "incoming_sms",
            {"sms_src": "+79990000006", "text": "late", "trunk": "GSM1"}
            | {"date": sent_long_ago},
        ),
    ]
    for count, (event_type, payload) in enumerate(late, start=7):
        await pass_time(hass, freezer, 0.8)
        emulator.emit(event_type, payload)
        await wait_until(lambda n=count: held(setup_entry, n))
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.9)
    assert fired == []  # 3.3 s after setup: still coming a second ago
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.2)

    assert replayed_flags(fired) == [
        *BACKLOG_FLAGS,
        ("incoming_call", "4", True),
        ("call_end", "4", True),
        ("incoming_sms", None, True),
    ]
    assert hass.states.get(MISSED).state == "2"
    assert (await wait_for_state(hass, CALL_STATE, "ringing")).attributes[
        "call_id"
    ] == "3"


async def test_a_backlog_that_never_pauses_is_taken_at_the_latest_after_a_while(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    elapsed, count = 0.0, 6
    while elapsed + 0.9 < BACKLOG_MAX:
        await pass_time(hass, freezer, 0.9)
        elapsed += 0.9
        assert fired == []
        # Never quiet for a second.
        count += 1
        emulator.emit(
            "incoming_sms",
            {"sms_src": f"+7999100{count:04}", "text": "t", "trunk": "1"},
        )
        await wait_until(lambda n=count: held(setup_entry, n))
    await pass_time(hass, freezer, BACKLOG_MAX - elapsed + 0.01)
    assert replayed_flags(fired)[:6] == BACKLOG_FLAGS
    assert len(fired) == count
    # What comes after it is shown at once.
    emulator.emit("call_end", end(3))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert replayed_flags(fired)[-1] == ("call_end", "3", False)


async def test_the_quiet_that_ends_a_backlog_counts_while_the_stream_is_open(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    fired = await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    link = setup_entry.runtime_data.link
    emulator.drop_streams("close")  # the rest of the backlog comes on the next
    await wait_until(lambda: not link.connected)
    connects = emulator.stats.connects
    emulator.emit("call_end", end(3))
    await pass_time(hass, freezer, BACKLOG_QUIET * 1.1)  # the reconnect waits
    assert fired == []
    await wait_until(lambda: emulator.stats.connects == connects + 1)
    await wait_until(lambda: held(setup_entry, 7))
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.9)
    assert fired == []
    await pass_time(hass, freezer, BACKLOG_QUIET * 0.2)
    assert replayed_flags(fired) == [
        *BACKLOG_FLAGS[:5],
        ("incoming_call", "3", True),
        ("call_end", "3", True),
    ]


async def test_webhook_events_join_the_backlog_in_the_order_they_came(
    hass: HomeAssistant,
    ha_url: str,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    fast_link: None,
) -> None:
    entry = make_entry(emulator, TRANSPORT_BOTH)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.hooks.get("demo") is not None)
    fired = await restart_after(hass, emulator, entry, freezer, LONG_ABSENCE)
    await wait_until(lambda: entry.runtime_data.link.webhook_registered)
    # A call that rings now, posted before the backlog is over (and not on
    # the stream): it is shown after the backlog, never before it.
    envelope = {
        "device_id": DEFAULT_DEVICE_ID,
        "event_type": "incoming_call",
        "payload": call(5, src="+79990000007", trunk="GSM3"),
    }
    assert (await post(ha_url, json.dumps(envelope))).status == 200
    assert held(entry, 7)
    assert fired == []
    await pass_time(hass, freezer, BACKLOG_QUIET * 1.1)
    assert replayed_flags(fired) == [*BACKLOG_FLAGS, ("incoming_call", "5", False)]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_replayed_sms_is_listed_when_it_was_sent(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    freezer: FrozenDateTimeFactory,
    patient_stream: None,
    setup_entry: MockConfigEntry,
) -> None:
    sent = dt_util.utcnow().replace(microsecond=0)
    logged = async_capture_events(hass, EVENT_SPRECORD_LOG)
    await restart_after(hass, emulator, setup_entry, freezer, LONG_ABSENCE)
    await pass_time(hass, freezer, BACKLOG_QUIET * 1.1)
    [sms] = [entry.data for entry in logged if entry.data["kind"] == "sms"]
    assert datetime.fromisoformat(sms["time"]) == sent
    # The sensor tells when it came to Home Assistant.
    last_sms = hass.states.get("sensor.sprecord_minipbx_last_sms")
    assert dt_util.parse_datetime(last_sms.state) >= sent + LONG_ABSENCE


def expecting_a_call_again(
    hass: HomeAssistant,
) -> tuple[BacklogHold, list[tuple[Any, Delivery]]]:
    """Return a hold after a restart with a call in progress, and what it lets go.

    The stream counts as open: the backlog is over after a quiet second.
    """
    released: list[tuple[Any, Delivery]] = []
    hold = BacklogHold(
        hass,
        longest_call=timedelta(hours=3),
        stream_open=lambda: True,
        over=lambda: released.extend(hold.async_take()),
    )
    now = dt_util.utcnow()
    hold.async_expect(ResumePosition("1", now, now, (), (("2", "0" * 16),), "3"))
    return hold, released


async def test_a_call_sent_again_after_the_hold_is_held_on_its_own(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """The stream opened late (the hold was over): what is sent again waits."""
    hold, released = expecting_a_call_again(hass)
    ringing = ev("incoming_call", call_id=1, call_src="+79161234567")
    assert hold.holding
    await pass_time(hass, freezer, BACKLOG_MAX + 1)
    assert not hold.holding
    assert released == []
    sms = ev("incoming_sms", sms_src="A", text="live")
    assert not hold.async_hold(sms)  # news: handled at once
    assert hold.async_hold(ringing, again=True)
    ended = ev("call_end", call_id=1, record_id=7, duration=3, status="success")
    assert hold.async_hold(ended)
    await pass_time(hass, freezer, BACKLOG_QUIET + 0.1)
    assert released == [(ringing, Delivery.RESENT), (ended, Delivery.LIVE)]
    assert not hold.holding


async def test_calls_sent_again_are_handled_before_the_webhook_news_between_them(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Both transports: an answer posted to the webhook may beat the resend."""
    hold, released = expecting_a_call_again(hass)
    answered = ev("start_talk", call_id=1, call_src="+79161234567")
    ringing = ev("incoming_call", call_id=1, call_src="+79161234567")
    assert hold.async_hold(answered)  # from the webhook, first
    assert hold.async_hold(ringing, again=True)  # from the stream
    await pass_time(hass, freezer, BACKLOG_QUIET + 0.1)
    assert released == [(ringing, Delivery.AGAIN), (answered, Delivery.LIVE)]
