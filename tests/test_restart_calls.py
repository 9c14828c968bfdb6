"""A call in progress when Home Assistant went down rings again if it still is.

The entry is unloaded (as an update or a reload does; the fault suite's
`ha_restart_mid_call` stops Home Assistant itself) while a call is in
progress, and set up again from storage. A server that resumes sends the
call's events again: they show it again, ringing or talking, or only
complete it when its end follows. Nothing else is handled twice, and a
server that cannot go back that far loses nothing either.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.sprecord import sse_link
from custom_components.sprecord.api import (
    AuthenticationError,
    SpRecordConnectionError,
    SpRecordError,
    TooManyConnectionsError,
)
from custom_components.sprecord.const import DOMAIN, EVENT_SPRECORD
from custom_components.sprecord.dedupe import SeenStreamIds, event_digest
from custom_components.sprecord.linkstats import LinkStats
from custom_components.sprecord.resume import ResumePosition, StreamPosition
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator

from .helpers import wait_for_state, wait_until
from .test_pbxs import B_CALL_STATE, B
from .test_replay import ev, start as start_event
from .test_states import (
    CALL_EVENT,
    CALL_STATE,
    LAST_RESULT,
    call,
    end,
)

SMS = {"sms_src": "+79160000001", "text": "hello", "trunk": "GSM2"}


def sms_event(text: str) -> Any:
    return ev("incoming_sms", sms_src="+79161234567", text=text, trunk="GSM1")


def kinds(fired: list[Event]) -> list[tuple[str, str | None, bool]]:
    """Return the bus events as (type, call id, sent again)."""
    return [
        (
            e.data["event_type"],
            e.data["payload"].get("call_id"),
            e.data.get("again", False),
        )
        for e in fired
    ]


def saved_resume(hass_storage: dict[str, Any], entry: MockConfigEntry) -> Any:
    return hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["resume"]


async def ring_then_unload(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
    *,
    talk: bool = False,
) -> list[Event]:
    """Ring call 1 among other events, then unload; return the bus since."""
    fired = async_capture_events(hass, EVENT_SPRECORD)
    emulator.emit("startup")  # an event before the call: an id to go back to
    emulator.emit("incoming_call", call(1))
    emulator.emit("incoming_sms", SMS)
    emulator.emit("incoming_call", call(2, trunk="GSM2"))
    emulator.emit("call_end", end(2, status="no_answer"))
    if talk:
        emulator.emit("start_talk", call(1))
    await wait_until(lambda: len(fired) == 5 + talk)
    await wait_for_state(hass, CALL_STATE, "talking" if talk else "ringing")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    return fired


async def set_up_again(hass: HomeAssistant, entry: MockConfigEntry) -> list[Event]:
    """Set the entry up from storage; return the bus events from then on."""
    fired = async_capture_events(hass, EVENT_SPRECORD)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return fired


async def test_a_call_ringing_at_a_restart_rings_again_if_it_still_does(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    before = await ring_then_unload(hass, emulator, setup_entry)
    resume = saved_resume(hass_storage, setup_entry)
    assert (resume["event_id"], resume["latest"]) == ("1", "5")
    assert [event_id for event_id, _ in resume["again"]] == ["2"]
    call_event = hass.states.get(CALL_EVENT)
    assert call_event is not None

    fired = await set_up_again(hass, setup_entry)
    ringing = await wait_for_state(hass, CALL_STATE, "ringing", timeout=5)
    assert ringing.attributes["call_id"] == "1"
    assert kinds(fired) == [("incoming_call", "1", True)]
    # Its event entity fires again: an automation that rings, rings.
    again = hass.states.get(CALL_EVENT)
    assert again is not None
    assert again.state != call_event.state
    assert again.attributes["event_type"] == "incoming_call"
    link = setup_entry.runtime_data.link
    assert link.stats.duplicates == 3  # the SMS and call 2, recognised
    assert emulator.stats.connects == 2

    emulator.emit("call_end", end(1, duration=20))
    await wait_for_state(hass, CALL_STATE, "idle")
    assert hass.states.get(LAST_RESULT).attributes["direction"] == "incoming"
    # Across the restart, each event once; the call rang twice, said so.
    assert kinds(before) == [
        ("startup", None, False),
        ("incoming_call", "1", False),
        ("incoming_sms", None, False),
        ("incoming_call", "2", False),
        ("call_end", "2", False),
        ("incoming_call", "1", True),
        ("call_end", "1", False),
    ]


async def test_a_call_talking_at_a_restart_is_shown_talking_again(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry, talk=True)
    fired = await set_up_again(hass, setup_entry)
    talking = await wait_for_state(hass, CALL_STATE, "talking", timeout=5)
    assert talking.attributes["call_id"] == "1"
    assert talking.attributes["direction"] == "incoming"
    assert kinds(fired) == [
        ("incoming_call", "1", True),
        ("start_talk", "1", True),
    ]


async def test_a_call_that_ended_while_away_does_not_ring_again(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    emulator.emit("start_talk", call(1))
    emulator.emit("call_end", end(1, duration=30))
    shown_types: list[str] = []

    @callback
    def shown(event: Event) -> None:
        # In the loop, in order (a plain function would run in a thread).
        if event.data["entity_id"] == CALL_EVENT and event.data["new_state"]:
            shown_types.append(event.data["new_state"].attributes.get("event_type"))

    hass.bus.async_listen("state_changed", shown)
    fired = await set_up_again(hass, setup_entry)
    await wait_until(lambda: len(fired) == 2, timeout=5)
    await hass.async_block_till_done()
    # What came while away is news (a short absence); the ring is not.
    assert kinds(fired) == [("start_talk", "1", False), ("call_end", "1", False)]
    assert hass.states.get(CALL_STATE).state == "idle"
    result = hass.states.get(LAST_RESULT)
    assert (result.state, result.attributes["direction"]) == ("success", "incoming")
    # The call's event entity fired for the news only, never "incoming"
    # (its first state after the setup is its last one before).
    assert "incoming_call" not in shown_types
    assert shown_types[-2:] == ["start_talk", "call_end"]


@pytest.mark.parametrize("overlap", [0, 3])
async def test_a_server_resuming_at_least_once_rings_it_once(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    overlap: int,
) -> None:
    emulator.resume_overlap = overlap
    await ring_then_unload(hass, emulator, setup_entry)
    fired = await set_up_again(hass, setup_entry)
    await wait_for_state(hass, CALL_STATE, "ringing", timeout=5)
    emulator.emit("incoming_sms", {**SMS, "text": "after"})
    await wait_until(lambda: len(fired) == 2)
    await hass.async_block_till_done()
    assert kinds(fired) == [
        ("incoming_call", "1", True),
        ("incoming_sms", None, False),
    ]
    # Reloaded again while the call still rings: it rings once more.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: len(fired) == 3, timeout=5)
    await hass.async_block_till_done()
    assert kinds(fired)[2] == ("incoming_call", "1", True)
    assert hass.states.get(CALL_STATE).state == "ringing"


@pytest.fixture
def short_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wait a fifth of a second for what a resumed stream sends first."""
    monkeypatch.setattr(sse_link, "PROBE_WAIT", 0.2)


