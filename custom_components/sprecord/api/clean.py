"""What text from outside may hold once it is read: no controls, a bounded length.

A caller chooses its number, an SMS sender its sender id and text, and anyone
who knows a webhook's URL the whole event. Such text reaches the logbook, the
dashboard, notifications and the log. Here it loses what could make it look
like something else there: control characters (a newline that starts a
forged log line, an escape sequence) and format characters, the bidi controls
among them (U+202E turns `+7 916 …` around on screen, U+200E/U+200F and
U+061C hide in a name, U+2066–U+2069 isolate runs). It is also cut to a
length that no honest value reaches.

`parse.parse_event()` cleans every text field with these once, as it reads
an event; what is shown or stored later is cleaned already. `for_log()` is
for what is logged without having been parsed (error texts that quote a
server).
"""

from __future__ import annotations

from functools import lru_cache
import re
import unicodedata

MAX_NUMBER = 64
"""A phone number, an SMS sender id, an extension or a call id: the longest
phone number is 15 digits, an alphanumeric sender id 11 characters."""
MAX_LINE_NAME = 64
"""A line (trunk) name: `GSM1` on the PBX, room for a SIP trunk's name."""
MAX_STATUS = 32
"""A call status the vendor may add one day (`no_answer` today)."""
MAX_DATE_TEXT = 64
"""An SMS date kept as the server's text because it could not be read."""
MAX_SMS_TEXT = 10_000
"""An SMS: a long message of 10 parts is ~1,530 characters; a cap far past
that keeps every real one whole and stops a body of megabytes."""
MAX_PBX_ID = 128
"""A PBX id: the vendor's are 68 characters of base64."""
MAX_EVENT_TYPE = 64
"""The name of an event type (`incoming_call`)."""
MAX_LOGGED = 200
"""Characters of an outside text written into one log message."""

ELLIPSIS = "…"
"""Ends a text that was cut."""

_PBX_ID = re.compile(r"[A-Za-z0-9+/=_-]+")
"""Base64 (plain and URL-safe, with padding), as PBX ids are."""
_REMOVED_IN_FIELDS = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
"""Controls, format characters (the bidi controls, zero-width ones, tags),
line and paragraph separators, and lone surrogates."""
_KEPT_IN_MESSAGES = frozenset("\n\t\u200c\u200d")
"""A message keeps its line breaks and tabs, and the zero-width (non-)joiners
that emoji and several scripts are written with."""


def _cut(text: str, limit: int) -> str:
    """Return `text` cut to `limit` characters, the last one an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def clean_field(text: str, limit: int = MAX_NUMBER) -> str:
    """Return a one-line field without controls and format characters, bounded.

    For numbers, sender ids, extensions, ids and statuses: every control
    (newlines too), format character (bidi controls, zero-width characters)
    and line or paragraph separator is removed; spaces stay.
    """
    if not text.isprintable():
        text = "".join(
            char
            for char in text
            if unicodedata.category(char) not in _REMOVED_IN_FIELDS
        )
    return _cut(text, limit)


def clean_message(text: str, limit: int = MAX_SMS_TEXT) -> str:
    r"""Return a message's text without controls but with its lines, bounded.

    Line breaks become `\n` (from `\r\n`, `\r`, U+2028 and U+2029) and
    tabs stay; other controls and format characters go, the bidi controls
    among them. The zero-width joiner and non-joiner stay (emoji, scripts).
    """
    if not text.replace("\n", "").replace("\t", "").isprintable():
        text = (
            text.replace("\r\n", "\n")
            .replace("\r", "\n")
            .replace("\u2028", "\n")
            .replace("\u2029", "\n")
        )
        text = "".join(
            char
            for char in text
            if char in _KEPT_IN_MESSAGES
            or unicodedata.category(char) not in _REMOVED_IN_FIELDS
        )
    return _cut(text, limit)


@lru_cache(maxsize=256)
def is_name(text: str, limit: int) -> bool:
    """Tell whether `text` can name a line or an event type as it is.

    Printable (no controls, format characters or separators other than the
    space) and at most `limit` characters; not blank.
    """
    return 0 < len(text) <= limit and text.isprintable() and not text.isspace()


@lru_cache(maxsize=64)
def is_pbx_id(text: str) -> bool:
    """Tell whether `text` can be a PBX id: base64 characters, bounded."""
    return len(text) <= MAX_PBX_ID and _PBX_ID.fullmatch(text) is not None


def for_log(value: object, limit: int = MAX_LOGGED) -> str:
    r"""Return outside text fit for one log line: escaped and bounded.

    Controls and format characters show as escapes (`\n`, `\u202e`), so a
    text cannot start a forged line or turn the line around; past `limit`
    characters it is cut.
    """
    text = str(value)
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    escaped = "".join(
        char
        if char.isprintable() or char == " "
        else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
    )
    return f"{escaped}{ELLIPSIS}" if cut else escaped
