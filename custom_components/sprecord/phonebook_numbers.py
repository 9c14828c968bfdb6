"""Numbers however written, turned into the keys contacts are filed under.

`+7 916 123-45-67`, `8 (916) 123-45-67`, `79161234567` and `9161234567`
are one number (parsed with `phonenumbers`, Home Assistant's country as the
default region), and a short internal extension (`101`) matches as it is.
A number's key is cached, so an event costs one parse at most. Nothing here
imports Home Assistant.
"""

from __future__ import annotations

import re

import phonenumbers

EXTENSION_DIGITS = 6
"""Numbers of at most this many digits, without `+`, are internal extensions
or service numbers and match as they are."""
KEY_CACHE_SIZE = 4096
"""Keys of numbers seen in events kept (a bounded cache)."""

_DIGITS = re.compile(r"\d+")


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
