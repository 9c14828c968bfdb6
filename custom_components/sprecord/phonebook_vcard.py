"""Contacts of a vCard file (2.1, 3.0 and 4.0), as phones and address books export.

Folded lines and vCard 2.1 quoted-printable values are unfolded in linear
time; a broken file raises `PhonebookError` naming the line. Nothing here
imports Home Assistant.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
import quopri
import re

from .api.charset import charset_codec
from .phonebook_text import Contact, PhonebookError, clean_name, decode

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class _Property:
    """One content line of a card."""

    line: int
    name: str
    params: dict[str, list[str]]
    value: str


class _Unfolding:
    """One logical line being unfolded from physical lines, in linear time.

    The pieces are joined once at the end. The soft line break's `=` is cut
    by counting (never by copying the text read so far), and whether the
    line is quoted-printable is learned from its head (before the first
    `:`) as the pieces come.
    """

    __slots__ = ("_carry", "_cut", "_head_done", "_parts", "quoted_printable")

    _WORD = "QUOTED-PRINTABLE"

    def __init__(self, first: str) -> None:
        """Start a logical line with its first physical line."""
        self._parts: list[str] = []
        self._cut = 0
        """Characters cut off the end of the last part (soft line breaks)."""
        self._head_done = False
        self._carry = ""
        """The head's last characters upper-cased, to find the word across
        pieces."""
        self.quoted_printable = False
        self.add(first)

    def add(self, piece: str) -> None:
        """Append text to the line."""
        if not piece:
            return
        if not self._head_done:
            colon = piece.find(":")
            head = (piece if colon < 0 else piece[:colon]).upper()
            if self._WORD in self._carry + head:
                self.quoted_printable = True
            self._carry = (self._carry + head)[-len(self._WORD) :]
            self._head_done = colon >= 0
        if self._cut:
            last = self._parts[-1]
            self._parts[-1] = last[: len(last) - self._cut]
            self._cut = 0
        self._parts.append(piece)

    def ends_in_soft_break(self) -> bool:
        """Tell whether a quoted-printable line ends in `=` (continues)."""
        if not self.quoted_printable:
            return False
        parts = self._parts
        # Never runs out of parts: the head holds the word, and only `=` is
        # ever cut.
        while True:
            last = parts[-1]
            if len(last) > self._cut:
                return last[len(last) - 1 - self._cut] == "="
            parts.pop()
            self._cut = 0

    def cut_soft_break(self) -> None:
        """Drop the `=` that `ends_in_soft_break()` found."""
        self._cut += 1

    def text(self) -> str:
        """Return the unfolded line."""
        if self._cut:
            last = self._parts.pop()
            self._parts.append(last[: len(last) - self._cut])
            self._cut = 0
        return "".join(self._parts)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first physical line number, unfolded line).

    A line starting with a space or a tab continues the previous one (RFC
    6350 folding). A vCard 2.1 quoted-printable value ending in `=`
    continues on the next line (a soft line break). Linear in the text's
    length however the lines are folded.
    """
    current: _Unfolding | None = None
    start = 0
    # Only CR, LF and CRLF end a line (`str.splitlines()` would also split
    # at U+2028 or a form feed inside a note).
    for number, raw in enumerate(_LINE_BREAKS.split(text), start=1):
        if current is not None and raw[:1] in (" ", "\t"):
            current.add(raw[1:])
            continue
        if current is not None and current.ends_in_soft_break():
            current.cut_soft_break()
            current.add(raw)
            continue
        if current is not None:
            yield start, current.text()
        current, start = _Unfolding(raw), number
    if current is not None:
        yield start, current.text()


def _split_property(line_number: int, line: str) -> _Property | None:
    """Split `[group.]NAME;PARAM=VALUE:value`; None for a line that is not one.

    Exporters write lines no reader needs (an unindented line of a vCard 2.1
    photo, a stray word): they are skipped, not fatal.
    """
    in_quotes = False
    for position, char in enumerate(line):
        if char == '"':
            in_quotes = not in_quotes
        elif char == ":" and not in_quotes:
            head, value = line[:position], line[position + 1 :]
            break
    else:
        return None
    name, *raw_params = head.split(";")
    name = name.rsplit(".", 1)[-1].strip().upper()  # drop an `item1.` group
    if not name:
        return None
    params: dict[str, list[str]] = {}
    for param in raw_params:
        key, sep, values = param.partition("=")
        if not sep:  # vCard 2.1: `TEL;CELL;VOICE:` are types
            params.setdefault("TYPE", []).append(key.strip().upper())
            continue
        params.setdefault(key.strip().upper(), []).extend(
            v.strip().strip('"') for v in values.split(",")
        )
    return _Property(line_number, name, params, value)


