"""SSE parser behaviour that mutation testing (scripts/mutate) found untested.

The bounds are exact: a line or an event of exactly `max_line_length`
characters is taken, one more is refused, however the bytes are split and
however many lines and events came before.
"""

from __future__ import annotations

import pytest

from custom_components.sprecord.api import ProtocolError, SSEEvent, SSEParser
from custom_components.sprecord.api.sse import SSEOverflowError

BOUND = 16


def test_a_line_of_exactly_the_bound_is_taken_whole_or_split() -> None:
    line = b"data: 0123456789"  # 16 characters
    assert len(line) == BOUND
    whole = SSEParser(max_line_length=BOUND)
    assert whole.feed(line + b"\n\n") == [SSEEvent(data="0123456789")]
    # Split before its end, as the first line and again as a later line.
    split = SSEParser(max_line_length=BOUND)
    assert split.feed(line) == []
    assert split.feed(b"\n\n") == [SSEEvent(data="0123456789")]
    assert split.feed(line) == []
    assert split.feed(b"\n\n") == [SSEEvent(data="0123456789")]


def test_one_character_past_the_bound_is_refused_whole_or_split() -> None:
    with pytest.raises(ProtocolError, match="line longer than 16"):
        SSEParser(max_line_length=BOUND).feed(b": 0123456789abcde\n")
    parser = SSEParser(max_line_length=BOUND)
    with pytest.raises(ProtocolError, match="line longer than 16"):
        parser.feed(b": 0123456789abcde")


def test_a_long_line_that_is_not_data_is_refused() -> None:
    # A comment or an event name is bounded too, not only data.
    for line in (b": " + b"x" * 30, b"event: " + b"x" * 30):
        with pytest.raises(ProtocolError, match="SSE line longer"):
            SSEParser(max_line_length=BOUND).feed(line + b"\ndata: a\n\n")


def test_lines_split_over_many_chunks_are_bounded_one_by_one() -> None:
    # Each line is short; only together would they pass the bound.
    parser = SSEParser(max_line_length=BOUND)
    events: list[SSEEvent] = []
    for n in range(5):
        events += parser.feed(f"data: abcd{n}".encode())
        events += parser.feed(b"\n\n")
    assert [e.data for e in events] == [f"abcd{n}" for n in range(5)]


def test_event_data_of_exactly_the_bound_is_taken_event_after_event() -> None:
    # Each data line counts its text and one line feed: 10 + 1 + 4 + 1 = 16.
    parser = SSEParser(max_line_length=BOUND)
    for _ in range(3):
        assert parser.feed(b"data: 0123456789\ndata: abcd\n\n") == [
            SSEEvent(data="0123456789\nabcd")
        ]
    with pytest.raises(ProtocolError, match="event longer than 16"):
        parser.feed(b"data: 0123456789\ndata: abcde\n\n")


def test_the_parser_goes_on_after_a_too_long_line() -> None:
    # The over-long line is dropped whole; the next lines count from zero.
    parser = SSEParser(max_line_length=BOUND)
    parser.feed(b"data: 0123")
    with pytest.raises(ProtocolError, match="line longer"):
        parser.feed(b"456789abcd")
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: 0123456789") == []
    assert parser.feed(b"\n\n") == [SSEEvent(data="0123456789")]


def test_the_parser_goes_on_after_a_too_long_event() -> None:
    parser = SSEParser(max_line_length=BOUND)
    with pytest.raises(ProtocolError, match="event longer"):
        parser.feed(b"data: 0123456789\ndata: 0123456789\n")
    # The refused event's data is gone; a full-size event fits again.
    assert parser.feed(b"data: 0123456789\ndata: abcd\n\n") == [
        SSEEvent(data="0123456789\nabcd")
    ]


def test_the_resume_id_is_known_before_anything_is_read() -> None:
    # A client that reconnects and loses the stream at once resumes from it.
    parser = SSEParser(last_event_id="42")
    assert parser.last_event_id == "42"
    assert SSEParser().last_event_id == ""


def test_a_bom_is_dropped_only_at_the_start_of_the_stream() -> None:
    # U+FEFF at the start of a later chunk is text, not a byte order mark.
    bom = "\ufeff".encode()
    parser = SSEParser()
    assert parser.feed(bom + b"data: a") == []
    assert parser.feed(bom + b"b\n\n") == [SSEEvent(data="a\ufeffb")]


def test_an_overflow_says_what_was_too_long_and_hands_out_what_came_before() -> None:
    # The message is what the log shows when the stream fails; the events
    # completed before the fault in the same chunk are still handed out.
    parser = SSEParser(max_line_length=BOUND)
    with pytest.raises(SSEOverflowError) as caught:
        parser.feed(b"id: 1\ndata: a\n\n: " + b"x" * 30 + b"\n")
    assert str(caught.value) == "SSE line longer than 16 characters"
    assert caught.value.events == [SSEEvent(data="a", last_event_id="1")]
    with pytest.raises(SSEOverflowError) as caught:
        parser.feed(b"data: 0123456789\ndata: 0123456789\n")
    assert str(caught.value) == "SSE event longer than 16 characters"
    assert caught.value.events == []
