"""Caller names: contacts from Home Assistant's UI and from a vCard or CSV file.

Numbers match however they are written (`phonebook_numbers`). A lookup is
a dictionary access. Reading a file is blocking work
(`read_phonebook_file()`, run in the executor); it raises `PhonebookError`
naming the line of a broken file (`phonebook_vcard`, `phonebook_csv`).
Nothing here imports Home Assistant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from .phonebook_csv import parse_csv
from .phonebook_numbers import KEY_CACHE_SIZE, NumberKeys, load_number_metadata
from .phonebook_text import (
    MAX_NAME_LENGTH,
    REASONS,
    Contact,
    PhonebookError,
    clean_name,
    decode,
)
from .phonebook_vcard import parse_vcard

__all__ = [
    "CSV_SUFFIXES",
    "KEY_CACHE_SIZE",
    "MAX_FILE_BYTES",
    "MAX_NAME_LENGTH",
    "REASONS",
    "VCARD_SUFFIXES",
    "Contact",
    "LoadedPhonebook",
    "NumberKeys",
    "Phonebook",
    "PhonebookError",
    "build_index",
    "clean_name",
    "decode",
    "load_number_metadata",
    "parse_csv",
    "parse_vcard",
    "phonebook_path",
    "read_phonebook_file",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A phonebook file larger than this is refused (10,000 contacts is ~2 MB)."""

VCARD_SUFFIXES = (".vcf", ".vcard")
CSV_SUFFIXES = (".csv",)


def build_index(
    contacts: Iterable[Contact], keys: NumberKeys
) -> tuple[dict[str, str], int]:
    """Return key -> name for the contacts, and how many numbers had no key.

    A number listed twice keeps its first name.
    """
    index: dict[str, str] = {}
    skipped = 0
    for contact in contacts:
        for number in contact.numbers:
            key = keys.key(number)
            if key is None:
                skipped += 1
            else:
                index.setdefault(key, contact.name)
    return index, skipped


class Phonebook:
    """Names for numbers: UI contacts first, then the file's."""

    def __init__(self, region: str | None) -> None:
        """Start empty."""
        self.keys = NumberKeys(region)
        self._ui: dict[str, str] = {}
        self._file: dict[str, str] = {}
        self.ui_contacts = 0
        self.file_contacts = 0
        self.file_skipped = 0
        """File numbers that could not be read as numbers (left out)."""

    def set_ui(self, contacts: Iterable[Contact]) -> None:
        """Replace the contacts managed in Home Assistant's UI."""
        contacts = list(contacts)
        self._ui, _skipped = build_index(contacts, self.keys)
        self.ui_contacts = len(contacts)

    def set_file(self, loaded: LoadedPhonebook | None) -> None:
        """Replace the file's contacts (None: no file)."""
        self._file = loaded.index if loaded else {}
        self.file_contacts = loaded.contacts if loaded else 0
        self.file_skipped = loaded.skipped if loaded else 0

    def name_for(self, number: str | None) -> str | None:
        """Return the name filed under `number`, None when it has none."""
        if not number:
            return None
        key = self.keys.key(number)
        if key is None:
            return None
        return self._ui.get(key) or self._file.get(key)

    def __len__(self) -> int:
        """Return how many numbers have a name."""
        return len(self._ui.keys() | self._file.keys())

    def as_dict(self) -> dict[str, int | str | None]:
        """Return the figures, for diagnostics (no names, no numbers)."""
        return {
            "region": self.keys.region,
            "ui_contacts": self.ui_contacts,
            "file_contacts": self.file_contacts,
            "file_numbers_skipped": self.file_skipped,
            "numbers_named": len(self),
        }


@dataclass(frozen=True, slots=True)
class LoadedPhonebook:
    """A file's contacts, indexed (built in the executor)."""

    index: dict[str, str]
    contacts: int
    skipped: int


def phonebook_path(config_dir: str | Path, name: str) -> Path:
    """Return the path of a file named relative to the configuration folder.

    Raises `PhonebookError` for a name that leaves the folder (absolute, or
    with `..`). Lexical only: `read_phonebook_file()` checks the real path.
    """
    relative = PurePath(name.strip())
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        raise PhonebookError(0, "outside_config")
    return Path(config_dir, relative)


def read_phonebook_file(
    config_dir: str | Path, name: str, region: str | None
) -> LoadedPhonebook:
    """Read and index a vCard or CSV file (blocking: run it in the executor).

    `name` is relative to `config_dir`; a link that leads out of the folder
    is refused, as is anything but a regular file (a FIFO would block the
    reading thread). Raises `PhonebookError` for a file that is missing, too
    large, of another kind, or broken (naming the line).
    """
    path = phonebook_path(config_dir, name)
    suffix = path.suffix.lower()
    if suffix not in VCARD_SUFFIXES + CSV_SUFFIXES:
        raise PhonebookError(0, "wrong_type")
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(Path(config_dir).resolve()):
            raise PhonebookError(0, "outside_config")
        if not real.is_file():
            raise PhonebookError(0, "not_a_file")
        with real.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as err:
        raise PhonebookError(0, "not_found") from err
    except OSError as err:
        raise PhonebookError(0, "unreadable") from err
    if len(data) > MAX_FILE_BYTES:
        raise PhonebookError(0, "too_large")
    text = decode(data)
    contacts = parse_vcard(text) if suffix in VCARD_SUFFIXES else parse_csv(text)
    index, skipped = build_index(contacts, NumberKeys(region))
    return LoadedPhonebook(index, len(contacts), skipped)