def _decoded_value(prop: _Property) -> str:
    """Return a property's text: quoted-printable decoded, escapes undone."""
    value = prop.value
    encoding = [e.upper() for e in prop.params.get("ENCODING", [])]
    if "QUOTED-PRINTABLE" in encoding:
        raw = quopri.decodestring(value.encode("utf-8", "replace"))
        value = _decoded_bytes(prop, raw)
    return (
        value.replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
    )


def _decoded_bytes(prop: _Property, raw: bytes) -> str:
    """Decode a quoted-printable value's bytes by the property's CHARSET.

    Without a CHARSET, or with one Python does not know, the file's own
    guess decides (`decode()`). A name Python knows as something other than
    a character set (`hex`, `base64`, `rot13`, `idna` …) is refused.
    """
    charset = (prop.params.get("CHARSET") or [""])[0]
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        return decode(raw)  # no charset, or one Python lacks
    codec = charset_codec(charset)
    if codec is None:
        raise PhonebookError(prop.line, "vcard_charset")
    try:
        return raw.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError) as err:
        raise PhonebookError(prop.line, "vcard_charset") from err


def _structured_name(prop: _Property) -> str:
    """Return an `N` property (family;given;middle;…) as "given middle family"."""
    parts = [
        _decoded_value(_Property(prop.line, "N", prop.params, part.strip()))
        for part in re.split(r"(?<!\\);", prop.value)
    ]
    family, given, middle = [*parts, "", "", ""][:3]
    return " ".join(part for part in (given, middle, family) if part)


def _card_name(props: list[_Property]) -> str:
    """Return the card's name: FN, else N (given then family), else ORG."""
    for wanted in ("FN", "N", "ORG"):
        for prop in props:
            if prop.name != wanted:
                continue
            if wanted == "N":
                value = _structured_name(prop)
            else:
                value = _decoded_value(prop)
                if wanted == "ORG":
                    value = value.split(";", 1)[0]
            name = clean_name(value)
            if name:
                return name
    return ""


def _card_numbers(props: list[_Property]) -> tuple[str, ...]:
    """Return the card's telephone numbers."""
    numbers: list[str] = []
    for prop in props:
        if prop.name != "TEL":
            continue
        value = _decoded_value(prop).strip()
        if value.lower().startswith("tel:"):  # vCard 4.0: VALUE=uri
            value = value[4:].split(";", 1)[0]
        if value:
            numbers.append(value)
    return tuple(numbers)


def parse_vcard(text: str) -> list[Contact]:  # noqa: C901
    """Return the contacts of a vCard file; raise `PhonebookError` if broken.

    Cards without a name or a number are left out.
    """
    contacts: list[Contact] = []
    card: list[_Property] | None = None
    began = 0
    for number, line in _logical_lines(text):
        upper = line.strip().upper()
        if not upper:
            continue
        if upper == "BEGIN:VCARD":
            if card is not None:
                raise PhonebookError(number, "vcard_nested")
            card, began = [], number
        elif upper == "END:VCARD":
            if card is None:
                raise PhonebookError(number, "vcard_end_without_begin")
            if contact := _card_contact(card):
                contacts.append(contact)
            card = None
        elif card is None:
            raise PhonebookError(number, "vcard_outside")
        elif (prop := _split_property(number, line)) is not None and prop.name in (
            "FN",
            "N",
            "ORG",
            "TEL",
        ):
            card.append(prop)
    if card is not None:
        raise PhonebookError(began, "vcard_unended")
    return contacts


def _card_contact(card: list[_Property]) -> Contact | None:
    """Return the contact of a card; None without a name or a number."""
    name, numbers = _card_name(card), _card_numbers(card)
    return Contact(name, numbers) if name and numbers else None
