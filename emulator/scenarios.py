"""Scenarios: scripted PBX traffic the emulator plays at a chosen speed.

A scenario is called with a random source and the number of PBXs of the key
it plays for (`pbxs`); each step names the PBX that sends it by its index in
the key's list (`Step.pbx`, 0 being the first). With one PBX a scenario plays
exactly what it played before keys could have several: the same seed gives
the same traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import itertools
import random
from typing import Any, Protocol

MOSCOW = timezone(timedelta(hours=3))


@dataclass(frozen=True)
class Step:
    """Wait `delay` seconds (at speed 1), then emit the event."""

    delay: float
    event_type: str
    payload: dict[str, Any]
    pbx: int = 0
    """The PBX that sends it: an index into the key's PBXs (0: the first)."""


class Scenario(Protocol):
    """Makes the steps of a scenario for a random source and `pbxs` PBXs."""

    def __call__(self, rng: random.Random, *, pbxs: int = 1) -> Iterator[Step]:
        """Return the steps (an endless scenario never stops)."""


def _mobile(rng: random.Random) -> str:
    """Return a plausible Russian mobile number."""
    return f"+79{rng.randint(0, 99):02d}{rng.randint(0, 9_999_999):07d}"


class _Day:
    """Builds one office day as timed events, then yields them in order."""

    def __init__(
        self,
        rng: random.Random,
        call_ids: Iterator[int],
        records: Iterator[int],
        pbx: int = 0,
    ) -> None:
        self.rng = rng
        self.call_ids = call_ids
        self.records = records
        self.pbx = pbx
        self.timeline: list[tuple[float, int, int, str, dict[str, Any]]] = []
        self._order = itertools.count()

    def at(self, t: float, event_type: str, payload: dict[str, Any]) -> None:
        """Add an event at second `t` of the day."""
        self.timeline.append((t, self.pbx, next(self._order), event_type, payload))

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


def _steps(days: Iterable[_Day], lead: float) -> Iterator[Step]:
    """Yield the events of days played at once in time order, after `lead`.

    At the same second, the first PBX's events come first.
    """
    now = -lead
    timeline = sorted(event for day in days for event in day.timeline)
    for t, pbx, _, event_type, payload in timeline:
        yield Step(max(t - now, 0.0), event_type, payload, pbx)
        now = t


def office(rng: random.Random, *, pbxs: int = 1) -> Iterator[Step]:
    """Play an office day on lines GSM1 and GSM2, again and again.

    Calls in and out to extensions 101-107: answered, missed (no answer and
    busy), answered elsewhere, two calls at once, and SMS in Russian and
    English. A day lasts about five and a half minutes at speed 1.

    With `pbxs` of 2 or more, the first PBX plays that day and each other one
    a branch office's quieter day at the same time (see `_branch_day`). The
    PBXs count call and record ids alike and all have a GSM1, as real ones
    do: on the first day, the branch's first call rings with the same call
    id on the same line as the office's first call.
    """
    first_call_id = rng.randint(100, 900)
    first_record = rng.randint(1000, 9000)
    call_ids = itertools.count(first_call_id)
    records = itertools.count(first_record)
    # Each branch has its own random source, made without drawing from
    # `rng`, so the first PBX's traffic stays what it is with one PBX.
    branches = [
        (
            pbx,
            random.Random(f"{rng.getstate()!r}/pbx{pbx}"),  # noqa: S311 (not crypto)
            itertools.count(first_call_id),
            itertools.count(first_record),
        )
        for pbx in range(1, pbxs)
    ]
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
        days = [day]
        for pbx, branch_rng, branch_call_ids, branch_records in branches:
            branch = _Day(branch_rng, branch_call_ids, branch_records, pbx)
            _branch_day(branch, first_day=first_day)
            days.append(branch)
        yield from _steps(days, lead=0.0 if first_day else 30.0)
        first_day = False


def _branch_day(day: _Day, *, first_day: bool) -> None:
    """Add a branch office's day: four calls and two SMS, GSM1 and GSM2.

    Extensions 101-104: an answered call, an outgoing one, a missed one and
    one answered elsewhere; SMS in Russian.
    """
    rng = day.rng
    j = rng.uniform
    if first_day:
        day.at(1, "startup", {})
    day.call(j(5, 7), trunk="GSM1", extension="101", ring=j(4, 8), talk=j(20, 40))
    day.sms(
        45,
        trunk="GSM1",
        sender=_mobile(rng),
        text="Здравствуйте! Машина будет у склада в 15:30.",
        iso=False,
    )
    day.call(
        j(125, 135),
        trunk="GSM1",
        extension="102",
        outgoing=True,
        ring=j(5, 9),
        talk=j(30, 50),
    )
    day.call(
        j(185, 195), trunk="GSM2", extension="101", ring=j(15, 20), status="no_answer"
    )
    day.call(
        j(225, 235),
        trunk="GSM1",
        extension="103",
        ring=4,
        talk=j(10, 20),
        elsewhere="104",
    )
    day.sms(
        300,
        trunk="GSM2",
        sender="MTS",
        text="Баланс: 312,40 руб. Пополнить: mts.ru/pay",
        iso=True,
    )


SCENARIOS: dict[str, Scenario] = {"office": office}
"""Scenario name -> a generator of steps for a random source and PBX count."""
