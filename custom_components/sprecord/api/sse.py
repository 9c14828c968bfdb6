"""Incremental Server-Sent Events parser.

Follows the WHATWG HTML "server-sent events" interpretation rules: bytes are
decoded as UTF-8 (invalid sequences become U+FFFD, a leading BOM is dropped),
lines end in CR, LF or CRLF, and an event is dispatched on a blank line when
at least one `data` field was seen. It works on chunks of any size: a CRLF or
a multi-byte character split between two chunks is handled.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from .exceptions import ProtocolError

MAX_LINE_LENGTH = 1024 * 1024
"""Longest line (in characters) the parser buffers before giving up."""

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched server-sent event."""

    data: str
    event: str = "message"
    last_event_id: str = ""


class SSEOverflowError(ProtocolError):
    """A line or an event longer than the parser's bound.

    `events` are the events completed before the fault in the same chunk,
    in order: they were read whole, and are the caller's to handle.
    """

    def __init__(self, message: str, events: list[SSEEvent]) -> None:
        """Keep the events completed before the fault beside the message."""
        super().__init__(message)
        self.events = events


class SSEParser:
    """Turn a byte stream into `SSEEvent`s; feed it chunks as they arrive.

    `last_event_id` and `retry` (milliseconds) hold what the stream has set so
    far; a client sends the first back as `Last-Event-ID` when it reconnects.
    Pass the previous stream's `last_event_id` to carry it over a reconnect.
    """

    __slots__ = (
        "_data",
        "_data_len",
        "_decoder",
        "_event_type",
        "_id_buffer",
        "_max_line",
        "_partial",
        "_partial_len",
        "_skip_lf",
        "_started",
        "comments",
        "last_event_id",
        "retry",
    )

    def __init__(
        self, max_line_length: int = MAX_LINE_LENGTH, last_event_id: str = ""
    ) -> None:
        """Start a parser for a new stream."""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._max_line = max_line_length
        self._started = False
        self._skip_lf = False
        self._partial: list[str] = []
        self._partial_len = 0
        self._data: list[str] = []
        self._data_len = 0
        self._event_type = ""
        self._id_buffer = last_event_id
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next chunk and return the events it completed.

        Raises `SSEOverflowError` for a line or an event longer than the
        bound; the error holds the events the chunk completed before it (so
        `last_event_id` never passes an event the caller was not given).
        The parser goes on with the next chunk.
        """
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf:
            # The previous chunk ended in CR: an LF here belongs to that CRLF.
            self._skip_lf = False
            text = text.removeprefix("\n")
        if "\r" in text:
            self._skip_lf = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")

        lines = text.split("\n")
        tail = lines.pop()
        if self._partial and lines:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
            self._partial.clear()
            self._partial_len = 0

        events: list[SSEEvent] = []
        try:
            self._parse(lines, tail, events)
        except ProtocolError as err:
            # What the chunk completed before the fault goes with the error;
            # the rest of the chunk is dropped.
            raise SSEOverflowError(str(err), events) from None
        return events

    def _parse(self, lines: list[str], tail: str, events: list[SSEEvent]) -> None:
        """Apply whole lines, appending dispatched events; keep the tail."""
        for line in lines:
            if len(line) > self._max_line:
                raise ProtocolError(f"SSE line longer than {self._max_line} characters")
            if not line:
                self._dispatch(events)
            else:
                self._process_line(line)
        if tail:
            self._partial.append(tail)
            self._partial_len += len(tail)
            if self._partial_len > self._max_line:
                self._partial.clear()
                self._partial_len = 0
                raise ProtocolError(f"SSE line longer than {self._max_line} characters")

    def _process_line(self, line: str) -> None:
        """Apply one non-empty line to the event being built."""
        if line.startswith("data:"):
            # The common cases first.
            self._add_data(line[6:] if line.startswith(" ", 5) else line[5:])
            return
        if line.startswith("id: "):
            self._set_id(line[4:])
            return
        colon = line.find(":")
        if colon == 0:
            self.comments += 1
            return
        if colon < 0:
            field, value = line, ""
        else:
            field, value = line[:colon], line[colon + 1 :]
            value = value.removeprefix(" ")
        if field == "data":
            self._add_data(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            self._set_id(value)
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Any other field name is ignored, as the standard says.

    def _set_id(self, value: str) -> None:
        """Take an `id:` for the event being built (one with NUL is ignored)."""
        if "\0" not in value:
            self._id_buffer = value

    def _add_data(self, value: str) -> None:
        """Append a data line, bounding the event's size like a line's."""
        self._data_len += len(value) + 1
        if self._data_len > self._max_line:
            self._data = []
            self._data_len = 0
            raise ProtocolError(f"SSE event longer than {self._max_line} characters")
        self._data.append(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        """End the event being built; keep it only when it carried data.

        Only here does an `id:` become the id to resume from, so a half-read
        event never moves it.
        """
        self.last_event_id = self._id_buffer
        if self._data:
            events.append(
                SSEEvent(
                    data="\n".join(self._data),
                    event=self._event_type or "message",
                    last_event_id=self.last_event_id,
                )
            )
            self._data = []
            self._data_len = 0
        self._event_type = ""