async def test_a_server_that_does_not_resume_is_asked_again_once(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    short_probe: None,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    emulator.replay = False
    fired = await set_up_again(hass, setup_entry)
    # Nothing comes again: the stream opens once more, from the last event.
    await wait_until(lambda: emulator.stats.connects == 3)
    assert emulator.open_streams() == 1
    emulator.emit("incoming_sms", {**SMS, "text": "after"})
    await wait_until(lambda: len(fired) == 1)
    await hass.async_block_till_done()
    assert kinds(fired) == [("incoming_sms", None, False)]
    assert hass.states.get(CALL_STATE).state == "idle"  # not known to ring
    assert emulator.stats.max_open_streams == 1


@pytest.mark.parametrize("sends_all_kept", [False, True])
async def test_a_server_that_keeps_too_little_to_go_back_loses_nothing(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    short_probe: None,
    sends_all_kept: bool,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    emulator.resume_beyond_history = sends_all_kept
    # While Home Assistant is down: two SMS, and the server forgets all but
    # the last three events (its call 2 and the two SMS, not call 1).
    emulator.emit("incoming_sms", {**SMS, "text": "one"})
    emulator.emit("incoming_sms", {**SMS, "text": "two", "sms_src": "+7916000002"})
    emulator.forget_history(keep=3)
    fired = await set_up_again(hass, setup_entry)
    await wait_until(lambda: len(fired) == 2, timeout=5)
    await hass.async_block_till_done()
    assert [e.data["payload"]["sms_src"] for e in fired] == [
        "+79160000001",
        "+7916000002",
    ]
    assert hass.states.get(CALL_STATE).state == "idle"
    assert emulator.stats.connects == (2 if sends_all_kept else 3)


async def test_calls_in_progress_on_two_pbxs_ring_again_each_on_its_own(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    fired = async_capture_events(hass, EVENT_SPRECORD)
    emulator.emit("startup")
    # The same call id on both PBXs; the first PBX restarts, which ends its
    # call 8, and counts its ids anew: its next call 8 is another call.
    emulator.emit("incoming_call", call(8), device_id=B)
    emulator.emit("incoming_call", call(8, src="+79160000009"))
    emulator.emit("startup")
    emulator.emit("incoming_call", call(8, src="+79160000007", trunk="GSM2"))
    await wait_until(lambda: len(fired) == 5)
    await wait_for_state(hass, B_CALL_STATE, "ringing")
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()

    fired = await set_up_again(hass, setup_entry)
    await wait_until(lambda: len(fired) == 2, timeout=5)
    await hass.async_block_till_done()
    assert [(e.data["pbx_id"], e.data["payload"]["call_src"]) for e in fired] == [
        (B, "+79161234567"),
        (DEFAULT_DEVICE_ID, "+79160000007"),
    ]
    assert all(e.data["again"] for e in fired)
    assert hass.states.get(B_CALL_STATE).state == "ringing"
    first = hass.states.get(CALL_STATE)
    assert (first.state, first.attributes["caller"]) == ("ringing", "+79160000007")
    assert len(first.attributes["active_calls"]) == 1  # not the one cut


async def test_a_server_that_sends_news_first_is_asked_again_from_the_last(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    # It keeps too little to go back to before call 1, and sends nothing
    # then; news comes first. Asked again from the last event handled, it
    # sends what came while Home Assistant was down (and the news again).
    emulator.emit("incoming_sms", {**SMS, "text": "while down"})
    emulator.forget_history(keep=2)
    fired = await set_up_again(hass, setup_entry)
    emulator.emit("incoming_sms", {**SMS, "text": "news", "sms_src": "+7916000003"})
    await wait_until(lambda: len(fired) == 2, timeout=5)
    await hass.async_block_till_done()
    assert sorted(e.data["payload"]["sms_src"] for e in fired) == [
        "+79160000001",
        "+7916000003",
    ]
    assert emulator.stats.connects == 3
    assert setup_entry.runtime_data.link.stats.duplicates == 1  # the news
    assert hass.states.get(CALL_STATE).state == "idle"


async def test_a_server_refusing_the_held_back_id_is_asked_from_the_last(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    emulator.emit("incoming_sms", {**SMS, "text": "while down"})
    emulator.fail_streams(400)  # an id it does not keep, say
    fired = await set_up_again(hass, setup_entry)
    await wait_until(lambda: len(fired) == 1, timeout=5)
    await hass.async_block_till_done()
    assert kinds(fired) == [("incoming_sms", None, False)]
    assert emulator.stats.rejected_forced == 1
    assert hass.states.get(CALL_STATE).state == "idle"


class Answers:
    """A client whose connects fail as told, then succeed; it notes the ids."""

    def __init__(self, *errors: SpRecordError) -> None:
        self.errors = list(errors)
        self.asked: list[str | None] = []

    async def connect(self, last_event_id: str | None = None) -> Any:
        self.asked.append(last_event_id)
        if self.errors:
            raise self.errors.pop(0)
        return object()


@pytest.mark.parametrize(
    ("error", "asked"),
    [
        (SpRecordError("HTTP 400", status=400), ["1", "5"]),
        (SpRecordError("HTTP 503", status=503), ["1", "5"]),
        (SpRecordConnectionError("unreachable"), ["1", "5"]),
        (AuthenticationError("HTTP 401"), ["1"]),
        (TooManyConnectionsError("HTTP 429"), ["1"]),
    ],
)
async def test_a_held_back_id_gets_one_try_unless_the_key_or_the_slot_failed(
    hass: HomeAssistant, error: SpRecordError, asked: list[str]
) -> None:
    held = ResumePosition("1", dt_util.utcnow(), None, (), (("2", "0" * 16),), "5")
    answers = Answers(error)
    keeper = sse_link.StreamKeeper(
        hass,
        MockConfigEntry(domain=DOMAIN),
        answers,
        LinkStats(),
        deliver=lambda _event, _transport: None,
        state=MagicMock(),
        position=StreamPosition(held),
    )
    if len(asked) == 2:
        await keeper.connect()
        assert not keeper.position.probing
    else:
        with pytest.raises(type(error)):
            await keeper.connect()
        assert keeper.position.probing  # not an answer about the id
    assert answers.asked == asked


async def test_news_first_from_an_at_least_once_server_handles_nothing_twice(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)  # ids 1 to 5
    emulator.emit("incoming_sms", {**SMS, "text": "while down"})  # 6
    emulator.forget_history(keep=4)  # 3 to 6: not the held-back 1
    emulator.resume_overlap = 3
    fired = await set_up_again(hass, setup_entry)
    emulator.emit("incoming_sms", {**SMS, "text": "news", "sms_src": "+7916000003"})
    # From the last (5), it sends 3 to 5 again (handled before the restart),
    # 6 and the news (handled already): four recognised.
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: stats.duplicates == 4, timeout=5)
    await wait_until(lambda: len(fired) == 2, timeout=5)
    await hass.async_block_till_done()
    assert sorted(e.data["payload"]["sms_src"] for e in fired) == [
        "+79160000001",
        "+7916000003",
    ]
    assert emulator.stats.connects == 3


async def test_a_fall_back_recognises_the_calls_sent_again_too(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    short_probe: None,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)  # ids 1 to 5
    emulator.emit("incoming_sms", {**SMS, "text": "while down"})  # 6
    emulator.forget_history(keep=5)  # 2 to 6
    emulator.resume_overlap = 4  # from the last (5): 2 (call 1) to 6
    fired = await set_up_again(hass, setup_entry)
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: stats.duplicates == 4, timeout=5)
    await wait_until(lambda: len(fired) == 1, timeout=5)
    await hass.async_block_till_done()
    assert kinds(fired) == [("incoming_sms", None, False)]
    assert emulator.stats.connects == 3


async def test_an_unload_while_unproven_saves_the_position_as_it_was(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    before = dict(saved_resume(hass_storage, setup_entry))
    emulator.replay = False
    await set_up_again(hass, setup_entry)
    assert setup_entry.runtime_data.link.stream.position.probing
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert saved_resume(hass_storage, setup_entry) == before


class Frames:
    """Where a stream is: the id of its last event (what the keeper reads)."""

    event_id = ""
    last_event_id = ""


async def test_a_resend_that_starts_over_on_a_new_stream_is_recognised(
    hass: HomeAssistant,
) -> None:
    events = {n: sms_event(text) for n, text in ((1, "a"), (3, "b"), (4, "c"))}
    events |= {2: start_event(1), 5: sms_event("d"), 6: sms_event("news")}

    def pair(n: int) -> tuple[str, str]:
        return (str(n), event_digest(events[n]))

    handled = (pair(1), pair(3), pair(4), pair(5))
    held = ResumePosition("1", dt_util.utcnow(), None, handled, (pair(2),), "5")
    delivered: list[Any] = []
    keeper = sse_link.StreamKeeper(
        hass,
        MockConfigEntry(domain=DOMAIN),
        MagicMock(),
        LinkStats(),
        deliver=lambda event, _transport: delivered.append(event),
        state=MagicMock(),
        position=StreamPosition(held),
    )
    keeper.position.confirmed()
    frames = Frames()
    # A stream from 1 (at-least-once: from 1) sends 1 to 3, then drops; the
    # next, from 3, sends 3 to 6, with the memory of ids gone meanwhile.
    for n in (1, 2, 3, 3, 4, 5, 6):
        frames.event_id = frames.last_event_id = str(n)
        keeper._stream_ids = SeenStreamIds(window=0.0)
        keeper._take(frames, events[n])
    assert delivered == [events[2], events[6]]


async def test_an_unload_during_the_hold_rings_nothing_and_goes_back_again(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    await ring_then_unload(hass, emulator, setup_entry)
    fired = await set_up_again(hass, setup_entry)
    stats = setup_entry.runtime_data.link.stats
    await wait_until(lambda: stats.duplicates == 3)  # all sent again: held
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    # Its end may be on its way: the call is not rung at the unload, and
    # the next setup goes back to before it again.
    assert fired == []
    resume = saved_resume(hass_storage, setup_entry)
    assert (resume["event_id"], resume["latest"]) == ("1", "5")
    assert [event_id for event_id, _ in resume["again"]] == ["2"]


async def test_a_withheld_number_ringing_at_a_restart_rings_again(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
) -> None:
    withheld = {"call_id": 7, "call_src": None, "call_dst": "101", "trunk": "GSM1"}
    emulator.emit("startup")
    emulator.emit("incoming_call", withheld)
    await wait_for_state(hass, CALL_STATE, "ringing")
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    fired = await set_up_again(hass, setup_entry)
    ringing = await wait_for_state(hass, CALL_STATE, "ringing", timeout=5)
    assert ringing.attributes["caller"] is None
    assert kinds(fired) == [("incoming_call", "7", True)]
