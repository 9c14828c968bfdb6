"""The phonebook on its own: numbers however written, vCard and CSV files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from custom_components.sprecord import phonebook as phonebook_module
from custom_components.sprecord.phonebook import (
    KEY_CACHE_SIZE,
    REASONS,
    Contact,
    NumberKeys,
    Phonebook,
    PhonebookError,
    clean_name,
    decode,
    parse_csv,
    parse_vcard,
    read_phonebook_file,
)

FILES = Path(__file__).parent / "phonebooks"

# --- numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "+7 916 123-45-67",
        "8 (916) 123-45-67",
        "79161234567",
        "9161234567",
        "+7(916)1234567",
        "8-916-123-45-67",
    ],
)
def test_one_russian_number_however_written(written: str) -> None:
    assert NumberKeys("RU").key(written) == "+79161234567"


def test_extensions_match_as_they_are() -> None:
    keys = NumberKeys("RU")
    assert keys.key("101") == "ext:101"
    assert keys.key(" 101 ") == "ext:101"
    assert keys.key("101") != keys.key("0101")
    assert keys.is_valid("101")


def test_another_countrys_number_needs_its_code() -> None:
    keys = NumberKeys("RU")
    assert keys.key("+1 (555) 123-4567") == "+15551234567"
    assert keys.key("+44 20 7946 0958") == "+442079460958"
    assert keys.key("+44 20 7946 0958") == NumberKeys("GB").key("020 7946 0958")


def test_without_a_region_only_international_numbers_parse() -> None:
    keys = NumberKeys(None)
    assert keys.key("+7 916 123-45-67") == "+79161234567"
    # Kept as digits: it still matches the same digits written otherwise.
    assert keys.key("8 (916) 123-45-67") == "raw:89161234567"
    assert keys.key("8-916-123-45-67") == "raw:89161234567"
    assert not keys.is_valid("8 (916) 123-45-67")


def test_what_is_no_number() -> None:
    keys = NumberKeys("RU")
    assert keys.key("") is None
    assert keys.key("unknown") is None
    assert keys.key("+7 916 12") == "raw:791612"  # too short to be a number
    assert not keys.is_valid("+7 916 12")
    assert not keys.is_valid("anonymous")


def test_the_key_cache_is_bounded() -> None:
    keys = NumberKeys("RU")
    for n in range(KEY_CACHE_SIZE + 10):
        keys.key(f"+7916{n:07d}")
    assert len(keys._cache) == KEY_CACHE_SIZE
    assert keys.key("+79160000005") == "+79160000005"  # evicted, found again


def test_the_ui_wins_and_a_number_keeps_its_first_name() -> None:
    book = Phonebook("RU")
    book.set_ui([Contact("Mum", ("8 916 123 45 67",))])
    file = phonebook_module.build_index(
        [
            Contact("Mother (file)", ("+79161234567",)),
            Contact("Office", ("+7 495 111-22-33",)),
            Contact("Office too", ("84951112233", "hello")),
        ],
        NumberKeys("RU"),
    )
    book.set_file(phonebook_module.LoadedPhonebook(file[0], 3, file[1]))
    assert book.name_for("+79161234567") == "Mum"
    assert book.name_for("+74951112233") == "Office"
    assert book.name_for("+79990000000") is None
    assert book.name_for(None) is None
    assert book.name_for("") is None
    assert book.name_for("withheld") is None
    assert len(book) == 2
    assert book.as_dict() == {
        "region": "RU",
        "ui_contacts": 1,
        "file_contacts": 3,
        "file_numbers_skipped": 1,
        "numbers_named": 2,
    }
    book.set_file(None)
    assert book.name_for("+74951112233") is None
    assert book.as_dict()["file_contacts"] == 0


def test_names_are_cleaned() -> None:
    assert clean_name("  Anna \t Petrova\n") == "Anna Petrova"
    assert clean_name("Bad\x00\x1b[31mname") == "Bad[31mname"
    assert clean_name("x" * 500) == "x" * 100
    assert clean_name("\ud800Lone surrogate") == "?Lone surrogate"


# --- vCard --------------------------------------------------------------------


def test_a_phones_export_with_three_contacts() -> None:
    """One with two numbers, one Cyrillic (quoted-printable, vCard 2.1)."""
    contacts = parse_vcard((FILES / "three.vcf").read_text(encoding="utf-8"))
    assert contacts == [
        Contact("Mum", ("+7 916 123-45-67", "8 (495) 111-22-33")),
        Contact("Пётр Иванов", ("89031234567",)),
        Contact("Reception", ("101",)),
    ]


def test_vcard_versions_and_their_ways() -> None:
    text = (
        "BEGIN:VCARD\r\n"
        "VERSION:4.0\r\n"
        "FN:Ann\\, the neighbour\r\n"
        'TEL;VALUE=uri;TYPE="voice,cell":tel:+7-938-111-22-33;ext=5\r\n'
        "PHOTO;ENCODING=b;TYPE=JPEG:MIICajCCAdOgAwIBAgICBEUwDQYJKoZIhvcNAQEEBQAw\r\n"
        " dzELMAkGA1UEBhMCVVMxLDAqBgNVBAoTI05ldHNjYXBlIENvbW11bmljYXRpb25z\r\n"
        "END:VCARD\r\n"
        "\r\n"
        "BEGIN:VCARD\r\n"
        "VERSION:3.0\r\n"
        "N:Smith;John;Q;;\r\n"
        "item1.TEL;type=pref:+1 555\r\n"
        " 123 4567\r\n"
        "item1.X-ABLabel:work\r\n"
        "END:VCARD\r\n"
        "BEGIN:VCARD\n"
        "ORG:Pizza Napoli;Delivery\n"
        "TEL;WORK;VOICE:8 800 555-35-35\n"
        "END:VCARD\n"
        "BEGIN:VCARD\n"
        "FN:Nobody's number\n"
        "EMAIL:nobody@example.com\n"
        "END:VCARD\n"
        "BEGIN:VCARD\n"
        "TEL:+7 916 000 00 00\n"
        "END:VCARD\n"
    )
    assert parse_vcard(text) == [
        Contact("Ann, the neighbour", ("+7-938-111-22-33",)),
        Contact("John Q Smith", ("+1 555123 4567",)),
        Contact("Pizza Napoli", ("8 800 555-35-35",)),
    ]


def test_lines_no_reader_needs_are_skipped() -> None:
    """An unindented vCard 2.1 photo, a note with a line separator in it."""
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Anna\r\n"
        "PHOTO;ENCODING=BASE64;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD\r\n"
        "2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIs\r\n"
        "\r\n"
        ";stray\r\n"
        "NOTE:first\u2028second\x0cthird\r\n"
        "TEL;CELL:+79160000004\r\nEND:VCARD\r\n"
    )
    assert parse_vcard(text) == [Contact("Anna", ("+79160000004",))]


def test_numbers_with_an_extension_match_the_number() -> None:
    keys = NumberKeys("RU")
    assert keys.key("+7 495 123-45-67 доб. 123") == "+74951234567"
    assert keys.key("8 495 123-45-67 доб 5") == "+74951234567"
    assert keys.key("+1 (425) 555-0100 x123") == "+14255550100"


def test_quoted_printable_in_another_charset() -> None:
    name = "Ольга".encode("cp1251")
    encoded = "".join(f"={byte:02X}" for byte in name)
    text = (
        "BEGIN:VCARD\nVERSION:2.1\n"
        f"FN;CHARSET=WINDOWS-1251;ENCODING=QUOTED-PRINTABLE:{encoded}\n"
        "TEL;CELL:+79160000001\nEND:VCARD\n"
        "BEGIN:VCARD\nVERSION:2.1\n"
        f"FN;CHARSET=NO-SUCH-CHARSET;ENCODING=QUOTED-PRINTABLE:=41=6E=6E\n"
        "TEL;CELL:+79160000002\nEND:VCARD\n"
    )
    assert [c.name for c in parse_vcard(text)] == ["Ольга", "Ann"]
    # No charset at all: UTF-8 when it is, else Windows-1251.
    text = (
        f"BEGIN:VCARD\nFN;ENCODING=QUOTED-PRINTABLE:{encoded}\nTEL:+79160000005\n"
        "END:VCARD\n"
    )
    assert [c.name for c in parse_vcard(text)] == ["Ольга"]


@pytest.mark.parametrize(
    ("text", "line", "code"),
    [
        ("BEGIN:VCARD\nFN:x\nTEL:1\n", 1, "vcard_unended"),
        ("FN:x\n", 1, "vcard_outside"),
        ("BEGIN:VCARD\nFN:x\nEND:VCARD\nhello\n", 4, "vcard_outside"),
        ("BEGIN:VCARD\nFN:x\nBEGIN:VCARD\n", 3, "vcard_nested"),
        ("\n\nEND:VCARD\n", 3, "vcard_end_without_begin"),
    ],
)
def test_a_broken_vcard_names_its_line(text: str, line: int, code: str) -> None:
    with pytest.raises(PhonebookError) as caught:
        parse_vcard(text)
    assert (caught.value.line, caught.value.code) == (line, code)
    assert str(caught.value) == f"line {line}: {REASONS[code]}"


# --- CSV ----------------------------------------------------------------------


def test_a_google_contacts_export() -> None:
    text = (
        "Name,Given Name,Family Name,Phone 1 - Type,Phone 1 - Value,"
        "Phone 2 - Type,Phone 2 - Value\n"
        "Mum,,,Mobile,+7 916 123-45-67 ::: 8 (495) 111-22-33,,\n"
        ",Ivan,Petrov,Work,+7 903 123-45-67,Home,\n"
        ",,,Mobile,+7 900 000-00-00,,\n"
        "\n"
        'Office,,,"Work",,"Main","8 800 555-35-35"\n'
    )
    assert parse_csv(text) == [
        Contact("Mum", ("+7 916 123-45-67", "8 (495) 111-22-33")),
        Contact("Ivan Petrov", ("+7 903 123-45-67",)),
        Contact("Office", ("8 800 555-35-35",)),
    ]


def test_todays_google_contacts_export() -> None:
    """No Name column, a company-only contact, look-alike phone columns."""
    text = (
        "First Name,Middle Name,Last Name,Phonetic First Name,Organization Name,"
        "Government ID Number,Phone 1 - Label,Phone 1 - Value\n"
        "Ivan,,Petrov,Ivan,,123-45-6789,Mobile,+7 903 123-45-67\n"
        ",,,,ACME Corp,,Work,8 (495) 111-22-33\n"
        "Anna,Maria,Smith,,,,Home,+44 20 7946 0958\n"
    )
    assert parse_csv(text) == [
        Contact("Ivan Petrov", ("+7 903 123-45-67",)),
        Contact("ACME Corp", ("8 (495) 111-22-33",)),
        Contact("Anna Maria Smith", ("+44 20 7946 0958",)),
    ]


def test_separators_a_tie_and_a_trailing_one() -> None:
    text = "Имя;Телефон, мобильный\nМама;8 916 123-45-67;\n"
    assert parse_csv(text) == [Contact("Мама", ("8 916 123-45-67",))]
    assert parse_csv("Фамилия,Имя,Номер\nПетров,Иван,101,,\n") == [
        Contact("Иван Петров", ("101",))
    ]


def test_outlooks_unicode_csv() -> None:
    data = "Name\tMobile Phone\nМама\t+79161234567\n".encode("utf-16")
    assert parse_csv(decode(data)) == [Contact("Мама", ("+79161234567",))]


def test_a_russian_excel_file() -> None:
    """Semicolons and Windows-1251, as Excel saves CSV in Russia."""
    data = "Имя;Телефон\nМама;8 916 123-45-67\nОфис;101\n".encode("cp1251")
    assert parse_csv(decode(data)) == [
        Contact("Мама", ("8 916 123-45-67",)),
        Contact("Офис", ("101",)),
    ]


def test_an_outlook_export_with_a_bom() -> None:
    data = "\ufeffFirst Name\tLast Name\tMobile Phone\nAnna\tPetrova\t+79160000003\n"
    assert parse_csv(decode(data.encode())) == [
        Contact("Anna Petrova", ("+79160000003",))
    ]


@pytest.mark.parametrize(
    ("text", "line", "code"),
    [
        ("", 1, "csv_empty"),
        ("Phone,Type\n+79160000000,x\n", 1, "csv_no_name_column"),
        ("Name,Email\nAnn,a@b.c\n", 1, "csv_no_phone_column"),
        ("Name,Phone\nAnn,1,2\n", 2, "csv_fields"),
        ("Name;Phone\nAnn;1;;\nBob;2;x\n", 3, "csv_fields"),
        ('Name,Phone\nAnn,+7916\nBob,"+7 903\n', 3, "csv_invalid"),
    ],
)
def test_a_broken_csv_names_its_line(text: str, line: int, code: str) -> None:
    with pytest.raises(PhonebookError) as caught:
        parse_csv(text)
    assert (caught.value.line, caught.value.code) == (line, code)


# --- files --------------------------------------------------------------------


def test_a_file_is_read_and_indexed() -> None:
    loaded = read_phonebook_file(FILES, "three.vcf", "RU")
    assert loaded.contacts == 3
    assert loaded.skipped == 0
    assert loaded.index == {
        "+79161234567": "Mum",
        "+74951112233": "Mum",
        "+79031234567": "Пётр Иванов",
        "ext:101": "Reception",
    }


def code_of(config_dir: Path, name: str) -> str:
    """Return the error code of reading `name` in `config_dir`."""
    with pytest.raises(PhonebookError) as caught:
        read_phonebook_file(config_dir, name, "RU")
    assert caught.value.line == 0
    assert str(caught.value) == REASONS[caught.value.code]
    return caught.value.code


def test_files_that_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert code_of(tmp_path, "missing.vcf") == "not_found"
    assert code_of(tmp_path, "contacts.txt") == "wrong_type"
    (tmp_path / "folder.csv").mkdir()
    assert code_of(tmp_path, "folder.csv") == "not_a_file"
    os.mkfifo(tmp_path / "pipe.vcf")  # would block the reading thread
    assert code_of(tmp_path, "pipe.vcf") == "not_a_file"
    big = tmp_path / "big.csv"
    big.write_text("Name,Phone\n" + "Ann,+79160000000\n" * 10)
    monkeypatch.setattr(phonebook_module, "MAX_FILE_BYTES", 100)
    assert code_of(tmp_path, "big.csv") == "too_large"

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert code_of(tmp_path, "big.csv") == "unreadable"


def test_a_file_must_stay_in_the_configuration_folder(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    outside = tmp_path / "secrets.vcf"
    outside.write_text("BEGIN:VCARD\nFN:x\nTEL:+79160000000\nEND:VCARD\n")
    for name in ("../secrets.vcf", "/etc/hosts.vcf", "", "  "):
        assert code_of(config, name) == "outside_config"
    (config / "contacts.vcf").symlink_to(outside)  # a link that leads out
    assert code_of(config, "contacts.vcf") == "outside_config"
    (config / "sub").mkdir()
    (config / "sub" / "inside.vcf").symlink_to(config / "contacts.vcf")
    assert code_of(config, "sub/inside.vcf") == "outside_config"
    # A link that stays inside is followed.
    (config / "real.vcf").write_text(outside.read_text())
    (config / "link.vcf").symlink_to(config / "real.vcf")
    assert read_phonebook_file(config, "link.vcf", "RU").contacts == 1


def test_a_csv_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "contacts.CSV"
    path.write_bytes("Имя;Телефон\nМама;8 916 123-45-67\n".encode("cp1251"))
    assert read_phonebook_file(tmp_path, "contacts.CSV", "RU").index == {
        "+79161234567": "Мама"
    }
