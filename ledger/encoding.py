"""Encode the ledger's bytes one way each: RFC 8785 canonical JSON and strict base64.

The one home of both rules. Canonical JSON is what leaf hashes, checkpoint and manifest
signatures and idempotency digests cover; base64 (RFC 4648 §4, standard alphabet, with
padding) is how keys, signatures, note blobs and sealed evidence are written. Decoding
is strict and canonical: exactly one text per value, so a signed field cannot be
re-encoded into a second accepted form. Every value our own code ever wrote is the
canonical encoding, so strictness refuses no export, checkpoint or note we produced.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import orjson
import rfc8785

from ledger.errors import LedgerError

__all__ = [
    "JCS_MAX_INTEGER",
    "Base64Error",
    "RecordError",
    "b64decode",
    "b64encode",
    "canonical_json",
]

JCS_MAX_INTEGER: Final = 2**53 - 1  # RFC 8785 §3.2.2.3: integers are IEEE 754 doubles
_BMP_PRIVATE_USE: Final = "\ue000"  # from here up, UTF-16 and code-point order disagree


class RecordError(LedgerError):
    """Signal a value that cannot be rendered as a log record (it has no RFC 8785 form)."""

    title = "Event cannot be rendered as a log record"


class Base64Error(ValueError):
    """Signal text that is not canonical standard base64; the message says got/want."""


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 (JCS) serialisation of a JSON value, as UTF-8 bytes.

    orjson with sorted keys writes byte for byte what JCS writes when the value holds
    no floats, no integer beyond ±(2**53 - 1) and no object key with a character at
    or above U+E000 (where UTF-16 order, which JCS sorts by, departs from code-point
    order); that fast path is checked against the reference implementation in the
    tests. Anything else goes to the `rfc8785` reference. Raises RecordError if the
    value has no JCS form (an integer out of range, NaN, a non-string key).
    """
    if _orjson_writes_jcs(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as error:
            raise RecordError(f"value has no JSON form: {error}") from None
    try:
        data: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as error:
        raise RecordError(f"value has no RFC 8785 form: {error}") from None
    return data


def b64encode(data: bytes) -> str:
    """Return data in standard base64 with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Return the bytes of canonical standard base64 text (RFC 4648 §4, padded).

    Refuses characters outside the alphabet, missing padding and non-zero padding bits
    (a second spelling of the same bytes) with Base64Error.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Base64Error(f"got {text!r}, want base64 ({error})") from None
    if b64encode(data) != text:
        raise Base64Error(f"got {text!r}, want canonical base64")
    return data


def _orjson_writes_jcs(value: Any) -> bool:
    """Tell whether orjson's sorted output of value is exactly its JCS form (see above).

    Iterative, with exact type tests: this runs once per record on every path (log,
    export, verify), so it is written for speed.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -JCS_MAX_INTEGER <= item <= JCS_MAX_INTEGER:
                return False
        elif kind is dict:
            try:
                joined = "".join(item)  # raises TypeError for a key that is not a str
            except TypeError:
                return False
            if not joined.isascii() and max(joined) >= _BMP_PRIVATE_USE:
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False  # floats (JCS uses ECMAScript number text) and anything else
    return True
