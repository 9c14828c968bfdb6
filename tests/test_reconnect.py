"""The reconnect policy and the stream history (no Home Assistant, no network)."""

from __future__ import annotations

import pytest

from custom_components.sprecord.reconnect import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    BUSY_BACKOFF_MAX,
    BUSY_BACKOFF_MIN,
    HEALTHY_STREAM_SECONDS,
    ReconnectPolicy,
    StreamHistory,
    StreamRecord,
    jitter,
)


def policy() -> ReconnectPolicy:
    """Return a policy without jitter: every wait is the whole delay."""
    return ReconnectPolicy(rand=lambda: 1.0)


@pytest.mark.parametrize("cut_after", [HEALTHY_STREAM_SECONDS, 25.0, 55.0, 60.0, 90.0])
def test_a_stream_cut_after_a_while_reconnects_at_once_every_time(
    cut_after: float,
) -> None:
    rule = policy()
    assert [rule.stream_ended(cut_after, events=0) for _ in range(50)] == [0.0] * 50


def test_the_servers_retry_is_taken_within_bounds() -> None:
    rule = policy()
    assert rule.stream_ended(30.0, events=0, retry=3.0) == 3.0
    assert rule.stream_ended(30.0, events=0, retry=10_000.0) == BACKOFF_MAX


def test_streams_that_end_at_once_back_off_and_a_cut_resets() -> None:
    rule = policy()
    waits = [rule.stream_ended(0.1, events=0) for _ in range(12)]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits[-1] == BACKOFF_MAX
    assert rule.stream_ended(HEALTHY_STREAM_SECONDS, events=0) == 0.0
    assert rule.stream_ended(0.1, events=0) == BACKOFF_MIN


def test_a_short_stream_backs_off_even_when_it_carried_events() -> None:
    # A server that resends its last event and closes gets no loop.
    rule = policy()
    waits = [rule.stream_ended(0.1, events=1) for _ in range(5)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_failed_connects_back_off_to_the_cap() -> None:
    rule = policy()
    waits = [rule.connect_failed() for _ in range(12)]
    assert waits[:3] == [1.0, 2.0, 4.0]
    assert max(waits) == BACKOFF_MAX


def test_a_busy_server_gets_its_own_longer_backoff() -> None:
    rule = policy()
    assert rule.refused_busy(None) == BUSY_BACKOFF_MIN
    assert rule.refused_busy(None) == 2 * BUSY_BACKOFF_MIN
    assert rule.refused_busy(None) == 4 * BUSY_BACKOFF_MIN
    for _ in range(10):
        last = rule.refused_busy(None)
    assert last == BUSY_BACKOFF_MAX
    assert rule.refused_busy(BUSY_BACKOFF_MAX * 3) == BUSY_BACKOFF_MAX * 3
    # A stream that worked starts the busy backoff over.
    rule.stream_ended(30.0, events=0)
    assert rule.refused_busy(None) == BUSY_BACKOFF_MIN


def test_jitter_spreads_between_half_and_all() -> None:
    assert jitter(10.0, lambda: 0.0) == 5.0
    assert jitter(10.0, lambda: 1.0) == 10.0
    assert 0.5 <= ReconnectPolicy().connect_failed() <= 1.0


def test_history_counts_cuts_and_time_disconnected() -> None:
    history = StreamHistory(now=0.0)
    history.opened(2.0)
    assert history.ended(StreamRecord(lived=55.0, silent=55.0, events=0), 57.0) is None
    history.opened(58.0)
    assert history.ended(StreamRecord(lived=1.0, silent=1.0, events=0), 59.0) is None
    assert history.disconnected_seconds(60.0) == pytest.approx(2.0 + 1.0 + 1.0)
    figures = history.as_dict(60.0)
    assert figures["cuts"] == 1
    assert figures["recent_streams"] == [
        {"lived": 55.0, "silent": 55.0, "events": 0},
        {"lived": 1.0, "silent": 1.0, "events": 0},
    ]
    assert figures["disconnected_seconds"] == 4.0
    assert figures["connected_share"] == pytest.approx(1 - 4 / 60, abs=1e-4)
    assert figures["idle_cut_after"] is None
    assert StreamHistory(now=5.0).as_dict(5.0)["connected_share"] is None


def test_history_notices_cuts_after_the_same_silence_once() -> None:
    history = StreamHistory(now=0.0)
    now = 0.0
    noticed = []
    # An event resets the silence; the proxy cuts 55 s after the last one.
    for lived in (70.0, 55.2, 80.0, 55.0, 54.9, 55.1, 55.0):
        history.opened(now)
        now += lived
        silent = 55.0 + (lived % 1) / 10
        noticed.append(
            history.ended(StreamRecord(lived=lived, silent=silent, events=0), now)
        )
    assert [n for n in noticed if n is not None] == [pytest.approx(55.0, abs=0.1)]
    assert noticed.index(next(n for n in noticed if n is not None)) == 2
    assert history.as_dict(now)["idle_cut_after"] == pytest.approx(55.0, abs=0.1)


def test_history_different_silences_or_quick_ends_make_no_pattern() -> None:
    history = StreamHistory(now=0.0)
    records = [
        StreamRecord(lived=30.0, silent=30.0, events=0),
        StreamRecord(lived=60.0, silent=60.0, events=0),
        StreamRecord(lived=30.0, silent=30.0, events=0),
        StreamRecord(lived=30.0, silent=30.0, events=0),
        StreamRecord(lived=0.5, silent=0.5, events=0),
        StreamRecord(lived=30.0, silent=30.0, events=0),
        StreamRecord(lived=30.0, silent=30.0, events=0),
    ]
    assert all(history.ended(record, 0.0) is None for record in records)
    assert history.cuts == 6


def test_history_a_stream_closed_on_purpose_is_no_cut() -> None:
    history = StreamHistory(now=0.0)
    history.opened(0.0)
    record = StreamRecord(lived=60.0, silent=60.0, events=0)
    assert history.ended(record, 60.0, cut=False) is None
    assert history.cuts == 0
    assert history.as_dict(70.0)["recent_streams"] == [record.as_dict()]
    assert history.disconnected_seconds(70.0) == 10.0
