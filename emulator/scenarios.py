"""Scenarios: scripted PBX traffic the emulator plays at a chosen speed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import itertools
import random
from typing import Any

MOSCOW = timezone(timedelta(hours=3))


@dataclass(frozen=True)
class Step:
    """Wait `delay` seconds (at speed 1), then emit the event."""

    delay: float
    event_type: str
    payload: dict[str, Any]


def _mobile(rng: random.Random) -> str:
    """Return a plausible Russian mobile number."""
    return f"+79{rng.randint(0, 99):02d}{rng.randint(0, 9_999_999):07d}"


class _Day:
    """Builds one office day as timed events, then yields them in order."""

    def __init__(
        self, rng: random.Random, call_ids: Iterator[int], records: Iterator[int]
    ) -> None:
        self.rng = rng
        self.call_ids = call_ids
        self.records = records
        self.timeline: list[tuple[float, int, str, dict[str, Any]]] = []
        self._order = itertools.count()

    def at(self, t: float, event_type: str, payload: dict[str, Any]) -> None:
        """Add an event at second `t` of the day."""
        self.timeline.append((t, next(self._order), event_type, payload))

    def call(
        self,
        t: float,
        *,
        trunk: str,
        extension: str,
        outgoing: bool = False,
        ring: float = 5.0,
        talk: float | None = None,
        status: str = "success",
        elsewhere: str | None = None,
    ) -> None:
        """Add one call: start, optional answer elsewhere and talk, end."""
        call_id = next(self.call_ids)
        outside = _mobile(self.rng)
        src, dst = (extension, outside) if outgoing else (outside, extension)
        # The vendor's own examples send the id as a number at the start and
        # as text at the end; so does the emulator.
        start = {"call_id": call_id, "call_src": src, "call_dst": dst, "trunk": trunk}
        self.at(t, "outgoing_call" if outgoing else "incoming_call", start)
        end_at = t + ring
        if elsewhere is not None:
            self.at(
                t + ring * 0.8,
                "answer_elsewhere",
                {"call_id": str(call_id), "number": elsewhere},
            )
        if talk is not None:
            self.at(t + ring, "start_talk", {**start, "call_dst": elsewhere or dst})
            end_at = t + ring + talk
        self.at(
            end_at,
            "call_end",
            {
                "call_id": str(call_id),
                "record_id": next(self.records),
                "duration": round(talk) if talk is not None else 0,
                "status": status,
            },
        )

    def sms(self, t: float, *, trunk: str, sender: str, text: str, iso: bool) -> None:
        """Add an SMS; its date is written when the day is built."""
        when = datetime.now(MOSCOW) + timedelta(seconds=t)
        date = (
            when.isoformat(timespec="seconds")
            if iso
            else when.strftime("%Y-%m-%d %H:%M:%S")
        )
        self.at(
            t,
            "incoming_sms",
            {"sms_src": sender, "text": text, "trunk": trunk, "date": date},
        )

    def steps(self, lead: float) -> Iterator[Step]:
        """Yield the day's events in time order, the first after `lead`."""
        now = -lead
        for t, _, event_type, payload in sorted(self.timeline):
            yield Step(max(t - now, 0.0), event_type, payload)
            now = t


def office(rng: random.Random) -> Iterator[Step]:
    """Play an office day on lines GSM1 and GSM2, again and again.

    Calls in and out to extensions 101-107: answered, missed (no answer and
    busy), answered elsewhere, two calls at once, and SMS in Russian and
    English. A day lasts about five and a half minutes at speed 1.
    """
    call_ids = itertools.count(rng.randint(100, 900))
    records = itertools.count(rng.randint(1000, 9000))
    first_day = True
    while True:
        day = _Day(rng, call_ids, records)
        if first_day:
            day.at(0, "startup", {})
        j = rng.uniform
        day.call(3, trunk="GSM1", extension="101", ring=j(3, 6), talk=j(25, 45))
        day.sms(
            20,
            trunk="GSM2",
            sender=_mobile(rng),
            text="Добрый день! Подтверждаю встречу завтра в 11:00. Иван Петров",
            iso=True,
        )
        day.call(60, trunk="GSM2", extension="102", ring=j(15, 20), status="no_answer")
        day.call(
            95,
            trunk="GSM1",
            extension="103",
            outgoing=True,
            ring=j(4, 8),
            talk=j(40, 60),
        )
        # A second call on the other line while the first one still talks.
        day.call(110, trunk="GSM2", extension="104", ring=j(3, 5), talk=j(25, 35))
        day.call(
            175, trunk="GSM1", extension="105", ring=4, talk=j(30, 50), elsewhere="107"
        )
        day.sms(
            200,
            trunk="GSM1",
            sender="BANK",
            text="Your one-time code is 482913. Do not share it with anyone.",
            iso=False,
        )
        day.call(245, trunk="GSM2", extension="101", ring=1, status="busy")
        day.sms(
            260,
            trunk="GSM2",
            sender="OZON",
            text="Ваш заказ 51234-0007 доставлен в пункт выдачи. Код получения: 7731.",
            iso=True,
        )
        day.call(280, trunk="GSM1", extension="106", ring=j(4, 7), talk=j(15, 25))
        yield from day.steps(lead=0.0 if first_day else 30.0)
        first_day = False


SCENARIOS: dict[str, Callable[[random.Random], Iterator[Step]]] = {"office": office}
"""Scenario name -> a generator of steps for a random source."""
