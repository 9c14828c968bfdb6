"""Which events of a backlog replay the past (no triggers) and which ring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from custom_components.sprecord.api import SpRecordEvent, parse_event
from custom_components.sprecord.dedupe import event_digest
from custom_components.sprecord.replay import Delivery, deliveries, replayed

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LONGEST = timedelta(hours=2)
MOSCOW = timezone(timedelta(hours=3))
AWAY_LONG = {
    "since": NOW - LONGEST - timedelta(seconds=1),
    "now": NOW,
    "longest_call": LONGEST,
    "local_zone": MOSCOW,
}
"""Home Assistant was away for longer than the longest call."""
PBX = "c2Vy/MTIz+NDU2Nzg="
OTHER = "b3RoZXJwYng="


def ev(event_type: str, device_id: str = PBX, **payload: Any) -> SpRecordEvent:
    """Return an event as the vendor's page shows it, parsed."""
    return parse_event(
        {"event_type": event_type, "device_id": device_id, "payload": payload}
    )


def start(call_id: int | str, device_id: str = PBX) -> SpRecordEvent:
    return ev(
        "incoming_call",
        device_id,
        call_id=call_id,
        call_src="+79161234567",
        call_dst="101",
        trunk="GSM1",
    )


def end(call_id: int | str, device_id: str = PBX) -> SpRecordEvent:
    return ev(
        "call_end",
        device_id,
        call_id=str(call_id),
        record_id=7,
        duration=12,
        status="success",
    )


def sms(date: str | None) -> SpRecordEvent:
    payload: dict[str, Any] = {"sms_src": "+79161234567", "text": "hi", "trunk": "GSM2"}
    if date is not None:
        payload["date"] = date
    return ev("incoming_sms", **payload)


def test_a_call_that_ended_in_the_backlog_is_replayed_an_open_one_rings() -> None:
    events = [
        start(8),
        ev("answer_elsewhere", call_id="8", number="107"),
        start(9),
        end("8"),
        ev(
            "start_talk",
            call_id=9,
            call_src="+79161234567",
            call_dst="101",
            trunk="GSM1",
        ),
    ]
    assert replayed(events, **AWAY_LONG) == [True, True, False, True, False]


def test_a_restarted_pbx_reuses_an_id_for_another_call() -> None:
    events = [start(1), ev("startup"), start(1), end(1)]
    # The startup cut the first call 1: it rings no more. The next call 1
    # ended in the backlog.
    assert replayed(events, **AWAY_LONG) == [True, True, True, True]


def test_a_call_cut_by_its_pbx_restarting_is_replayed_another_pbx_rings() -> None:
    events = [start(1), start(2, OTHER), ev("startup"), start(3)]
    assert replayed(events, **AWAY_LONG) == [True, False, True, False]


def test_a_pbx_that_started_while_away_for_long_is_replayed() -> None:
    """No "PBX started" trigger for a restart hours ago."""
    assert replayed([ev("startup"), ev("startup", OTHER)], **AWAY_LONG) == [True, True]


def test_call_ids_of_two_pbxs_are_their_own() -> None:
    events = [start(5), start(5, OTHER), end(5, OTHER)]
    assert replayed(events, **AWAY_LONG) == [False, True, True]


def test_an_end_without_its_start_is_replayed() -> None:
    assert replayed([end(3)], **AWAY_LONG) == [True]


def test_sms_dated_before_the_longest_call_is_replayed() -> None:
    events = [
        sms("2026-03-02T06:59:00+00:00"),  # 2 h 1 min ago
        sms("2026-03-02T07:01:00+00:00"),
        sms("2026-03-02 10:59:00"),  # Moscow time, no zone: 1 h 1 min ago
        sms("2026-03-02 09:30:00"),  # Moscow time: 2 h 30 min ago
        sms(None),
        sms("yesterday"),
        ev("some_new_event", anything=1),
    ]
    assert replayed(events, **AWAY_LONG) == [
        True,
        False,
        False,
        True,
        False,
        False,
        False,
    ]


def test_after_a_short_absence_every_event_fires() -> None:
    events = [
        start(8),
        end(8),
        sms("2026-03-01T00:00:00+00:00"),
        end(9),
        ev("startup"),
    ]
    flags = replayed(
        events,
        since=NOW - LONGEST,
        now=NOW,
        longest_call=LONGEST,
        local_zone=MOSCOW,
    )
    assert flags == [False] * 5


AWAY_SHORT = {**AWAY_LONG, "since": NOW - timedelta(minutes=2)}
"""Home Assistant was away for two minutes (an update)."""


def test_a_call_in_progress_at_the_restart_rings_again_only_if_it_still_does() -> None:
    ringing, talking, gone = start(1), start(2), start(3)
    again = {event_digest(event) for event in (ringing, talking, gone)}
    events = [
        ringing,
        talking,
        gone,
        end(3),  # ended while Home Assistant was down
        ev("start_talk", call_id=2, call_src="+79161234567", call_dst="101"),
        start(4),  # a new call, still ringing
    ]
    for away in (AWAY_SHORT, AWAY_LONG):
        shown = deliveries(events, **away, again=again)
        assert shown[:3] == [Delivery.AGAIN, Delivery.AGAIN, Delivery.RESENT]
        assert shown[4:] == [Delivery.LIVE, Delivery.LIVE]
    # Its end is news after a short absence, the past after a long one.
    assert deliveries(events, **AWAY_SHORT, again=again)[3] is Delivery.LIVE
    assert deliveries(events, **AWAY_LONG, again=again)[3] is Delivery.REPLAY


def test_a_call_in_progress_cut_by_its_pbx_restarting_does_not_ring_again() -> None:
    ringing = start(1)
    # The PBX restarted while Home Assistant was down; a new call 1 came.
    twin = start(1)
    events = [ringing, ev("startup"), twin]
    shown = deliveries(events, **AWAY_SHORT, again={event_digest(ringing)})
    assert shown == [Delivery.RESENT, Delivery.LIVE, Delivery.LIVE]


def test_without_calls_sent_again_deliveries_follow_replayed() -> None:
    events = [start(8), end(8), start(9)]
    assert deliveries(events, **AWAY_LONG) == [
        Delivery.REPLAY,
        Delivery.REPLAY,
        Delivery.LIVE,
    ]
    assert deliveries(events, **AWAY_SHORT, again=set()) == [Delivery.LIVE] * 3
