"""Where the stream resumes while calls are in progress, and what it saves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.sprecord.dedupe import event_digest
from custom_components.sprecord.journal import JOURNAL_SIZE, StreamJournal
from custom_components.sprecord.resume import (
    MAX_SAVED_EVENTS,
    RESUME_HANDLED,
    Resent,
    ResumePosition,
    StreamPosition,
)
from custom_components.sprecord.storage import _resume

from .test_replay import OTHER, PBX, end, ev, start

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def fed(*events: Any, base: str | None = "0") -> StreamJournal:
    """Return a journal that saw `events`, with ids 1, 2, … after `base`."""
    journal = StreamJournal(base)
    for number, event in enumerate(events, start=1):
        journal.record(str(number), event)
    return journal


def pair(event_id: str, event: Any) -> tuple[str, str]:
    return (event_id, event_digest(event))


def sms(text: str) -> Any:
    return ev("incoming_sms", sms_src="+79161234567", text=text, trunk="GSM1")


def test_nothing_in_progress_holds_nothing_back() -> None:
    journal = fed(start(1), end(1))
    assert journal.hold_back([], RESUME_HANDLED) is None
    assert journal.hold_back([(PBX, "1")], RESUME_HANDLED) is None  # ended


def test_the_resume_goes_back_to_before_the_oldest_call_in_progress() -> None:
    events = [sms("a"), start(1), sms("b"), start(2, OTHER), end(2, OTHER)]
    events += [ev("start_talk", call_id=1, call_src="+79161234567"), start(3)]
    journal = fed(*events)
    hold = journal.hold_back([(PBX, "1"), (PBX, "3")], RESUME_HANDLED)
    assert hold is not None
    assert hold.event_id == "1"  # the SMS before call 1
    assert hold.before == [pair("1", events[0])]
    assert hold.again == [pair(str(n), events[n - 1]) for n in (2, 6, 7)]
    assert hold.after == [pair(str(n), events[n - 1]) for n in (3, 4, 5)]


def test_an_id_used_before_by_an_ended_call_or_before_a_startup_is_another_call() -> (
    None
):
    events = [start(1), end(1), sms("a"), start(1)]
    hold = fed(*events).hold_back([(PBX, "1")], RESUME_HANDLED)
    assert hold is not None
    assert hold.event_id == "3"
    assert hold.again == [pair("4", events[3])]
    events = [start(5), start(5, OTHER), ev("startup"), start(5)]
    hold = fed(*events).hold_back([(PBX, "5"), (OTHER, "5")], RESUME_HANDLED)
    assert hold is not None
    assert hold.event_id == "1"  # the other PBX's call 5 is older
    assert hold.again == [pair("2", events[1]), pair("4", events[3])]
    assert hold.after == [pair("3", events[2])]


def test_a_call_that_began_first_of_all_goes_back_to_the_base() -> None:
    assert fed(start(1)).hold_back([(PBX, "1")], 1) is not None
    hold = fed(start(1)).hold_back([(PBX, "1")], 1)
    assert hold is not None
    assert (hold.event_id, hold.before) == ("0", [])
    # No id before it (the stream never had one): nowhere to go back to.
    assert fed(start(1), base=None).hold_back([(PBX, "1")], 1) is None


def test_the_journal_keeps_its_last_events_only() -> None:
    filler = [sms(str(n)) for n in range(JOURNAL_SIZE)]
    journal = fed(start(1), *filler, ev("start_talk", call_id=1))
    assert len(journal) == JOURNAL_SIZE
    hold = journal.hold_back([(PBX, "1")], RESUME_HANDLED)
    assert hold is not None
    # Its start is gone: it goes back to its talk, the last event.
    assert hold.event_id == str(JOURNAL_SIZE + 1)
    assert [event_id for event_id, _ in hold.again] == [str(JOURNAL_SIZE + 2)]
    assert len(hold.before) == RESUME_HANDLED
    assert journal.last(2) == [pair(str(JOURNAL_SIZE + 1), filler[-1]), hold.again[0]]


def position_with(*events: Any, active: list[tuple[str, str]]) -> StreamPosition:
    position = StreamPosition(ResumePosition("0", T0, handled=(("0", "f" * 16),)))
    position.opened()
    position.active_calls = lambda: active
    for number, event in enumerate(events, start=1):
        position.handled(str(number), at(number), event)
    return position


def test_the_saved_position_is_held_back_while_a_call_is_in_progress() -> None:
    events = [sms("a"), start(1), sms("b")]
    position = position_with(*events, active=[(PBX, "1")])
    saved = position.saved(at(10))
    assert saved == ResumePosition(
        "1",
        at(3),  # when the last event handled came
        at(10),
        (("0", "f" * 16), pair("1", events[0]), pair("3", events[2])),
        (pair("2", events[1]),),
        latest="3",
    )
    position.active_calls = list
    assert position.saved(at(10)) == ResumePosition(
        "3",
        at(3),
        at(10),
        (("0", "f" * 16), *(pair(str(n), e) for n, e in enumerate(events, 1))),
    )


def test_a_held_back_position_is_saved_as_it_was_until_the_stream_moves() -> None:
    saved = ResumePosition(
        "1", at(1), at(5), (pair("3", sms("b")),), (pair("2", start(1)),), "3"
    )
    position = StreamPosition(saved)
    assert position.probing
    assert position.event_id == "1"
    assert position.expected("2", start(1))
    assert position.expected("3", sms("b"))
    assert not position.expected("4", sms("b"))
    assert not position.expected("2", sms("b"))
    assert position.saved(at(9)) == saved
    position.opened()
    # Open but unproven: what it missed has not come yet, `seen` stays.
    assert position.saved(at(9)) == saved
    position.fall_back()  # the server did not go back: from the latest
    assert not position.probing
    assert position.event_id == "3"
    # The calls' events count as handled now: none is shown again.
    assert position.saved(at(9)) == ResumePosition(
        "3", at(1), at(9), (*saved.handled, *saved.again)
    )
    # From there, the call's events too were handled: none is shown again.
    assert position.resent("2", start(1)) is Resent.HANDLED
    position.fall_back()  # once only
    assert position.event_id == "3"


def test_a_confirmed_resume_goes_on_from_the_held_back_position() -> None:
    ringing = start(1)
    saved = ResumePosition(
        "1", at(1), at(5), (pair("3", sms("b")),), (pair("2", ringing),), "3"
    )
    position = StreamPosition(saved)
    position.active_calls = lambda: [(PBX, "1")]
    position.opened()
    position.confirmed()
    assert not position.probing
    assert position.resent("2", ringing) is Resent.AGAIN
    assert position.sent_again(ringing)
    assert not position.sent_again(ringing)  # told once
    position.handled("2", at(20), ringing)  # rings again
    assert position.resent("3", sms("b")) is Resent.HANDLED
    position.passed("3", sms("b"))
    held = position.saved(at(30))
    assert held is not None
    assert (held.event_id, held.latest, held.again) == ("1", "3", saved.again)
    assert held.handled == saved.handled
    # A stream that merely goes past an id (no event) moves the position.
    position.passed("4")
    assert position.event_id == "4"
    assert (held := position.saved(at(31))) is not None
    assert held.time == at(20)


def test_handled_events_saved_are_bounded() -> None:
    events = [sms(str(n)) for n in range(3 * JOURNAL_SIZE)]
    position = position_with(start(1), *events, active=[(PBX, "1")])
    saved = position.saved(at(1))
    assert saved is not None
    assert saved.again == ()  # its start left the journal long ago
    assert len(saved.handled) == RESUME_HANDLED
    held = position_with(*events[:40], start(1), *events[:40], active=[(PBX, "1")])
    saved = held.saved(at(1))
    assert saved is not None
    assert len(saved.handled) <= MAX_SAVED_EVENTS
    assert saved.event_id == "40"


def test_a_held_back_position_is_read_back_from_storage() -> None:
    digest = "0123456789abcdef"
    stored: dict[str, Any] = {
        "event_id": "1",
        "time": at(1).isoformat(),
        "handled": [["3", digest]] * 2 + [["x", "short"]],
        "again": [["2", digest], ["", digest]],
        "latest": "3",
    }
    position = _resume(stored, at(2), None)
    assert position == ResumePosition(
        "1", at(1), None, (("3", digest), ("3", digest)), (("2", digest),), "3"
    )
    # Half of it (no latest, or nothing to send again) is taken as not held.
    for broken in ({"latest": 7}, {"again": []}, {"latest": "\x00"}):
        position = _resume({**stored, **broken}, at(2), None)
        assert position is not None
        assert (position.again, position.latest) == ((), None)


def test_what_a_server_sends_again_is_recognised_until_news() -> None:
    ringing, news = start(1), sms("news")
    handled = (pair("1", sms("a")), pair("3", sms("b")))
    saved = ResumePosition("1", at(1), None, handled, (pair("2", ringing),), "3")
    position = StreamPosition(saved)
    # Sent again in order, each once; another event under a known id is news.
    assert position.resent("1", sms("a")) is Resent.HANDLED
    # A stream that drops sends them once more: still recognised.
    assert position.resent("1", sms("a")) is Resent.HANDLED
    assert position.resent("1", sms("other")) is None  # news under its id
    assert position.resent("3", sms("b")) is None  # the news ended the resend
    position = StreamPosition(saved)
    assert position.resent("2", ringing) is Resent.AGAIN
    assert position.resent("3", sms("b")) is Resent.HANDLED
    assert position.resent("4", news) is None
    # All sent again, then the stream drops before news: a new stream that
    # starts over is still recognised.
    position = StreamPosition(saved)
    for event_id, event in (("2", ringing), ("3", sms("b")), ("1", sms("a"))):
        assert position.resent(event_id, event) is not None
    assert position.resent("2", ringing) is Resent.HANDLED
    assert position.resent("4", news) is None
    assert position.resent("2", ringing) is None  # after news, nothing is
    assert not position.sent_again(news)
    # Nothing saved, nothing to recognise (and no digest to make).
    assert StreamPosition(None).resent("1", news) is None
