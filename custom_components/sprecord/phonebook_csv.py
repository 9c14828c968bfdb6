"""Contacts of a CSV file with a header row, as Google, Outlook and Excel export.

A broken file raises `PhonebookError` naming the line. Nothing here imports
Home Assistant.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
import io
import re

from .phonebook_text import Contact, PhonebookError, clean_name

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
