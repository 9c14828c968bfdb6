"""The text of a phonebook file: its bytes decoded, its names cleaned.

What the vCard and CSV readers share: the contact they yield, and the
error of a file that cannot be read, naming its line. Nothing here imports
Home Assistant.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
import re

MAX_NAME_LENGTH = 100

_SPACES = re.compile(r"\s+")

REASONS: dict[str, str] = {
    "not_found": "file not found",
    "not_a_file": "not a regular file",
    "unreadable": "the file cannot be read",
    "too_large": "the file is larger than 16 MB",
    "wrong_type": "not a .vcf or .csv file",
    "outside_config": "the file must be in the configuration folder",
    "vcard_outside": "text outside BEGIN:VCARD … END:VCARD",
    "vcard_nested": "a card begins before the previous one ended",
    "vcard_unended": "a card that begins here does not end",
    "vcard_end_without_begin": "END:VCARD without BEGIN:VCARD",
    "vcard_charset": "CHARSET names no character set (e.g. UTF-8)",
    "csv_empty": "the file is empty",
    "csv_no_name_column": "no name column in the header (e.g. Name)",
    "csv_no_phone_column": "no phone column in the header (e.g. Phone)",
    "csv_fields": "more filled fields than the header has",
    "csv_invalid": "not valid CSV (e.g. a quote not closed)",
}
"""What each error code means, in English (for logs; the UI translates the
code)."""


class PhonebookError(Exception):
    """A phonebook file that cannot be read.

    `code` is a key of `REASONS` (translated in the UI); `line` is 1-based,
    0 when the file as a whole is at fault.
    """

    def __init__(self, line: int, code: str) -> None:
        """Name the line and what is wrong with it."""
        reason = REASONS[code]
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.code = code


@dataclass(frozen=True, slots=True)
class Contact:
    """A name and the numbers it is known by."""

    name: str
    numbers: tuple[str, ...]


def clean_name(name: str) -> str:
    """Return a name as shown: valid text, one space between words, bounded."""
    text = name.encode("utf-8", "replace").decode("utf-8", "replace")
    text = "".join(ch for ch in text if ch.isprintable() or ch == " ")
    return _SPACES.sub(" ", text).strip()[:MAX_NAME_LENGTH]


def decode(data: bytes) -> str:
    """Return a file's text: UTF-16 with a BOM, UTF-8, else Windows-1251.

    Russian Excel saves CSV in Windows-1251; every byte decodes there, so
    the fallback never fails.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")  # Outlook's "Unicode" CSV
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251", "replace")
