"""The last SMS of a PBX, as the sensor shows it and as it is saved."""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any


def sms_time(date: datetime | str | None, local_zone: tzinfo) -> datetime | None:
    """Return the time an SMS is dated (None: no date that reads as one).

    A date written without a zone is the PBX's local time, read in
    `local_zone`.
    """
    if not isinstance(date, datetime):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=local_zone)


@dataclass
class SmsMessage:
    """The last SMS, as the sensor shows it."""

    sender: str
    text: str | None
    """The message; None after a restart (a text is never saved)."""
    line: str
    date: datetime | str | None
    received: datetime
    sender_name: str | None = None
    """The phonebook's name of `sender`, when it has one."""

    def as_dict(self) -> dict[str, Any]:
        """Return the SMS as JSON-friendly attributes."""
        return {
            "text": self.text,
            "sender": self.sender,
            "sender_name": self.sender_name,
            "line": self.line,
            "date": self.date.isoformat()
            if isinstance(self.date, datetime)
            else self.date,
            "received": self.received.isoformat(),
        }

    def saved(self) -> dict[str, Any]:
        """Return what is saved of the SMS: everything but its text.

        The text stays in memory only (privacy: nothing on disk holds it);
        `""` rather than no key, so that an older version reads the rest.
        """
        return {**self.as_dict(), "text": ""}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmsMessage:
        """Rebuild an SMS saved with `saved()`, without its text."""
        date = data.get("date")
        if isinstance(date, str):
            with contextlib.suppress(ValueError):  # the server's own text
                date = datetime.fromisoformat(date)
        return cls(
            sender=data["sender"],
            text=None,  # an older version saved it: not shown again
            line=data["line"],
            date=date,
            received=datetime.fromisoformat(data["received"]),
            sender_name=data.get("sender_name"),
        )
