"""When the link reconnects, and what its streams did: free of Home Assistant.

A stream the server accepted and that then lived a while ended because
something cut it: a proxy that ends a response silent for 25, 55 or 60 s,
a server restart, a mobile network's NAT. Every second away is a second in
which an event can be lost, so the link reconnects at once (or after the
server's `retry:`), every time. The backoff grows only for failed connects
and for streams that end almost at once (a server closing every stream on
arrival gets no tight loop); a "too many connections" answer has its own,
longer, rules. The loop in `sse_link.py` asks this policy; the benchmark's quiet
night drives the same object.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import random

BACKOFF_MIN = 1.0
BACKOFF_MAX = 300.0
BUSY_BACKOFF_MIN = 60.0
"""After a 429 another client holds the connections: wait at least this."""
BUSY_BACKOFF_MAX = 900.0
HEALTHY_STREAM_SECONDS = 5.0
"""A stream that lived this long was accepted and working: its end is a cut,
and the link reconnects at once. Well below any idle cut seen in the wild
(proxies cut silent responses after 25 s at the least, nginx after 60 s)."""

SAME_SILENCE = 0.15
"""Cuts whose silences differ by at most this share are "the same cut"."""
CUTS_TO_NOTICE = 3
"""Cuts after about the same silence in a row that make a pattern (logged once)."""
STREAMS_KEPT = 10
"""The last streams' lifetimes kept for diagnostics."""


def jitter(delay: float, rand: Callable[[], float] = random.random) -> float:
    """Spread reconnects: between half and the whole of `delay`."""
    return delay * (0.5 + rand() / 2)


class ReconnectPolicy:
    """Say how long to wait before the next connect, from what just happened."""

    def __init__(self, rand: Callable[[], float] = random.random) -> None:
        """Start with the shortest backoff; `rand` spreads the waits."""
        self._rand = rand
        self._delay = BACKOFF_MIN
        self._busy_delay = BUSY_BACKOFF_MIN

    def stream_ended(
        self, lived: float, *, events: int, retry: float | None = None
    ) -> float:
        """Return the wait after an accepted stream ended.

        `lived` is how long it was open (seconds), `events` how many new
        events it carried (kept for the callers' figures; a stream that
        ended at once backs off whatever it carried), `retry` the server's
        `retry:` in seconds (taken within our own bounds).
        """
        self._busy_delay = BUSY_BACKOFF_MIN
        if lived >= HEALTHY_STREAM_SECONDS:
            # Cut after a while: back at once, however often it happens.
            self._delay = BACKOFF_MIN
            wait = 0.0
        else:
            # Ended almost at once, events or not (a server resending its
            # last event and closing would otherwise be a loop): back off.
            wait = self._backoff()
        if retry is not None:
            wait = max(wait, min(retry, BACKOFF_MAX))
        return wait

    def connect_failed(self) -> float:
        """Return the wait after a connect that failed (network, 5xx, timeout)."""
        return self._backoff()

    def refused_busy(self, retry_after: float | None) -> float:
        """Return the wait after "too many connections" (another client is on)."""
        busy = max(BUSY_BACKOFF_MIN, retry_after or 0.0, self._delay, self._busy_delay)
        self._busy_delay = min(busy * 2, BUSY_BACKOFF_MAX)
        return jitter(busy, self._rand)

    def _backoff(self) -> float:
        wait = jitter(self._delay, self._rand)
        self._delay = min(self._delay * 2, BACKOFF_MAX)
        return wait


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One stream that ended: how long it lived and how long it was silent."""

    lived: float
    silent: float
    """Seconds from its last event (or its opening) to its end."""
    events: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the record, JSON-friendly (seconds rounded to 0.1 s)."""
        return {
            "lived": round(self.lived, 1),
            "silent": round(self.silent, 1),
            "events": self.events,
        }


class StreamHistory:
    """The link's streams over the entry's life, for the log and diagnostics.

    Times are monotonic seconds given by the caller.
    """

    def __init__(self, now: float) -> None:
        """Start disconnected at `now` (setup opens the first stream)."""
        self.recent: deque[StreamRecord] = deque(maxlen=STREAMS_KEPT)
        self.cuts = 0
        """Accepted streams that ended after living a while (not at once)."""
        self.noticed_silence: float | None = None
        """The silence after which streams are cut, once noticed (logged once)."""
        self._started = now
        self._down_since: float | None = now
        self._down_total = 0.0
        self._same_silence = 0

    def opened(self, now: float) -> None:
        """Note a stream that opened."""
        if self._down_since is not None:
            self._down_total += now - self._down_since
            self._down_since = None

    def ended(
        self, record: StreamRecord, now: float, *, cut: bool = True
    ) -> float | None:
        """Note a stream that ended; return the silence of a newly seen pattern.

        A pattern is `CUTS_TO_NOTICE` cuts in a row after about the same
        silence: it is returned once, the first time it is seen. A stream
        the integration closed itself (`cut` False: the webhook took over,
        the entry unloads) is recorded, but is no cut.
        """
        if self._down_since is None:
            self._down_since = now
        if not cut or record.lived < HEALTHY_STREAM_SECONDS:
            self._same_silence = 0
            self.recent.append(record)
            return None
        self.cuts += 1
        previous = self.recent[-1] if self.recent else None
        self.recent.append(record)
        if previous is not None and _about_same(previous.silent, record.silent):
            self._same_silence += 1
        else:
            self._same_silence = 1
        if self._same_silence >= CUTS_TO_NOTICE and self.noticed_silence is None:
            self.noticed_silence = record.silent
            return record.silent
        return None

    def disconnected_seconds(self, now: float) -> float:
        """Return the time spent without a stream since the entry started."""
        down = self._down_total
        if self._down_since is not None:
            down += now - self._down_since
        return down

    def as_dict(self, now: float) -> dict[str, object]:
        """Return the figures, JSON-friendly."""
        total = max(now - self._started, 0.0)
        down = self.disconnected_seconds(now)
        return {
            "recent_streams": [record.as_dict() for record in self.recent],
            "cuts": self.cuts,
            "idle_cut_after": None
            if self.noticed_silence is None
            else round(self.noticed_silence, 1),
            "disconnected_seconds": round(down, 1),
            "connected_share": round(1 - down / total, 4) if total else None,
        }


def _about_same(first: float, second: float) -> bool:
    """Tell whether two silences are about the same length."""
    return abs(first - second) <= SAME_SILENCE * max(first, second)
