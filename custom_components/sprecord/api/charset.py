"""Character sets: which names are one, and decoding by them.

An answer of the auto-dial API, or a phonebook file, names its character set;
only a codec that decodes text, with U+FFFD for what it cannot read, is one.
"""

from __future__ import annotations

import codecs

NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "undefined", "unicode-escape"}
)
"""Python text codecs that are not a character set: host names, escapes, and
one that refuses everything."""
_CHARSET_SAMPLE = bytes(range(256))


def charset_codec(name: str) -> str | None:
    """Return the codec of a character set named by a file or an answer.

    None when Python has no codec of that name, or its codec is not a
    character set: not a text encoding (`hex`, `base64`, `rot13`, `zlib`),
    or one that cannot decode any bytes with replacement (`idna`,
    `undefined`) or is not meant for text at all (`punycode`, the escapes).
    """
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not info._is_text_encoding or info.name in NOT_CHARSETS:  # noqa: SLF001
        return None
    try:  # what a codec added later needs to be of use: decoding with U+FFFD
        _CHARSET_SAMPLE.decode(info.name, "replace")
    except (LookupError, UnicodeError, ValueError):
        return None
    return info.name


def _text(raw: bytes, charset: str | None) -> str:
    """Decode an answer by its charset (UTF-8 when none or not a charset)."""
    codec = (charset_codec(charset) if charset else None) or "utf-8"
    try:
        return raw.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError):
        return raw.decode("utf-8", "replace")
