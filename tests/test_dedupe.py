"""An event that arrives on both transports is recognised within a window."""

from __future__ import annotations

from custom_components.sprecord.api import parse_event
from custom_components.sprecord.dedupe import RecentEvents, SeenStreamIds


def sms(text: str, device: str = "pbx") -> object:
    """Return an SMS event."""
    return parse_event(
        {
            "device_id": device,
            "event_type": "incoming_sms",
            "payload": {"sms_src": "A", "text": text, "trunk": "GSM1", "date": 5},
        }
    )


def test_the_same_event_twice_is_a_repeat() -> None:
    recent = RecentEvents()
    assert recent.first_time(sms("a"), now=0.0)
    assert not recent.first_time(sms("a"), now=1.0)
    assert recent.first_time(sms("b"), now=1.0)
    assert recent.first_time(sms("a", device="other"), now=1.0)
    assert len(recent) == 3


def test_after_the_window_the_same_content_is_new() -> None:
    recent = RecentEvents(window=10.0)
    assert recent.first_time(sms("a"), now=0.0)
    assert recent.first_time(sms("a"), now=10.0)
    assert len(recent) == 1  # the old one was forgotten


def test_memory_is_bounded() -> None:
    recent = RecentEvents(max_events=3)
    for n in range(10):
        assert recent.first_time(sms(str(n)), now=0.0)
    assert len(recent) == 3
    assert recent.first_time(sms("0"), now=0.0)  # evicted, so new again
    assert not recent.first_time(sms("9"), now=0.0)


def test_real_clock_is_used_by_default() -> None:
    recent = RecentEvents()
    assert recent.first_time(sms("a"))
    assert not recent.first_time(sms("a"))


def test_a_replayed_stream_id_is_recognised_only_with_its_content() -> None:
    seen = SeenStreamIds(window=10.0, max_ids=3)
    assert not seen.replayed("7", sms("a"), now=0.0)
    assert seen.replayed("7", sms("a"), now=1.0)  # resumed at-least-once
    assert not seen.replayed("7", sms("b"), now=1.0)  # ids counted again
    assert not seen.replayed("", sms("b"), now=1.0)  # no id: nothing to tell
    # Long after, the same id and content is a new event, not a replay.
    assert not seen.replayed("7", sms("b"), now=20.0)
    for number in range(5):
        seen.replayed(str(number), sms("c"), now=21.0)
    assert not seen.replayed("7", sms("b"), now=21.0)  # pushed out by number
