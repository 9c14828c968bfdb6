"""How long an event stream may stay silent before it is taken for dead.

The vendor's pages do not say whether the server sends keep-alives. A server
that does is learnt from the stream itself: a stream silent for several of
its intervals is dead. A server that never does sends nothing on a quiet
stream for hours, which is healthy: such a stream is kept, a dead peer is
found by TCP keepalive on the socket (`enable_tcp_keepalive()`), and only a
long silence ends it.
"""

from __future__ import annotations

from collections import deque
import contextlib
import socket
from typing import Any

KEEPALIVE_MISSES = 4
"""Keep-alive intervals a stream may miss before it is taken for dead."""
MIN_SILENCE = 30.0
"""Least silence taken for dead, whatever interval the server keeps."""
QUIET_SILENCE = 2 * 3600.0
"""Silence taken for dead from a server that was never seen to keep alive."""
UNPROBED_SILENCE = 15 * 60.0
"""The same, on a socket the kernel does not probe (no TCP keepalive): no
one else would notice a vanished peer."""
SAMPLES = 8
"""Recent keep-alive gaps the interval is taken from (their maximum)."""

TCP_KEEPIDLE = 60
"""Seconds a socket is idle before the kernel probes the peer."""
TCP_KEEPINTVL = 15
"""Seconds between the kernel's probes."""
TCP_KEEPCNT = 4
"""Unanswered probes after which the kernel gives the connection up: a dead
peer is found within TCP_KEEPIDLE + TCP_KEEPCNT * TCP_KEEPINTVL seconds."""


class SilenceWatch:
    """Learns the server's keep-alive interval and sets the read timeout.

    One watch serves the client's successive streams, so what one stream
    taught holds for the next. The interval is taken from the gaps between
    keep-alives on one stream: a single comment the server sends on connect
    teaches nothing. A stream that timed out makes the watch
    forget, so a server that stopped sending keep-alives is not torn down
    every few intervals for ever.
    """

    __slots__ = ("_gaps", "_last_keepalive", "floor", "misses", "probed", "quiet_limit")

    def __init__(
        self,
        *,
        quiet_limit: float = QUIET_SILENCE,
        misses: int = KEEPALIVE_MISSES,
        floor: float = MIN_SILENCE,
    ) -> None:
        """Start knowing nothing of the server's keep-alives."""
        self.quiet_limit = quiet_limit
        self.misses = misses
        self.floor = floor
        self._gaps: deque[float] = deque(maxlen=SAMPLES)
        self._last_keepalive: float | None = None
        self.probed = True
        """Whether the kernel probes the current stream's peer."""

    @property
    def interval(self) -> float | None:
        """Return the server's keep-alive interval; None when none was seen."""
        return max(self._gaps) if self._gaps else None

    @property
    def limit(self) -> float:
        """Return how long the stream may stay silent, in seconds."""
        quiet = (
            self.quiet_limit if self.probed else min(self.quiet_limit, UNPROBED_SILENCE)
        )
        interval = self.interval
        if interval is None:
            return quiet
        return min(max(self.misses * interval, self.floor), quiet)

    def stream_opened(self, *, probed: bool = True) -> None:
        """Note a new stream: gaps are measured within one stream only."""
        self._last_keepalive = None
        self.probed = probed

    def chunk(self, now: float, *, keepalive: bool) -> None:
        """Note a chunk read at `now`; `keepalive` when it held nothing else.

        Only keep-alive to keep-alive gaps count: events in between can only
        make a gap longer than the server's interval (the safe side), never
        shorter, whether the server keeps its timer or restarts it on writes.
        """
        if not keepalive:
            return
        if self._last_keepalive is not None:
            self._gaps.append(now - self._last_keepalive)
        self._last_keepalive = now

    def timed_out(self) -> None:
        """Forget the interval: the server may have stopped keeping alive."""
        self._gaps.clear()

    def as_dict(self) -> dict[str, float | None]:
        """Return what the watch knows, for diagnostics."""
        return {"keepalive_interval": self.interval, "silence_limit": self.limit}


def enable_tcp_keepalive(sock: Any) -> bool:
    """Have the kernel probe an idle connection; return whether it took.

    A peer that vanished (a NAT that forgot the connection, a cut cable)
    sends no FIN: without probes a quiet stream would wait for it for ever.
    Options a platform lacks are left at its defaults.
    """
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        return False
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(
        socket, "TCP_KEEPALIVE", None
    )
    for option, value in (
        (idle, TCP_KEEPIDLE),
        (getattr(socket, "TCP_KEEPINTVL", None), TCP_KEEPINTVL),
        (getattr(socket, "TCP_KEEPCNT", None), TCP_KEEPCNT),
    ):
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    return True
