"""The scope text of a permission key, as read models and Kafka topics publish it.

`catalogue` for the whole catalogue, `content:<id>` for one content id; for an aspect
other than `all` it is followed by `/<aspect>`, e.g. `content:track-9/voice`. Content ids
never hold `/` (see `ledger.vocabulary.check_identifier`), so the text splits back
unambiguously. Pure: the subscriber library uses it without the ledger's database code.
"""

from __future__ import annotations

from typing import Final

from ledger.vocabulary import ALL_ASPECTS

CATALOGUE: Final = "catalogue"
"""Scope of a permission over the whole catalogue, present and future uploads."""

CONTENT_PREFIX: Final = "content:"
"""Prefix of the scope of a permission over one content id."""

ASPECT_SEPARATOR: Final = "/"
"""Separates a scope from an aspect other than `all` (content ids never hold it)."""


def scope_text(content: str | None, aspect: str = ALL_ASPECTS) -> str:
    """Return the published scope of a key: `catalogue` or `content:<id>`, `/<aspect>`.

    The aspect suffix is present only for an aspect other than `all`.
    """
    base = CATALOGUE if content is None else f"{CONTENT_PREFIX}{content}"
    return base if aspect == ALL_ASPECTS else f"{base}{ASPECT_SEPARATOR}{aspect}"


def parse_scope(text: str) -> tuple[str | None, str]:
    """Split a published scope into (content id or None for the catalogue, aspect).

    Raises ValueError naming the text if it is neither `catalogue[/aspect]` nor
    `content:<id>[/aspect]`.
    """
    base, sep, aspect = text.partition(ASPECT_SEPARATOR)
    if sep and not aspect:
        raise ValueError(f"scope {text!r}: empty aspect after {ASPECT_SEPARATOR!r}")
    aspect = aspect or ALL_ASPECTS
    if base == CATALOGUE:
        return None, aspect
    if base.startswith(CONTENT_PREFIX) and len(base) > len(CONTENT_PREFIX):
        return base[len(CONTENT_PREFIX) :], aspect
    raise ValueError(f"scope {text!r}: want 'catalogue' or 'content:<id>', optionally '/<aspect>'")
