"""Call tracker behaviour that mutation testing (scripts/mutate) found untested.

The suite's other tests use the module's constants, so a changed constant
went unnoticed: these pin the documented numbers (README, "Options": a call
is over after 180 minutes, one that rings or dials after 10) and the names
the call list shows, with literal values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.sprecord.api import SpRecordEvent, parse_event
from custom_components.sprecord.calls import (
    Call,
    CallChange,
    CallState,
    CallTracker,
    Direction,
    saved_expired_call,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """Return a moment `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def event(event_type: str, **payload: Any) -> SpRecordEvent:
    """Parse an event as the stream delivers it."""
    return parse_event(
        {"device_id": "pbx-1", "event_type": event_type, "payload": payload}
    )


def test_a_ringing_or_dialing_call_is_over_after_ten_minutes() -> None:
    for kind in ("incoming_call", "outgoing_call"):
        tracker = CallTracker()
        tracker.apply(event(kind, call_id=1, trunk="GSM1"), at(0))
        assert tracker.next_expiry() == at(600)
        assert tracker.expire(at(599)) == []
        assert [c.call_id for c in tracker.expire(at(600))] == ["1"]


def test_a_talking_call_is_over_after_180_minutes() -> None:
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1), at(0))
    tracker.apply(event("start_talk", call_id=1), at(60))
    assert tracker.expire(at(60 + 180 * 60 - 1)) == []
    assert [c.call_id for c in tracker.expire(at(60 + 180 * 60))] == ["1"]


def test_an_end_repeated_within_a_minute_is_ignored_later_it_is_new() -> None:
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1), at(0))
    tracker.apply(event("call_end", call_id=1, status="success"), at(10))
    assert tracker.apply(event("call_end", call_id=1, status="busy"), at(70)) is None
    later = tracker.apply(event("call_end", call_id=1, status="busy"), at(71))
    assert later is not None
    assert later.ended


def test_a_finished_call_is_remembered_for_an_hour() -> None:
    # The late end of a call that expired still completes it within the hour.
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1, call_src="+7001"), at(0))
    tracker.expire(at(600))
    change = tracker.apply(event("call_end", call_id=1, status="no_answer"), at(3599))
    assert change is not None
    assert change.call.caller == "+7001"
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1, call_src="+7001"), at(0))
    tracker.expire(at(600))
    change = tracker.apply(event("call_end", call_id=1, status="no_answer"), at(4201))
    assert change is not None
    assert change.call.caller is None  # forgotten: a call whose start was not seen


def test_at_most_32_calls_are_open_and_64_lines_named() -> None:
    tracker = CallTracker()
    for n in range(33):
        tracker.apply(event("incoming_call", call_id=n, trunk=f"GSM{n}"), at(n))
    assert len(tracker.active) == 32
    assert "0" not in tracker.active
    for n in range(33, 70):
        tracker.apply(event("incoming_call", call_id=n, trunk=f"GSM{n}"), at(n))
    assert len(tracker.lines) == 64


def test_at_most_256_finished_calls_are_remembered() -> None:
    tracker = CallTracker()
    for n in range(257):
        tracker.apply(event("call_end", call_id=n, status="success"), at(n))
    assert len(tracker._finished) == 256
    assert "0" not in tracker._finished


def test_the_call_list_shows_states_directions_and_names_as_saved() -> None:
    tracker = CallTracker()
    dialing = tracker.apply(event("outgoing_call", call_id=1), at(0))
    assert dialing is not None
    assert tracker.state == CallState.DIALING == "dialing"
    ended = tracker.apply(event("call_end", call_id=2, status="busy"), at(1))
    assert ended is not None
    call = ended.call
    call.caller_name, call.called_name = "Anna", "Office"
    saved = call.as_dict()
    assert saved["direction"] == "unknown"
    assert (saved["caller_name"], saved["called_name"]) == ("Anna", "Office")
    restored = Call.from_dict(saved)
    assert (restored.caller_name, restored.called_name) == ("Anna", "Office")


def test_the_states_read_as_home_assistant_shows_them() -> None:
    tracker = CallTracker()
    assert tracker.state == "idle"
    tracker.apply(event("incoming_call", call_id=1, trunk="GSM1"), at(0))
    assert tracker.state == "ringing"
    tracker.apply(event("start_talk", call_id=1), at(5))
    assert tracker.state == tracker.line_state("GSM1") == "talking"
    assert tracker.line_state("GSM2") == "idle"


def applied(tracker: CallTracker, ev: SpRecordEvent, now: datetime) -> CallChange:
    """Apply an event that must change something; return the change."""
    change = tracker.apply(ev, now)
    assert change is not None
    return change


def saved_form(tracker: CallTracker) -> list[dict[str, Any]]:
    """Return the expired calls as Home Assistant saves them."""
    return [call.as_dict() for call in tracker.expired_calls()]


def restarted(saved: list[dict[str, Any]]) -> CallTracker:
    """Return a new tracker that took back the saved expired calls."""
    tracker = CallTracker()
    tracker.recall_expired(
        call for data in saved if (call := saved_expired_call(data)) is not None
    )
    return tracker


def test_only_the_late_end_of_an_expired_call_completes_it() -> None:
    # The call list completes an entry in place only for the end of a call
    # listed when it expired; any other event is news of a call of its own.
    tracker = CallTracker()
    changes = [
        applied(tracker, event("incoming_call", call_id=1, trunk="GSM1"), at(0)),
        applied(tracker, event("answer_elsewhere", call_id=1, number="102"), at(1)),
        applied(tracker, event("outgoing_call", call_id=2), at(2)),
    ]
    assert [c.call_id for c in tracker.expire(at(602))] == ["1", "2"]
    # Call 1's id again, past the late-event minute: a new call.
    changes.append(applied(tracker, event("start_talk", call_id=1), at(700)))
    assert [c.completes_expired for c in changes] == [False] * 4
    late = applied(tracker, event("call_end", call_id=2, status="busy"), at(800))
    assert late.completes_expired


def test_calls_taken_back_are_kept_in_the_order_they_expired() -> None:
    # Call 1 started first but talked, so it expired after call 2, which only
    # rang. After a restart the memory still forgets call 2 first: its late
    # end past the hour is a call of its own, while call 1's completes it.
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1, call_src="+7001"), at(0))
    tracker.apply(event("start_talk", call_id=1), at(5))
    tracker.apply(event("incoming_call", call_id=2, call_src="+7002"), at(8405))
    assert [c.call_id for c in tracker.expire(at(9005))] == ["2"]
    assert [c.call_id for c in tracker.expire(at(10805))] == ["1"]
    again = restarted(saved_form(tracker))
    assert [c["call_id"] for c in saved_form(again)] == ["2", "1"]
    past = applied(again, event("call_end", call_id=2, status="busy"), at(12606))
    assert not past.completes_expired
    assert (past.call.direction, past.call.caller) == (Direction.UNKNOWN, None)
    late = applied(again, event("call_end", call_id=1, status="success"), at(12607))
    assert late.completes_expired
    assert late.call.caller == "+7001"


def test_calls_rebuilt_from_their_saved_form_are_taken_back_as_expired() -> None:
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1, call_src="+7001"), at(0))
    tracker.expire(at(600))
    saved = saved_form(tracker)
    again = CallTracker()
    again.recall_expired(Call.from_dict(data) for data in saved)
    assert saved_form(again) == saved  # saved again if HA restarts once more
    change = applied(again, event("call_end", call_id=1, status="no_answer"), at(900))
    assert change.completes_expired
    assert (change.call.caller, change.missed) == ("+7001", True)


def test_the_line_and_answering_extension_of_a_saved_call_are_read_cleaned() -> None:
    # What comes back from storage is listed as the stream's own fields are:
    # no bidi or zero-width characters, at most 64 characters, text only.
    tracker = CallTracker()
    tracker.apply(event("incoming_call", call_id=1, trunk="GSM1"), at(0))
    tracker.apply(event("answer_elsewhere", call_id=1, number="102"), at(1))
    tracker.expire(at(601))
    [saved] = saved_form(tracker)
    dirty = {**saved, "line": "GSM\u202e1", "answered_by": "10\u200b2"}
    end = event("call_end", call_id=1, status="no_answer")
    listed = applied(restarted([dirty]), end, at(700)).call.as_dict()
    assert (listed["line"], listed["answered_by"]) == ("GSM1", "102")
    odd = {**saved, "line": "L" * 70, "answered_by": 102}
    listed = applied(restarted([odd]), end, at(700)).call.as_dict()
    assert (listed["line"], listed["answered_by"]) == ("L" * 63 + "\u2026", None)
