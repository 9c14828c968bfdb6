"""The call tracker: calls through their states, lines, expiry and bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.sprecord.api import (
    AnswerElsewhereEvent,
    CallEndEvent,
    IncomingCallEvent,
    RecordCallStatus,
    SpRecordEvent,
    StartTalkEvent,
    parse_event,
)
from custom_components.sprecord.calls import (
    DEFAULT_CALL_TIMEOUT,
    FINISHED_CALL_MEMORY,
    LATE_EVENT_WINDOW,
    MAX_ACTIVE_CALLS,
    MAX_FINISHED_CALLS,
    MAX_LINES,
    MAX_SAVED_EXPIRED,
    RING_TIMEOUT,
    Call,
    CallChange,
    CallState,
    CallTracker,
    Direction,
    saved_expired_call,
)

DEVICE = "pbx-1"
CALLER = "+79161234567"
EXTENSION = "101"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float = 0) -> datetime:
    """Return a moment `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def event(event_type: str, payload: Any) -> SpRecordEvent:
    """Parse an event envelope as the stream would deliver it."""
    return parse_event(
        {"device_id": DEVICE, "event_type": event_type, "payload": payload}
    )


def call_payload(
    call_id: int | str, trunk: str, src: str, dst: str
) -> dict[str, object]:
    """Return the payload of a call event."""
    return {"call_id": call_id, "call_src": src, "call_dst": dst, "trunk": trunk}


def incoming(
    call_id: int | str = "1",
    trunk: str = "GSM1",
    src: str = CALLER,
    dst: str = EXTENSION,
) -> SpRecordEvent:
    return event("incoming_call", call_payload(call_id, trunk, src, dst))


def outgoing(
    call_id: int | str = "1",
    trunk: str = "GSM1",
    src: str = EXTENSION,
    dst: str = CALLER,
) -> SpRecordEvent:
    return event("outgoing_call", call_payload(call_id, trunk, src, dst))


def talk(
    call_id: int | str = "1",
    trunk: str = "GSM1",
    src: str = CALLER,
    dst: str = EXTENSION,
) -> SpRecordEvent:
    return event("start_talk", call_payload(call_id, trunk, src, dst))


def end(
    call_id: int | str = "1",
    status: str = "success",
    duration: int | None = None,
    record_id: int | None = None,
) -> SpRecordEvent:
    return event(
        "call_end",
        {
            "call_id": call_id,
            "status": status,
            "duration": duration,
            "record_id": record_id,
        },
    )


def elsewhere(call_id: int | str = "1", number: str = "102") -> SpRecordEvent:
    return event("answer_elsewhere", {"call_id": call_id, "number": number})


def applied(tracker: CallTracker, ev: SpRecordEvent, now: datetime) -> CallChange:
    """Apply an event that must change something; return the change."""
    change = tracker.apply(ev, now)
    assert change is not None
    return change


# --- one call through its states ---------------------------------------------


def test_new_tracker_is_idle_with_nothing_recorded() -> None:
    tracker = CallTracker()
    assert tracker.state is CallState.IDLE
    assert tracker.current is None
    assert tracker.active == {}
    assert tracker.last_call is None
    assert tracker.last_missed is None
    assert tracker.missed_count == 0
    assert tracker.lines == {}
    assert tracker.next_expiry() is None
    assert tracker.call_timeout == DEFAULT_CALL_TIMEOUT
    assert tracker.ring_timeout == RING_TIMEOUT


def test_incoming_call_rings_with_caller_called_and_line() -> None:
    tracker = CallTracker()
    change = applied(tracker, incoming("8"), at(0))
    call = change.call
    assert call.call_id == "8"
    assert call.direction is Direction.INCOMING
    assert call.state is CallState.RINGING
    assert call.caller == CALLER
    assert call.called == EXTENSION
    assert call.trunk == "GSM1"
    assert call.started == at(0)
    assert call.updated == at(0)
    assert call.answered is None
    assert call.ended is None
    assert not change.ended
    assert not change.missed
    assert tracker.state is CallState.RINGING
    assert tracker.current is call
    assert tracker.active == {"8": call}


def test_outgoing_call_dials() -> None:
    tracker = CallTracker()
    call = applied(tracker, outgoing("3"), at(0)).call
    assert call.direction is Direction.OUTGOING
    assert call.state is CallState.DIALING
    assert call.caller == EXTENSION
    assert call.called == CALLER
    assert tracker.state is CallState.DIALING


def test_start_talk_moves_a_ringing_call_to_talking_and_sets_answered() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    change = applied(tracker, talk("8"), at(5))
    call = change.call
    assert call.state is CallState.TALKING
    assert call.direction is Direction.INCOMING
    assert call.started == at(0)
    assert call.answered == at(5)
    assert call.updated == at(5)
    assert tracker.state is CallState.TALKING
    assert not change.ended


def test_start_talk_moves_a_dialing_call_to_talking() -> None:
    tracker = CallTracker()
    applied(tracker, outgoing("4"), at(0))
    call = applied(tracker, talk("4", src=EXTENSION, dst=CALLER), at(7)).call
    assert call.direction is Direction.OUTGOING
    assert call.state is CallState.TALKING
    assert call.answered == at(7)


def test_repeated_start_talk_keeps_the_first_answered_time() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, talk("8"), at(5))
    call = applied(tracker, talk("8"), at(9)).call
    assert call.state is CallState.TALKING
    assert call.answered == at(5)
    assert call.updated == at(9)


def test_repeated_incoming_call_does_not_take_a_talking_call_back_to_ringing() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, talk("8"), at(5))
    call = applied(tracker, incoming("8"), at(6)).call
    assert call.state is CallState.TALKING
    assert call.answered == at(5)


def test_later_event_with_empty_fields_keeps_the_known_parties_and_line() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, talk("8", trunk="", src="", dst=""), at(5)).call
    assert call.caller == CALLER
    assert call.called == EXTENSION
    assert call.trunk == "GSM1"
    assert call.state is CallState.TALKING


def test_later_event_with_new_fields_updates_the_parties_and_line() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, talk("8", trunk="GSM2", src="+7000", dst="102"), at(5)).call
    assert call.caller == "+7000"
    assert call.called == "102"
    assert call.trunk == "GSM2"
    assert tracker.line_call("GSM2") is call
    assert tracker.line_call("GSM1") is None


def test_call_end_finishes_the_call_and_records_it_as_last_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, talk("8"), at(5))
    change = applied(tracker, end("8", "success", duration=42, record_id=8), at(47))
    call = change.call
    assert change.ended
    assert not change.missed
    assert change.new_line is None
    assert call.state is CallState.IDLE
    assert call.status is RecordCallStatus.SUCCESS
    assert call.duration == 42
    assert call.record_id == 8
    assert call.ended == at(47)
    assert call.answered == at(5)
    assert not call.expired
    assert tracker.active == {}
    assert tracker.current is None
    assert tracker.state is CallState.IDLE
    assert tracker.last_call is call
    assert tracker.missed_count == 0
    assert tracker.last_missed is None
    assert tracker.next_expiry() is None
    assert tracker._finished["8"] is call


def test_call_end_accepts_a_recording_id_and_duration_sent_as_text() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(
        tracker,
        event(
            "call_end",
            {"call_id": "8", "record_id": "77", "duration": "13", "status": "success"},
        ),
        at(13),
    ).call
    assert call.record_id == 77
    assert call.duration == 13


def test_call_end_without_duration_or_recording_leaves_them_none() -> None:
    tracker = CallTracker()
    applied(tracker, outgoing("5"), at(0))
    call = applied(tracker, end("5", "error"), at(1)).call
    assert call.status is RecordCallStatus.ERROR
    assert call.duration is None
    assert call.record_id is None


def test_numeric_call_id_at_start_matches_text_call_id_at_end() -> None:
    tracker = CallTracker()
    applied(tracker, incoming(8), at(0))
    assert list(tracker.active) == ["8"]
    applied(tracker, talk(8), at(3))
    change = applied(tracker, end("8", "success", duration=10), at(13))
    assert change.call.direction is Direction.INCOMING
    assert change.call.answered == at(3)
    assert tracker.active == {}
    assert tracker.state is CallState.IDLE


def test_text_call_id_at_start_matches_numeric_call_id_at_end() -> None:
    tracker = CallTracker()
    applied(tracker, outgoing("9"), at(0))
    change = applied(tracker, end(9, "no_answer"), at(30))
    assert change.call.direction is Direction.OUTGOING
    assert tracker.active == {}


def test_events_built_as_dataclasses_drive_the_tracker() -> None:
    tracker = CallTracker()
    start = IncomingCallEvent(
        device_id=DEVICE, call_id="2", call_src=CALLER, call_dst="101", trunk="GSM1"
    )
    answer = StartTalkEvent(
        device_id=DEVICE, call_id="2", call_src=CALLER, call_dst="101", trunk="GSM1"
    )
    stop = CallEndEvent(
        device_id=DEVICE,
        call_id="2",
        status=RecordCallStatus.SUCCESS,
        duration=3,
        record_id=1,
    )
    applied(tracker, start, at(0))
    answered_elsewhere = AnswerElsewhereEvent(
        device_id=DEVICE, call_id="2", number="103"
    )
    applied(tracker, answered_elsewhere, at(1))
    applied(tracker, answer, at(2))
    call = applied(tracker, stop, at(5)).call
    assert call.answered_by == "103"
    assert call.duration == 3
    assert tracker.last_call is call


@pytest.mark.parametrize(
    "ev",
    [
        pytest.param(event("startup", {}), id="startup"),
        pytest.param(
            event(
                "incoming_sms",
                {"sms_src": CALLER, "text": "hi", "trunk": "GSM1", "date": None},
            ),
            id="incoming_sms",
        ),
        pytest.param(event("brand_new_event", {"call_id": "1"}), id="unknown"),
        pytest.param(event("verification", "abc"), id="verification"),
    ],
)
def test_events_that_are_not_about_calls_change_nothing(ev: SpRecordEvent) -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    assert tracker.apply(ev, at(1)) is None
    assert tracker.state is CallState.RINGING
    assert tracker.active["1"].updated == at(0)
    assert tracker.lines == {"GSM1": None}


# --- several calls at once ---------------------------------------------------


def test_overlapping_calls_on_two_lines_keep_the_pbx_busy_until_both_end() -> None:
    tracker = CallTracker()
    first = applied(tracker, incoming("1", trunk="GSM1"), at(0)).call
    applied(tracker, talk("1", trunk="GSM1"), at(2))
    assert tracker.state is CallState.TALKING

    second = applied(tracker, incoming("2", trunk="GSM2", src="+7111"), at(5)).call
    assert tracker.current is second
    assert tracker.state is CallState.RINGING
    assert list(tracker.active) == ["1", "2"]
    assert tracker.line_state("GSM1") is CallState.TALKING
    assert tracker.line_state("GSM2") is CallState.RINGING
    assert tracker.line_call("GSM1") is first
    assert tracker.line_call("GSM2") is second

    applied(tracker, talk("2", trunk="GSM2", src="+7111"), at(8))
    assert tracker.state is CallState.TALKING
    assert tracker.line_state("GSM2") is CallState.TALKING

    applied(tracker, end("2", "success", duration=4), at(12))
    assert tracker.state is CallState.TALKING
    assert tracker.current is first
    assert tracker.line_state("GSM2") is CallState.IDLE
    assert tracker.line_call("GSM2") is None
    assert tracker.line_state("GSM1") is CallState.TALKING
    assert tracker.last_call is second

    applied(tracker, end("1", "success", duration=18), at(20))
    assert tracker.state is CallState.IDLE
    assert tracker.current is None
    assert tracker.line_state("GSM1") is CallState.IDLE
    assert tracker.last_call is first


def test_pbx_state_follows_the_most_recently_started_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, outgoing("2", trunk="GSM2"), at(1))
    assert tracker.state is CallState.DIALING
    # An event on the older call does not make it the current one.
    applied(tracker, talk("1", trunk="GSM1"), at(2))
    assert tracker.current is not None
    assert tracker.current.call_id == "2"
    assert tracker.state is CallState.DIALING
    applied(tracker, end("2", "no_answer"), at(3))
    assert tracker.state is CallState.TALKING


def test_line_shows_its_most_recent_active_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, talk("1", trunk="GSM1"), at(1))
    second = applied(tracker, incoming("2", trunk="GSM1"), at(2)).call
    assert tracker.line_call("GSM1") is second
    assert tracker.line_state("GSM1") is CallState.RINGING
    applied(tracker, end("2", "busy"), at(3))
    assert tracker.line_state("GSM1") is CallState.TALKING


def test_unknown_line_is_idle_without_a_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    assert tracker.line_call("GSM4") is None
    assert tracker.line_state("GSM4") is CallState.IDLE


# --- missed calls ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [("no_answer", RecordCallStatus.NO_ANSWER), ("busy", RecordCallStatus.BUSY)],
)
def test_unanswered_incoming_call_counts_as_missed(
    status: str, expected: RecordCallStatus
) -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    change = applied(tracker, end("8", status, duration=0), at(20))
    assert change.ended
    assert change.missed
    assert change.call.missed
    assert change.call.status is expected
    assert tracker.missed_count == 1
    assert tracker.last_missed is change.call
    assert tracker.last_call is change.call


def test_missed_calls_accumulate_and_last_missed_is_the_latest() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    applied(tracker, end("1", "no_answer"), at(10))
    applied(tracker, incoming("2"), at(20))
    second = applied(tracker, end("2", "busy"), at(25)).call
    applied(tracker, incoming("3"), at(30))
    applied(tracker, talk("3"), at(32))
    answered = applied(tracker, end("3", "success", duration=5), at(37)).call
    assert tracker.missed_count == 2
    assert tracker.last_missed is second
    assert tracker.last_call is answered


@pytest.mark.parametrize("status", ["no_answer", "busy"])
def test_unanswered_outgoing_call_is_not_missed(status: str) -> None:
    tracker = CallTracker()
    applied(tracker, outgoing("8"), at(0))
    change = applied(tracker, end("8", status), at(20))
    assert change.ended
    assert not change.missed
    assert not change.call.missed
    assert tracker.missed_count == 0
    assert tracker.last_missed is None
    assert tracker.last_call is change.call


@pytest.mark.parametrize(
    "status", ["success", "not_def", "overload", "error", "future_status"]
)
def test_incoming_call_ending_otherwise_is_not_missed(status: str) -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    change = applied(tracker, end("8", status), at(20))
    assert change.call.status == status
    assert not change.missed
    assert tracker.missed_count == 0
    assert tracker.last_missed is None


def test_answered_incoming_call_that_ends_success_is_not_missed() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, talk("8"), at(3))
    change = applied(tracker, end("8", "success", duration=30), at(33))
    assert not change.missed
    assert tracker.missed_count == 0


# --- answer_elsewhere --------------------------------------------------------


def test_answer_elsewhere_records_the_extension_on_an_active_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    change = applied(tracker, elsewhere("8", "102"), at(4))
    assert change.call.answered_by == "102"
    assert change.call.updated == at(4)
    assert change.call.state is CallState.RINGING
    assert not change.ended
    assert not change.missed
    assert change.new_line is None
    assert tracker.state is CallState.RINGING


def test_answer_elsewhere_with_numeric_call_id_matches() -> None:
    tracker = CallTracker()
    applied(tracker, incoming(8), at(0))
    assert applied(tracker, elsewhere(8, "103"), at(1)).call.answered_by == "103"


def test_answer_elsewhere_for_an_unknown_call_is_ignored() -> None:
    tracker = CallTracker()
    assert tracker.apply(elsewhere("99", "102"), at(0)) is None
    assert tracker.active == {}
    assert tracker.state is CallState.IDLE


def test_answer_elsewhere_for_an_ended_call_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, end("8", "success"), at(5)).call
    assert tracker.apply(elsewhere("8", "102"), at(6)) is None
    assert call.answered_by is None


def test_answered_by_is_kept_when_the_call_ends() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, elsewhere("8", "102"), at(2))
    applied(tracker, talk("8"), at(3))
    call = applied(tracker, end("8", "success", duration=9), at(12)).call
    assert call.answered_by == "102"
    assert tracker.last_call is call
    assert call.as_dict()["answered_by"] == "102"


# --- starts and ends that were not seen --------------------------------------


def test_start_talk_without_a_seen_start_creates_a_talking_call() -> None:
    tracker = CallTracker()
    change = applied(tracker, talk("5", trunk="GSM2"), at(0))
    call = change.call
    assert call.direction is Direction.UNKNOWN
    assert call.state is CallState.TALKING
    assert call.started == at(0)
    assert call.caller == CALLER
    assert call.trunk == "GSM2"
    assert change.new_line == "GSM2"
    assert tracker.state is CallState.TALKING
    assert tracker.line_state("GSM2") is CallState.TALKING


def test_start_talk_without_a_seen_start_sets_answered() -> None:
    tracker = CallTracker()
    call = applied(tracker, talk("5"), at(3)).call
    assert call.answered == at(3)


def test_start_talk_without_a_seen_start_then_end_is_not_missed() -> None:
    tracker = CallTracker()
    applied(tracker, talk("5"), at(0))
    change = applied(tracker, end("5", "no_answer"), at(10))
    assert change.call.direction is Direction.UNKNOWN
    assert not change.missed
    assert tracker.missed_count == 0


def test_call_end_for_an_unknown_call_records_a_finished_call() -> None:
    tracker = CallTracker()
    change = applied(tracker, end("77", "success", duration=12, record_id=3), at(50))
    call = change.call
    assert change.ended
    assert not change.missed
    assert call.call_id == "77"
    assert call.direction is Direction.UNKNOWN
    assert call.state is CallState.IDLE
    assert call.started == at(50)
    assert call.ended == at(50)
    assert call.caller is None
    assert call.called is None
    assert call.trunk is None
    assert call.answered is None
    assert call.status is RecordCallStatus.SUCCESS
    assert call.duration == 12
    assert call.record_id == 3
    assert not call.expired
    assert tracker.last_call is call
    assert tracker.active == {}
    assert tracker.state is CallState.IDLE
    assert tracker.lines == {}


@pytest.mark.parametrize("status", ["no_answer", "busy"])
def test_call_end_for_an_unknown_call_is_not_counted_as_missed(status: str) -> None:
    tracker = CallTracker()
    change = applied(tracker, end("77", status), at(0))
    assert not change.missed
    assert not change.call.missed
    assert tracker.missed_count == 0
    assert tracker.last_missed is None


# --- late and repeated events ------------------------------------------------


def test_repeated_call_end_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, talk("8"), at(2))
    first = applied(tracker, end("8", "success", duration=8, record_id=1), at(10)).call
    assert tracker.apply(end("8", "error", duration=99, record_id=2), at(11)) is None
    assert first.status is RecordCallStatus.SUCCESS
    assert first.duration == 8
    assert first.record_id == 1
    assert first.ended == at(10)
    assert tracker.last_call is first


def test_repeated_call_end_of_a_missed_call_is_not_counted_twice() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    missed = applied(tracker, end("8", "no_answer"), at(20)).call
    assert tracker.apply(end("8", "no_answer"), at(21)) is None
    assert tracker.apply(end(8, "busy"), at(22)) is None
    assert tracker.missed_count == 1
    assert tracker.last_missed is missed


def test_repeated_call_end_of_an_unknown_call_is_ignored() -> None:
    tracker = CallTracker()
    first = applied(tracker, end("77", "success"), at(0)).call
    assert tracker.apply(end("77", "success"), at(1)) is None
    assert tracker.last_call is first


def test_repeated_call_end_does_not_replace_a_newer_last_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    applied(tracker, end("1", "success"), at(5))
    applied(tracker, incoming("2"), at(6))
    second = applied(tracker, end("2", "success"), at(9)).call
    assert tracker.apply(end("1", "success"), at(10)) is None
    assert tracker.last_call is second


@pytest.mark.parametrize(
    "late",
    [
        pytest.param(incoming("8"), id="incoming_call"),
        pytest.param(outgoing("8"), id="outgoing_call"),
        pytest.param(talk("8"), id="start_talk"),
        pytest.param(talk(8), id="start_talk_numeric_id"),
    ],
)
def test_late_call_event_after_the_end_is_ignored(late: SpRecordEvent) -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, end("8", "no_answer"), at(20)).call
    assert tracker.apply(late, at(21)) is None
    assert tracker.active == {}
    assert tracker.state is CallState.IDLE
    assert call.state is CallState.IDLE
    assert call.answered is None


def test_late_start_talk_after_an_unknown_call_ended_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, end("77", "success"), at(0))
    assert tracker.apply(talk("77"), at(1)) is None
    assert tracker.state is CallState.IDLE


# --- a reused call id is a new call (issue 10) ----------------------------------

AFTER_WINDOW = LATE_EVENT_WINDOW + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("start", "state"),
    [(incoming, CallState.RINGING), (outgoing, CallState.DIALING)],
)
def test_call_start_with_the_id_of_a_call_over_a_while_ago_is_a_new_call(
    start: Callable[..., SpRecordEvent], state: CallState
) -> None:
    # A PBX that restarted unseen counts its call ids from 1 again.
    tracker = CallTracker()
    applied(tracker, start("1"), at(0))
    first = applied(tracker, end("1", "no_answer"), at(10)).call
    first_caller = first.caller
    later = at(10) + AFTER_WINDOW
    change = applied(tracker, start("1", src="+70000000002"), later)
    call = change.call
    assert call is not first
    assert call.state is state
    assert call.caller == "+70000000002"
    assert call.started == later
    assert tracker.active == {"1": call}
    assert tracker.state is state
    assert tracker.last_call is first  # the old call's record stays
    assert first.caller == first_caller
    assert first.state is CallState.IDLE


def test_new_call_with_a_reused_id_is_missed_again() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    applied(tracker, end("1", "no_answer"), at(10))
    second = applied(tracker, incoming("1", src="+7002"), at(10) + AFTER_WINDOW).call
    change = applied(tracker, end("1", "no_answer"), at(20) + AFTER_WINDOW)
    assert change.call is second
    assert change.missed
    assert tracker.missed_count == 2
    assert tracker.last_missed is second
    assert tracker._finished["1"] is second


def test_call_start_within_the_window_is_still_late() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    applied(tracker, end("1"), at(10))
    assert tracker.apply(incoming("1"), at(10) + LATE_EVENT_WINDOW) is None
    assert tracker.apply(outgoing("1"), at(10) + LATE_EVENT_WINDOW) is None
    assert tracker.state is CallState.IDLE


def test_call_end_before_its_start_leaves_the_line_idle() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, end("1"), at(1))
    applied(tracker, end("5", "no_answer"), at(2))
    assert tracker.apply(incoming("5", trunk="GSM1"), at(50)) is None
    assert tracker.line_state("GSM1") is CallState.IDLE
    assert tracker.state is CallState.IDLE
    assert tracker.missed_count == 0


def test_start_talk_with_the_id_of_a_call_over_a_while_ago_is_a_new_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    applied(tracker, end("1"), at(10))
    call = applied(tracker, talk("1"), at(10) + AFTER_WINDOW).call
    assert call.state is CallState.TALKING
    assert call.direction is Direction.UNKNOWN  # its start was not seen
    assert call.answered == at(10) + AFTER_WINDOW


def test_call_end_with_the_id_of_a_call_over_a_while_ago_ends_a_new_call() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1"), at(0))
    first = applied(tracker, end("1", "success"), at(10)).call
    assert tracker.apply(end("1", "busy"), at(10) + LATE_EVENT_WINDOW) is None
    change = applied(tracker, end("1", "busy", duration=4), at(10) + AFTER_WINDOW)
    assert change.call is not first
    assert not change.completes_expired  # the first one ended: a new call
    assert change.call.direction is Direction.UNKNOWN
    assert change.call.status is RecordCallStatus.BUSY
    assert first.status is RecordCallStatus.SUCCESS
    assert tracker.last_call is change.call


def test_late_end_of_an_expired_call_completes_it_after_the_window() -> None:
    tracker = CallTracker()
    call = applied(tracker, incoming("8"), at(0)).call
    tracker.expire(at(0) + RING_TIMEOUT)
    late = at(0) + RING_TIMEOUT + timedelta(minutes=30)
    change = applied(tracker, end("8", "no_answer"), late)
    assert change.call is call
    assert change.missed
    assert change.completes_expired  # listed when it expired: not again
    assert call.caller == CALLER


def test_finished_calls_are_forgotten_after_their_memory() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("a"), at(0))
    expired = tracker.expire(at(0) + RING_TIMEOUT)
    applied(tracker, end("b"), at(1000))
    assert list(tracker._finished) == ["a", "b"]
    when = at(0) + RING_TIMEOUT + FINISHED_CALL_MEMORY + timedelta(seconds=1)
    change = applied(tracker, end("a", "no_answer"), when)
    assert change.call is not expired[0]  # forgotten: a call whose start is unseen
    assert change.call.direction is Direction.UNKNOWN
    assert not change.missed
    assert not change.completes_expired  # a call of its own, listed once
    assert list(tracker._finished) == ["b", "a"]
    tracker.apply(elsewhere("x"), at(1000) + FINISHED_CALL_MEMORY)
    assert list(tracker._finished) == ["a"]


def test_finished_calls_stay_bounded_by_age_and_count() -> None:
    tracker = CallTracker()
    for i in range(MAX_FINISHED_CALLS * 2):
        applied(tracker, end(str(i)), at(i * 60))
        assert len(tracker._finished) <= MAX_FINISHED_CALLS
    # An hour of finished calls, one a minute, is remembered; no more.
    memory_minutes = int(FINISHED_CALL_MEMORY.total_seconds() // 60)
    assert len(tracker._finished) == memory_minutes


# --- events with only their id (issue 10) -------------------------------------


def test_call_with_only_its_id_is_tracked_without_a_line() -> None:
    tracker = CallTracker()
    change = applied(tracker, event("incoming_call", {"call_id": 3}), at(0))
    call = change.call
    assert change.new_line is None
    assert call.state is CallState.RINGING
    assert call.direction is Direction.INCOMING
    assert (call.caller, call.called, call.trunk) == (None, None, None)
    assert tracker.lines == {}
    assert tracker.state is CallState.RINGING
    change = applied(tracker, event("call_end", {"call_id": "3"}), at(9))
    assert change.call is call
    assert call.status is RecordCallStatus.NOT_DEF
    assert call.duration is None
    assert not change.missed
    assert tracker.state is CallState.IDLE


def test_withheld_caller_is_none_and_later_events_keep_what_is_known() -> None:
    tracker = CallTracker()
    payload = {"call_id": 4, "call_src": None, "call_dst": "101", "trunk": "GSM1"}
    call = applied(tracker, event("incoming_call", payload), at(0)).call
    assert call.caller is None
    assert call.called == "101"
    applied(tracker, event("start_talk", {"call_id": 4}), at(3))
    assert call.state is CallState.TALKING
    assert (call.called, call.trunk) == ("101", "GSM1")
    applied(tracker, event("answer_elsewhere", {"call_id": 4, "number": "105"}), at(4))
    applied(tracker, event("answer_elsewhere", {"call_id": 4}), at(5))
    assert call.answered_by == "105"


# --- expiry ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "state"),
    [(incoming, CallState.RINGING), (outgoing, CallState.DIALING)],
)
def test_ringing_or_dialing_call_expires_after_ring_timeout(
    start: Callable[[str], SpRecordEvent], state: CallState
) -> None:
    tracker = CallTracker()
    call = applied(tracker, start("8"), at(0)).call
    assert call.state is state
    deadline = at(0) + RING_TIMEOUT
    assert tracker.next_expiry() == deadline
    assert tracker.expire(deadline - timedelta(microseconds=1)) == []
    assert tracker.state is state
    assert tracker.expire(deadline) == [call]
    assert call.expired
    assert call.state is CallState.IDLE
    assert call.ended == deadline
    assert call.status is None
    assert tracker.active == {}
    assert tracker.state is CallState.IDLE
    assert tracker.next_expiry() is None
    assert tracker.last_call is None
    assert tracker.missed_count == 0


def test_talking_call_expires_after_call_timeout_from_its_answer() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, talk("8"), at(30)).call
    deadline = at(30) + DEFAULT_CALL_TIMEOUT
    assert tracker.next_expiry() == deadline
    # A ringing call would be long gone; a talking one is not.
    assert tracker.expire(at(0) + RING_TIMEOUT + timedelta(minutes=1)) == []
    assert tracker.expire(deadline - timedelta(seconds=1)) == []
    assert tracker.state is CallState.TALKING
    assert tracker.expire(deadline) == [call]
    assert call.expired
    assert call.ended == deadline
    assert tracker.state is CallState.IDLE


def test_custom_timeouts_are_used() -> None:
    tracker = CallTracker(
        call_timeout=timedelta(minutes=5), ring_timeout=timedelta(seconds=30)
    )
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, talk("2", trunk="GSM2"), at(0))
    assert tracker.next_expiry() == at(30)
    expired = tracker.expire(at(30))
    assert [c.call_id for c in expired] == ["1"]
    assert tracker.next_expiry() == at(300)
    assert [c.call_id for c in tracker.expire(at(300))] == ["2"]


def test_next_expiry_is_the_earliest_deadline_of_the_active_calls() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, talk("1", trunk="GSM1"), at(10))
    applied(tracker, outgoing("2", trunk="GSM2"), at(20))
    assert tracker.next_expiry() == at(20) + RING_TIMEOUT
    applied(tracker, talk("2", trunk="GSM2"), at(40))
    assert tracker.next_expiry() == at(10) + DEFAULT_CALL_TIMEOUT


def test_expire_ends_only_the_overdue_calls() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, talk("1", trunk="GSM1"), at(5))
    ringing = applied(tracker, incoming("2", trunk="GSM2"), at(10)).call
    expired = tracker.expire(at(10) + RING_TIMEOUT)
    assert expired == [ringing]
    assert list(tracker.active) == ["1"]
    assert tracker.state is CallState.TALKING
    assert tracker.line_state("GSM2") is CallState.IDLE


def test_events_on_a_call_push_its_expiry_back() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    applied(tracker, elsewhere("8", "102"), at(60))
    assert tracker.next_expiry() == at(60) + RING_TIMEOUT
    assert tracker.expire(at(0) + RING_TIMEOUT) == []
    applied(tracker, incoming("8"), at(120))
    assert tracker.next_expiry() == at(120) + RING_TIMEOUT


def test_expire_with_nothing_active_returns_nothing() -> None:
    tracker = CallTracker()
    assert tracker.expire(at(0)) == []
    assert tracker.state is CallState.IDLE


def test_call_end_after_expiry_still_completes_a_missed_call() -> None:
    tracker = CallTracker()
    call = applied(tracker, incoming("8"), at(0)).call
    assert tracker.expire(at(0) + RING_TIMEOUT) == [call]
    end_time = at(0) + RING_TIMEOUT + timedelta(minutes=1)
    change = applied(tracker, end("8", "no_answer", duration=0, record_id=4), end_time)
    assert change.call is call
    assert change.ended
    assert change.missed
    assert not call.expired
    assert call.ended == end_time
    assert call.status is RecordCallStatus.NO_ANSWER
    assert call.record_id == 4
    assert call.direction is Direction.INCOMING
    assert call.caller == CALLER
    assert tracker.missed_count == 1
    assert tracker.last_missed is call
    assert tracker.last_call is call
    assert tracker.state is CallState.IDLE
    assert tracker.active == {}


def test_call_end_after_expiry_of_a_talking_call_records_the_result() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, talk("8"), at(5)).call
    tracker.expire(at(5) + DEFAULT_CALL_TIMEOUT)
    change = applied(
        tracker, end("8", "success", duration=10_805), at(5) + DEFAULT_CALL_TIMEOUT
    )
    assert change.call is call
    assert not change.missed
    assert call.duration == 10_805
    assert call.answered == at(5)
    assert tracker.last_call is call
    assert tracker.missed_count == 0


def test_second_call_end_after_expiry_and_completion_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    applied(tracker, end("8", "no_answer"), at(0) + RING_TIMEOUT)
    assert tracker.apply(end("8", "no_answer"), at(0) + RING_TIMEOUT) is None
    assert tracker.missed_count == 1


def test_late_start_talk_after_expiry_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    assert tracker.apply(talk("8"), at(0) + RING_TIMEOUT) is None
    assert tracker.state is CallState.IDLE


def test_answer_elsewhere_after_expiry_is_ignored() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    assert tracker.apply(elsewhere("8"), at(0) + RING_TIMEOUT) is None


# --- lines -------------------------------------------------------------------


def test_new_line_is_reported_only_the_first_time_a_trunk_is_seen() -> None:
    tracker = CallTracker()
    assert applied(tracker, incoming("1", trunk="GSM1"), at(0)).new_line == "GSM1"
    assert applied(tracker, talk("1", trunk="GSM1"), at(1)).new_line is None
    assert applied(tracker, end("1", "success"), at(2)).new_line is None
    assert applied(tracker, outgoing("2", trunk="GSM1"), at(3)).new_line is None
    assert applied(tracker, outgoing("3", trunk="GSM2"), at(4)).new_line == "GSM2"
    assert list(tracker.lines) == ["GSM1", "GSM2"]


def test_new_line_is_reported_when_a_later_event_first_names_the_trunk() -> None:
    tracker = CallTracker()
    assert applied(tracker, incoming("1", trunk=""), at(0)).new_line is None
    assert tracker.lines == {}
    assert applied(tracker, talk("1", trunk="GSM3"), at(1)).new_line == "GSM3"
    assert list(tracker.lines) == ["GSM3"]


def test_note_line_ignores_empty_and_known_lines() -> None:
    tracker = CallTracker()
    assert tracker.note_line(None) is None
    assert tracker.note_line("") is None
    assert tracker.note_line("GSM1") == "GSM1"
    assert tracker.note_line("GSM1") is None
    assert tracker.lines == {"GSM1": None}


def test_lines_seen_are_bounded_by_max_lines() -> None:
    tracker = CallTracker()
    names = [f"GSM{i}" for i in range(MAX_LINES)]
    assert [tracker.note_line(name) for name in names] == names
    assert tracker.note_line("one-too-many") is None
    assert len(tracker.lines) == MAX_LINES
    assert "one-too-many" not in tracker.lines
    # A known line is still known; a call on a line past the bound still works.
    assert tracker.note_line("GSM0") is None
    change = applied(tracker, incoming("1", trunk="overflow"), at(0))
    assert change.new_line is None
    assert tracker.line_state("overflow") is CallState.RINGING


def test_lines_survive_the_end_of_their_calls() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("1", trunk="GSM1"), at(0))
    applied(tracker, end("1", "no_answer"), at(5))
    tracker.expire(at(10_000))
    assert list(tracker.lines) == ["GSM1"]


# --- bounded memory ----------------------------------------------------------


def test_too_many_open_calls_evict_the_oldest() -> None:
    tracker = CallTracker()
    calls = [
        applied(tracker, incoming(str(i), trunk="GSM1"), at(i)).call
        for i in range(MAX_ACTIVE_CALLS)
    ]
    assert len(tracker.active) == MAX_ACTIVE_CALLS
    newest = applied(tracker, incoming("new", trunk="GSM2"), at(100)).call
    assert len(tracker.active) == MAX_ACTIVE_CALLS
    oldest = calls[0]
    assert "0" not in tracker.active
    assert next(iter(tracker.active)) == "1"
    assert tracker.current is newest
    assert oldest.expired
    assert oldest.state is CallState.IDLE
    assert oldest.ended == oldest.updated == at(0)
    assert tracker._finished["0"] is oldest
    assert tracker.last_call is None
    assert tracker.missed_count == 0


def test_call_end_of_an_evicted_call_still_completes_it() -> None:
    tracker = CallTracker()
    oldest = applied(tracker, incoming("0"), at(0)).call
    for i in range(1, MAX_ACTIVE_CALLS + 1):
        applied(tracker, incoming(str(i)), at(i))
    assert oldest.expired
    change = applied(tracker, end("0", "busy"), at(200))
    assert change.call is oldest
    assert change.missed
    assert tracker.missed_count == 1
    assert len(tracker.active) == MAX_ACTIVE_CALLS


def test_finished_calls_are_bounded() -> None:
    tracker = CallTracker()
    total = MAX_FINISHED_CALLS + 10
    for i in range(total):
        applied(tracker, outgoing(str(i)), at(2 * i))
        applied(tracker, end(str(i), "success"), at(2 * i + 1))
    assert len(tracker._finished) == MAX_FINISHED_CALLS
    assert next(iter(tracker._finished)) == "10"
    assert next(reversed(tracker._finished)) == str(total - 1)
    assert tracker.active == {}
    assert tracker.last_call is not None
    assert tracker.last_call.call_id == str(total - 1)


def test_finished_calls_stay_bounded_with_unknown_ends() -> None:
    tracker = CallTracker()
    for i in range(MAX_FINISHED_CALLS * 2):
        applied(tracker, end(str(i), "no_answer"), at(i))
    assert len(tracker._finished) == MAX_FINISHED_CALLS
    assert tracker.missed_count == 0


def test_call_end_of_a_call_forgotten_from_the_finished_ones_is_taken_as_new() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("first"), at(0))
    applied(tracker, end("first", "no_answer"), at(1))
    for i in range(MAX_FINISHED_CALLS):
        applied(tracker, end(str(i), "success"), at(2 + i))
    assert "first" not in tracker._finished
    change = applied(tracker, end("first", "no_answer"), at(1000))
    assert change.call.direction is Direction.UNKNOWN
    assert tracker.missed_count == 1


def test_finishing_an_expired_call_moves_it_to_the_newest_finished() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("a"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    applied(tracker, end("b", "success"), at(700))
    assert list(tracker._finished) == ["a", "b"]
    applied(tracker, end("a", "no_answer"), at(701))
    assert list(tracker._finished) == ["b", "a"]


# --- saving and restoring a call ---------------------------------------------


def finished_call(**overrides: Any) -> Call:
    """Return a finished call with every field set, with some overridden."""
    values: dict[str, Any] = {
        "call_id": "8",
        "direction": Direction.INCOMING,
        "state": CallState.IDLE,
        "started": at(0),
        "updated": at(40),
        "caller": CALLER,
        "called": EXTENSION,
        "trunk": "GSM1",
        "answered": at(5),
        "answered_by": "102",
        "ended": at(40),
        "status": RecordCallStatus.SUCCESS,
        "duration": 35,
        "record_id": 12,
    }
    values.update(overrides)
    return Call(**values)


def test_as_dict_gives_json_friendly_attributes() -> None:
    assert finished_call().as_dict() == {
        "call_id": "8",
        "direction": "incoming",
        "state": "idle",
        "caller": CALLER,
        "called": EXTENSION,
        "caller_name": None,
        "called_name": None,
        "line": "GSM1",
        "answered_by": "102",
        "started": "2025-01-01T12:00:00+00:00",
        "answered": "2025-01-01T12:00:05+00:00",
        "ended": "2025-01-01T12:00:40+00:00",
        "status": "success",
        "duration": 35,
        "record_id": 12,
    }


def test_as_dict_of_an_active_call_has_none_for_what_is_not_known_yet() -> None:
    tracker = CallTracker()
    call = applied(tracker, incoming("8"), at(0)).call
    data = call.as_dict()
    assert data["state"] == "ringing"
    assert data["direction"] == "incoming"
    assert data["answered"] is None
    assert data["ended"] is None
    assert data["status"] is None
    assert data["duration"] is None
    assert data["record_id"] is None
    assert data["answered_by"] is None


def test_call_round_trips_through_as_dict_and_from_dict() -> None:
    original = finished_call()
    restored = Call.from_dict(original.as_dict())
    # `updated` is not saved: a restored call was last updated when it started.
    assert restored == replace(original, updated=original.started)
    assert restored.as_dict() == original.as_dict()
    assert restored.started.tzinfo is UTC
    assert restored.ended is not None
    assert restored.ended.tzinfo is not None


def test_call_with_none_fields_round_trips() -> None:
    original = finished_call(
        direction=Direction.UNKNOWN,
        updated=at(0),
        caller=None,
        called=None,
        trunk=None,
        answered=None,
        answered_by=None,
        ended=None,
        status=None,
        duration=None,
        record_id=None,
    )
    data = original.as_dict()
    assert data["answered"] is None
    assert data["ended"] is None
    assert data["status"] is None
    restored = Call.from_dict(data)
    assert restored == original
    assert restored.as_dict() == data


def test_call_with_unknown_status_round_trips() -> None:
    original = finished_call(status=RecordCallStatus("rejected_by_operator"))
    data = original.as_dict()
    assert data["status"] == "rejected_by_operator"
    restored = Call.from_dict(data)
    assert restored.status is not None
    assert restored.status == "rejected_by_operator"
    assert isinstance(restored.status, RecordCallStatus)
    assert not restored.status.is_known
    assert restored.as_dict() == data


def test_missed_call_round_trips_as_missed() -> None:
    tracker = CallTracker()
    applied(tracker, incoming("8"), at(0))
    call = applied(tracker, end("8", "no_answer", duration=0), at(20)).call
    restored = Call.from_dict(call.as_dict())
    assert restored.missed
    assert restored.status is RecordCallStatus.NO_ANSWER
    assert restored.ended == at(20)


def test_from_dict_makes_the_call_idle_and_updated_at_its_start() -> None:
    data = finished_call(state=CallState.TALKING, ended=None).as_dict()
    restored = Call.from_dict(data)
    assert restored.state is CallState.IDLE
    assert restored.updated == restored.started == at(0)
    assert not restored.expired


def test_from_dict_accepts_minimal_data_with_missing_keys() -> None:
    restored = Call.from_dict(
        {"call_id": 8, "direction": "outgoing", "started": "2025-01-01T12:00:00+00:00"}
    )
    assert restored.call_id == "8"
    assert restored.direction is Direction.OUTGOING
    assert restored.started == at(0)
    assert restored.caller is None
    assert restored.called is None
    assert restored.trunk is None
    assert restored.answered is None
    assert restored.answered_by is None
    assert restored.ended is None
    assert restored.status is None
    assert restored.duration is None
    assert restored.record_id is None


def test_from_dict_reads_an_empty_status_or_dates_as_none() -> None:
    data = finished_call().as_dict() | {"status": "", "answered": "", "ended": None}
    restored = Call.from_dict(data)
    assert restored.status is None
    assert restored.answered is None
    assert restored.ended is None


def test_from_dict_rejects_an_unknown_direction() -> None:
    data = finished_call().as_dict() | {"direction": "sideways"}
    with pytest.raises(ValueError, match="sideways"):
        Call.from_dict(data)


@pytest.mark.parametrize(
    ("direction", "status", "missed"),
    [
        (Direction.INCOMING, RecordCallStatus.NO_ANSWER, True),
        (Direction.INCOMING, RecordCallStatus.BUSY, True),
        (Direction.INCOMING, RecordCallStatus.SUCCESS, False),
        (Direction.INCOMING, None, False),
        (Direction.OUTGOING, RecordCallStatus.NO_ANSWER, False),
        (Direction.UNKNOWN, RecordCallStatus.BUSY, False),
    ],
)
def test_missed_is_an_unanswered_incoming_call(
    direction: Direction, status: RecordCallStatus | None, missed: bool
) -> None:
    assert finished_call(direction=direction, status=status).missed is missed


# --- the PBX switched on again --------------------------------------------------


def test_pbx_restart_ends_calls_in_progress() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("1", trunk="GSM1"), at(0))
    tracker.apply(talk("1", trunk="GSM1"), at(1))
    tracker.apply(incoming("2", trunk="GSM2"), at(2))
    ended = tracker.restart(at(3))
    assert [call.call_id for call in ended] == ["1", "2"]
    assert all(call.expired and call.ended == at(3) for call in ended)
    assert tracker.state is CallState.IDLE
    assert tracker.next_expiry() is None
    assert tracker.missed_count == 0


def test_pbx_restart_lets_call_ids_start_over() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("1"), at(0))
    tracker.apply(end("1"), at(1))
    assert tracker.apply(incoming("1"), at(2)) is None  # a late repeat
    tracker.restart(at(3))
    change = applied(tracker, incoming("1"), at(4))  # a new call, same id
    assert change.call.state is CallState.RINGING
    assert tracker.restart(at(5)) == [change.call]


# --- expired calls across a restart of Home Assistant -------------------------


def restarted(tracker: CallTracker) -> CallTracker:
    """Return a new tracker that took back the expired calls saved of `tracker`."""
    saved = [call.as_dict() for call in tracker.expired_calls()]
    again = CallTracker()
    again.recall_expired(
        call for data in saved if (call := saved_expired_call(data)) is not None
    )
    return again


def test_an_expired_call_saved_and_taken_back_is_completed_by_its_late_end() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("8"), at(0))
    tracker.apply(talk("8"), at(5))
    tracker.apply(end("1"), at(6))  # not expired: not saved
    [expired] = tracker.expire(at(5) + DEFAULT_CALL_TIMEOUT)
    again = restarted(tracker)
    [recalled] = again.expired_calls()
    assert recalled is not expired
    assert (recalled.call_id, recalled.caller, recalled.trunk) == ("8", CALLER, "GSM1")
    assert (recalled.ended, recalled.state) == (expired.ended, CallState.IDLE)
    late = at(5) + DEFAULT_CALL_TIMEOUT + timedelta(minutes=40)
    change = applied(again, end("8", duration=11_000), late)
    assert change.call is recalled
    assert change.completes_expired  # listed when it expired: not again
    assert (change.call.direction, change.call.duration) == (Direction.INCOMING, 11_000)
    assert again.expired_calls() == []  # completed: not saved as expired again
    assert again.last_call is recalled


def test_a_taken_back_expired_call_is_forgotten_after_the_memory() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("8"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    again = restarted(tracker)
    when = at(0) + RING_TIMEOUT + FINISHED_CALL_MEMORY + timedelta(seconds=1)
    change = applied(again, end("8", "no_answer"), when)
    assert not change.completes_expired  # a reused id: a call of its own
    assert change.call.direction is Direction.UNKNOWN


def test_a_reused_id_starting_a_call_after_a_restart_is_a_new_call() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("8"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    again = restarted(tracker)
    start = at(0) + RING_TIMEOUT + LATE_EVENT_WINDOW + timedelta(seconds=1)
    new = applied(again, incoming("8", src="+79990000000"), start).call
    change = applied(again, end("8"), start + timedelta(seconds=30))
    assert change.call is new
    assert not change.completes_expired


def test_calls_over_because_the_pbx_restarted_are_not_saved() -> None:
    tracker = CallTracker()
    tracker.apply(incoming("1"), at(0))
    tracker.expire(at(0) + RING_TIMEOUT)
    tracker.apply(incoming("2"), at(700))
    tracker.restart(at(701))  # its call ids start over
    assert tracker.expired_calls() == []


def test_saved_expired_calls_are_bounded_and_go_before_newer_finished_ones() -> None:
    tracker = CallTracker()
    for i in range(MAX_SAVED_EXPIRED + 3):
        tracker.apply(incoming(str(i)), at(i))
    tracker.expire(at(0) + RING_TIMEOUT * 2)
    saved = tracker.expired_calls()
    assert len(saved) == MAX_SAVED_EXPIRED
    again = CallTracker()
    applied(again, end("new"), at(0) + RING_TIMEOUT * 3)
    applied(again, incoming("3"), at(0) + RING_TIMEOUT * 3)  # active: kept
    again.recall_expired([*saved, replace(saved[0], call_id="x", ended=None)])
    assert list(again.active) == ["3"]
    assert list(again._finished)[-1] == "new"  # the oldest stay first
    assert "3" not in again._finished
    assert "x" not in again._finished  # no end, no expiry
    assert len(again._finished) == MAX_SAVED_EXPIRED  # 4..34 and "new"


def test_taking_back_expired_calls_keeps_the_finished_calls_bounded() -> None:
    tracker = CallTracker()
    for i in range(MAX_FINISHED_CALLS):
        applied(tracker, end(f"f{i}"), at(i))
    expired = [
        replace(finished_call(), call_id=f"e{i}", ended=at(-1)) for i in range(3)
    ]
    tracker.recall_expired(expired)
    assert len(tracker._finished) == MAX_FINISHED_CALLS
    assert list(tracker._finished)[-1] == f"f{MAX_FINISHED_CALLS - 1}"


def test_a_saved_expired_call_is_read_cleaned() -> None:
    data = {
        **finished_call().as_dict(),
        "caller": "+7\u202e916",
        "called": 101,
        "line": "GSM1",
        "caller_name": "Mum",
        "status": "success",
        "duration": 5,
    }
    call = saved_expired_call(data)
    assert call is not None
    assert (call.caller, call.called, call.trunk) == ("+7916", None, "GSM1")
    assert call.caller_name is None  # named by the phonebook again
    assert (call.status, call.duration, call.record_id) == (None, None, None)
    assert call.expired


@pytest.mark.parametrize(
    "change",
    [
        {"call_id": 8},
        {"call_id": " "},
        {"call_id": "a\nb"},
        {"ended": None},
        {"ended": "2025-01-01T12:00:00"},
        {"started": "2025-01-01T11:00:00"},
        {"started": "yesterday"},
        {"direction": "sideways"},
    ],
)
def test_an_unreadable_saved_expired_call_is_left_out(change: dict[str, Any]) -> None:
    assert saved_expired_call({**finished_call().as_dict(), **change}) is None


@pytest.mark.parametrize("data", [None, "call", ["call_id"], {"direction": "incoming"}])
def test_a_saved_expired_call_that_is_no_call_is_left_out(data: Any) -> None:
    assert saved_expired_call(data) is None
