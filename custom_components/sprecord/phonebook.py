"""Caller names: contacts from Home Assistant's UI and from a vCard or CSV file.

Numbers match however they are written: `+7 916 123-45-67`,
`8 (916) 123-45-67`, `79161234567` and `9161234567` are one number (parsed
with `phonenumbers`, Home Assistant's country as the default region), and a
short internal extension (`101`) matches as it is. A lookup is a dictionary
access; a number's key is cached, so an event costs one parse at most.

Reading a file is blocking work (`read_phonebook_file()`, run in the
executor); it raises `PhonebookError` naming the line of a broken file.
Nothing here imports Home Assistant.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
import csv
from dataclasses import dataclass
import io
from pathlib import Path, PurePath
import quopri
import re

import phonenumbers

from .api.autodial import charset_codec

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A phonebook file larger than this is refused (10,000 contacts is ~2 MB)."""
MAX_NAME_LENGTH = 100
EXTENSION_DIGITS = 6
"""Numbers of at most this many digits, without `+`, are internal extensions
or service numbers and match as they are."""
KEY_CACHE_SIZE = 4096
"""Keys of numbers seen in events kept (a bounded cache)."""

VCARD_SUFFIXES = (".vcf", ".vcard")
CSV_SUFFIXES = (".csv",)

_DIGITS = re.compile(r"\d+")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
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


class NumberKeys:
    """Turn a number, however written, into the key it is filed under."""

    def __init__(self, region: str | None) -> None:
        """Use `region` (an ISO country code) for numbers without `+`."""
        self.region = region.upper() if region else None
        self._cache: dict[str, str | None] = {}

    def key(self, number: str) -> str | None:
        """Return the number's key (E.164 when it parses); None for no number."""
        cache = self._cache
        try:
            return cache[number]
        except KeyError:
            pass
        key = self._key(number)
        if len(cache) >= KEY_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[number] = key
        return key

    def is_valid(self, number: str) -> bool:
        """Tell whether `number` is an extension or a possible phone number."""
        key = self.key(number)
        return key is not None and not key.startswith("raw:")

    def _key(self, number: str) -> str | None:
        digits = "".join(_DIGITS.findall(number))
        if not digits:
            return None
        international = number.lstrip().startswith("+")
        if not international and len(digits) <= EXTENSION_DIGITS:
            return f"ext:{digits}"
        try:
            # As written: phonenumbers strips an extension ("x123", "доб. 5").
            parsed = phonenumbers.parse(number, self.region)
        except phonenumbers.NumberParseException:
            return f"raw:{digits}"
        if not phonenumbers.is_possible_number(parsed):
            return f"raw:{digits}"
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def load_number_metadata() -> None:
    """Load the numbering plans of every country (blocking: disk reads)."""
    phonenumbers.PhoneMetadata.load_all()


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


# --- vCard (2.1, 3.0, 4.0) ------------------------------------------------------


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


# --- CSV ------------------------------------------------------------------------

_NAME_HEADERS = (
    "name",
    "display name",
    "full name",
    "contact",
    "имя и фамилия",
    "фио",
    "контакт",
    "название",
)
_GIVEN_HEADERS = ("first name", "given name", "middle name", "имя", "отчество")
_FAMILY_HEADERS = ("last name", "family name", "фамилия")
_COMPANY_HEADERS = (
    "organization name",
    "organization 1 - name",
    "company",
    "организация",
    "компания",
)
_PHONE_WORDS = frozenset(
    {"phone", "telephone", "mobile", "cell", "tel", "телефон", "мобильный", "тел"}
)
_PHONE_TITLES = frozenset({"number", "номер", "phone number", "номер телефона"})
_NOT_PHONE_WORDS = frozenset({"type", "label", "тип"})


@dataclass(slots=True)
class _Columns:
    """Which columns of a CSV file hold what."""

    names: list[int]
    name_parts: list[int]
    companies: list[int]
    phones: list[int]


def _columns(header: list[str]) -> _Columns:
    """Return the columns of names, name parts, companies and numbers.

    A phone column is one whose title has a phone word in it (`Phone 1 -
    Value`, `Mobile Phone`, `Телефон`), not a type or label column, nor
    a word that merely contains one (`Phonetic Last Name`, `ID Number`).
    """
    columns = _Columns([], [], [], [])
    for column, raw in enumerate(header):
        title = clean_name(raw).lower()
        words = set(re.findall(r"\w+", title))
        if title in _NAME_HEADERS:
            columns.names.append(column)
        elif title in _GIVEN_HEADERS or title in _FAMILY_HEADERS:
            columns.name_parts.append(column)
        elif title in _COMPANY_HEADERS:
            columns.companies.append(column)
        elif (words & _PHONE_WORDS or title in _PHONE_TITLES) and not (
            words & _NOT_PHONE_WORDS
        ):
            columns.phones.append(column)
    # Family name after the given one, whatever the file's order.
    columns.name_parts.sort(
        key=lambda c: clean_name(header[c]).lower() in _FAMILY_HEADERS
    )
    return columns


def _row_contact(row: list[str], columns: _Columns) -> Contact | None:
    """Return the contact of a CSV row; None without a name or a number.

    The name is the name column's, else the name parts', else the company's.
    """

    def joined(indexes: list[int]) -> str:
        return clean_name(" ".join(row[c] for c in indexes if c < len(row)))

    name = joined(columns.names) or joined(columns.name_parts)
    name = name or joined(columns.companies)
    numbers = tuple(
        number.strip()
        for column in columns.phones
        if column < len(row)
        for number in re.split(r":::|\n", row[column])
        if number.strip()
    )
    return Contact(name, numbers) if name and numbers else None


def parse_csv(text: str) -> list[Contact]:
    """Return the contacts of a CSV file with a header row.

    The header names the columns (`Name`, or `First Name`/`Last Name`, and
    one or more columns whose title says phone; English or Russian, as
    Google, Outlook and Excel export them). `,`, `;` and tabs separate.
    """
    first_line = text.split("\n", 1)[0]
    # `;` first: Excel's separator where `,` is the decimal comma wins a tie.
    delimiter = max((";", "\t", ","), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise PhonebookError(1, "csv_empty")
        columns = _columns(header)
        if not (columns.names or columns.name_parts or columns.companies):
            raise PhonebookError(1, "csv_no_name_column")
        if not columns.phones:
            raise PhonebookError(1, "csv_no_phone_column")
        contacts: list[Contact] = []
        for row in reader:
            if any(cell.strip() for cell in row[len(header) :]):
                # A trailing separator is harmless; a shifted row is not.
                raise PhonebookError(reader.line_num, "csv_fields")
            if contact := _row_contact(row, columns):
                contacts.append(contact)
    except csv.Error as err:
        raise PhonebookError(reader.line_num, "csv_invalid") from err
    return contacts
