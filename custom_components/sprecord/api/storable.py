"""Making what the server sends storable, once, as it is read.

Text is made valid Unicode (a lone UTF-16 surrogate, half an emoji, becomes
U+FFFD), integers past 64 bits become text, non-finite numbers become null,
and nesting is bounded. What comes out can be saved and serialised as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import json.scanner
import math
from typing import Any

from .exceptions import ProtocolError

MAX_NESTING = 64
"""Containers nested deeper than this in an event make it malformed: JSON
libraries stop far short of what Python's parser takes (orjson at 255)."""
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
"""Integers outside these bounds are past what JSON libraries commonly hold."""


def _valid_text(text: str) -> str:
    r"""Return `text` as valid Unicode: a lone UTF-16 surrogate becomes U+FFFD.

    JSON can carry half of a surrogate pair as an escape (`"\ud83d"`, half
    an emoji, as an SMS split inside an emoji gives); Python's parser keeps it,
    but such a string cannot be encoded, saved or sent on. A pair that came as
    two separate halves is joined; everything else is kept as it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _storable(value: Any, depth: int = 0) -> Any:
    """Return a JSON value that any store and serialiser takes, recursively.

    Text is made valid Unicode (keys too), integers past 64 bits become their
    digits as text, NaN and infinities become None. Raises `ProtocolError`
    when containers nest deeper than `MAX_NESTING`.
    """
    if isinstance(value, Mapping):
        _check_nesting(depth)
        return {
            _storable_scalar(key): _storable(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        _check_nesting(depth)
        return [_storable(item, depth + 1) for item in value]
    return _storable_scalar(value)


def _storable_scalar(value: Any) -> Any:
    """Return one JSON scalar made storable (see `_storable()`)."""
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= UINT64_MAX else _digits(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_nesting(depth: int) -> None:
    """Refuse an event whose containers nest deeper than `MAX_NESTING`."""
    if depth >= MAX_NESTING:
        raise ProtocolError(f"event is nested deeper than {MAX_NESTING} levels")


def _digits(value: int) -> str | None:
    """Return a big integer's digits, or None past Python's digit limit."""
    try:
        return str(value)
    except ValueError:
        return None


def _json_int(text: str) -> int | str:
    """Read a JSON integer the way `_storable()` keeps it."""
    value = int(text)
    return value if INT64_MIN <= value <= UINT64_MAX else str(value)


def _json_float(text: str) -> float | None:
    """Read a JSON number with a fraction the way `_storable()` keeps it."""
    value = float(text)
    return value if math.isfinite(value) else None


def _json_constant(_name: str) -> None:
    """Read `NaN`, `Infinity` and `-Infinity` as `_storable()` keeps them."""


_scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder(  # type: ignore[arg-type]  # typeshed has it as a class
        parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
    )
)
"""`json.loads()`'s own scanner, numbers made storable as they are read."""
