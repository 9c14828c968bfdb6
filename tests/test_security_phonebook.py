"""The phonebook against hostile files: CHARSET names and folded lines."""

from __future__ import annotations

import codecs
from pathlib import Path
import quopri

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord import phonebook_vcard
from custom_components.sprecord.const import CONF_PHONEBOOK_FILE, DOMAIN
from custom_components.sprecord.phonebook import (
    Contact,
    PhonebookError,
    parse_vcard,
    read_phonebook_file,
)
from emulator import SpRecordEmulator

NOT_CHARSETS = [
    "hex",
    "base64",
    "rot13",
    "zlib",
    "bz2",
    "uu",
    "quopri",
    "idna",
    "undefined",
    "punycode",
    "unicode_escape",
    "raw-unicode-escape",
]


def card(charset: str, encoded: str = "=41=6E=6E") -> str:
    """Return a file of one card whose QP name has this CHARSET, on line 3."""
    return (
        "BEGIN:VCARD\nVERSION:2.1\n"
        f"FN;CHARSET={charset};ENCODING=QUOTED-PRINTABLE:{encoded}\n"
        "TEL:+79160000001\nEND:VCARD\n"
    )


# --- a CHARSET that is no character set ------------------------------------


@pytest.mark.parametrize("charset", NOT_CHARSETS)
def test_a_charset_that_is_no_character_set_names_its_line(charset: str) -> None:
    with pytest.raises(PhonebookError) as caught:
        parse_vcard(card(charset))
    assert caught.value.code == "vcard_charset"
    assert caught.value.line == 3
    assert str(caught.value) == "line 3: CHARSET names no character set (e.g. UTF-8)"


def test_a_structured_name_with_a_bad_charset_names_its_line() -> None:
    text = (
        "BEGIN:VCARD\nN;CHARSET=hex;ENCODING=QUOTED-PRINTABLE:=41;=42\n"
        "TEL:+79160000001\nEND:VCARD\n"
    )
    with pytest.raises(PhonebookError, match=r"^line 2: CHARSET"):
        parse_vcard(text)


@pytest.mark.parametrize("charset", ["UTF-8", "utf8", "KOI8-R", "NO-SUCH-CHARSET", ""])
def test_character_sets_and_unknown_names_still_read(charset: str) -> None:
    assert parse_vcard(card(charset)) == [Contact("Ann", ("+79160000001",))]


def test_windows_1251_reads() -> None:
    encoded = quopri.encodestring("Иван".encode("cp1251")).decode()
    assert parse_vcard(card("WINDOWS-1251", encoded))[0].name == "Иван"


def test_a_codec_that_fails_on_the_bytes_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A codec the check lets through that still refuses the value's bytes.
    monkeypatch.setattr(phonebook_vcard, "charset_codec", lambda _name: "idna")
    with pytest.raises(PhonebookError, match=r"^line 3: CHARSET"):
        parse_vcard(card("utf-8", "=D0=98"))


@pytest.mark.parametrize("charset", ["hex", "idna", "undefined"])
def test_reading_the_file_raises_only_phonebook_error(
    tmp_path: Path, charset: str
) -> None:
    (tmp_path / "contacts.vcf").write_text(card(charset))
    with pytest.raises(PhonebookError, match=r"^line 3: CHARSET"):
        read_phonebook_file(tmp_path, "contacts.vcf", "RU")


async def test_a_bad_charset_becomes_a_repair_issue_not_a_failed_setup(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    await hass.async_add_executor_job(
        Path(hass.config.path("contacts.vcf")).write_text, card("idna")
    )
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_PHONEBOOK_FILE: "contacts.vcf"}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"phonebook_invalid_{config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["error"] == (
        "line 3: CHARSET names no character set (e.g. UTF-8)"
    )
    assert await hass.config_entries.async_unload(config_entry.entry_id)


# --- quoted-printable soft line breaks -------------------------------------


def qp_card(name: str, width: int, charset: str = "UTF-8") -> str:
    """Return a card whose QP name and note are soft-broken every `width` bytes."""
    encoded = ["=%02X" % byte for byte in name.encode(charset)]  # noqa: UP031
    chunks = ["".join(encoded[i : i + width]) for i in range(0, len(encoded), width)]
    folded = "=\r\n".join(chunks)
    return (
        "BEGIN:VCARD\r\nVERSION:2.1\r\n"
        f"FN;CHARSET={charset};ENCODING=QUOTED-PRINTABLE:{folded}\r\n"
        f"NOTE;ENCODING=QUOTED-PRINTABLE:{folded}\r\n"
        "TEL:+79160000001\r\nEND:VCARD\r\n"
    )


@pytest.mark.parametrize("width", [1, 3, 7, 76])
def test_soft_line_breaks_unfold_to_the_value(width: int) -> None:
    name = "Анна-Мария Иванова-Петрова " * 3
    [contact] = parse_vcard(qp_card(name, width))
    assert contact.name == name.strip()[:100].strip()


def test_unfolding_keeps_line_numbers_and_what_is_not_a_soft_break() -> None:
    lines = list(
        phonebook_vcard._logical_lines(
            "BEGIN:VCARD\n"
            "NOTE;ENCODING=QUOTED-\n"  # folded inside the head
            " PRINTABLE:a=\n"
            "b==\n"  # one `=` cut, the empty line joins; the next `=` is
            "\n"  # then last, so it is cut too and `c` joins
            "c\n"
            "NOTE:plain=\n"  # not quoted-printable: `=` is text
            "X;quoted-printable;Y=\n"  # no `:` yet: the head is all of it
            "Z:z=\n"
            "\n"
            "=\n"  # only an `=`, in no quoted-printable line: text
            "END:VCARD"
        )
    )
    assert lines == [
        (1, "BEGIN:VCARD"),
        (2, "NOTE;ENCODING=QUOTED-PRINTABLE:abc"),
        (7, "NOTE:plain="),
        (8, "X;quoted-printable;YZ:z"),
        (11, "="),
        (12, "END:VCARD"),
    ]


def test_soft_breaks_that_cut_a_whole_line_away() -> None:
    # A line of only `=` is cut to nothing; the empty line after it then
    # looks back at the line before, which no longer ends in `=`.
    text = "NOTE;ENCODING=QUOTED-PRINTABLE:a=\n=\n\nb\nX;QUOTED-PRINTABLE=\n=\n\n"
    assert list(phonebook_vcard._logical_lines(text)) == [
        (1, "NOTE;ENCODING=QUOTED-PRINTABLE:a"),
        (4, "b"),
        (5, "X;QUOTED-PRINTABLE"),
        (8, ""),
    ]


def test_a_megabyte_of_soft_breaks_unfolds_whole() -> None:
    value = "=41" * 350_000  # ~1 MB, a soft break after every character
    folded = "=\r\n".join(value[i : i + 3] for i in range(0, len(value), 3))
    text = (
        "BEGIN:VCARD\r\n"
        f"FN;ENCODING=QUOTED-PRINTABLE:{folded}\r\n"
        "TEL:+79160000001\r\nEND:VCARD\r\n"
    )
    assert len(text) > 1_000_000
    lines = list(phonebook_vcard._logical_lines(text))
    assert [number for number, _line in lines] == [1, 2, 350_002, 350_003, 350_004]
    assert lines[1][1] == "FN;ENCODING=QUOTED-PRINTABLE:" + value
    assert parse_vcard(text)[0].name == "A" * 100


def test_the_charsets_tried_are_python_codecs() -> None:
    # The list above names codecs Python has, not typing errors.
    for name in NOT_CHARSETS:
        codecs.lookup(name)
