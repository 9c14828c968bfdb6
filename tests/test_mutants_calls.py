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
from custom_components.sprecord.calls import Call, CallState, CallTracker

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
