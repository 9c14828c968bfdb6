"""Which events of a backlog replay the past (no triggers) and which ring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from custom_components.sprecord.api import SpRecordEvent, parse_event
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


def talk(call_id: int) -> SpRecordEvent:
    return ev("start_talk", call_id=call_id, call_src="+79161234567", call_dst="101")


def test_a_call_in_progress_at_the_restart_rings_again_only_if_it_still_does() -> None:
    events = [
        start(1),  # sent again: rang before the restart
        start(2),
        talk(2),  # sent again: talked before the restart
        start(3),
        end(3),  # new: ended while Home Assistant was down
        talk(1),  # new: answered meanwhile, still talking
        start(4),  # a new call, still ringing
    ]
    again = [True, True, True, True, False, False, False]
    shown = deliveries(events, **AWAY_SHORT, sent_again=again)
    assert shown == [
        Delivery.AGAIN,
        Delivery.AGAIN,
        Delivery.AGAIN,
        Delivery.RESENT,
        Delivery.LIVE,  # news after a short absence
        Delivery.LIVE,
        Delivery.LIVE,
    ]
    # After a long one: call 1 was heard of meanwhile (it talks on), call 2
    # was not and would have timed out; call 3's end is the past.
    assert deliveries(events, **AWAY_LONG, sent_again=again) == [
        Delivery.AGAIN,
        Delivery.STALE,
        Delivery.STALE,
        Delivery.RESENT,
        Delivery.REPLAY,
        Delivery.LIVE,
        Delivery.LIVE,
    ]


def test_a_call_unheard_of_is_over_once_its_ring_or_the_longest_call_timed_out() -> (
    None
):
    events = [start(1), start(2), talk(2)]
    again = [True, True, True]
    for minutes, shown in (
        (9, [Delivery.AGAIN] * 3),
        (11, [Delivery.STALE, Delivery.AGAIN, Delivery.AGAIN]),
    ):
        away = {**AWAY_SHORT, "since": NOW - timedelta(minutes=minutes)}
        assert deliveries(events, **away, sent_again=again) == shown


def test_only_the_events_sent_again_are_told_apart() -> None:
    # The same content twice: the second is new (a PBX reused the call id).
    events = [start(1), ev("startup"), start(1)]
    shown = deliveries(events, **AWAY_SHORT, sent_again=[True, False, False])
    assert shown == [Delivery.RESENT, Delivery.LIVE, Delivery.LIVE]
    events = [start(1), talk(1), talk(1), end(1)]
    shown = deliveries(events, **AWAY_SHORT, sent_again=[True, True, False, False])
    assert shown == [Delivery.RESENT, Delivery.RESENT, Delivery.LIVE, Delivery.LIVE]


def test_without_calls_sent_again_deliveries_follow_replayed() -> None:
    events = [start(8), end(8), start(9)]
    assert deliveries(events, **AWAY_LONG) == [
        Delivery.REPLAY,
        Delivery.REPLAY,
        Delivery.LIVE,
    ]
    flags = deliveries(events, **AWAY_SHORT, sent_again=[False] * 3)
    assert flags == [Delivery.LIVE] * 3
