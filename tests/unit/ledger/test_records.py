"""The log record of an event, and its canonical JSON, against the RFC 8785 reference."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.events import (
    EVENT_TYPES,
    ConsentGranted,
    Entry,
    SubjectErased,
    TermsPublished,
    subject_stream_id,
    terms_stream_id,
)
from ledger.merkle import hash_leaf
from ledger.records import COMMON_FIELDS, RecordError, canonical_json, leaf_hash_of, record_of

WHEN = datetime(2025, 5, 14, 9, 30, 0, 123456, tzinfo=UTC)
SEALED = {"alg": "AES-256-GCM", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "c2VjcmV0"}

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def grant_entry(position: int = 7) -> Entry:
    event = ConsentGranted(
        originator_id=subject_stream_id("artist-1"),
        originator_version=3,
        timestamp=WHEN,
        event_id=uuid4(),
        effective_at=datetime(2025, 1, 1, tzinfo=UTC),
        subject="artist-1",
        purpose="ai-generative-training",
        party="*",
        content_ids=["track-1", "track-2"],
        aspect="voice",
        expires_at=None,
        evidence={"channel": "web", "sealed": SEALED},
    )
    return Entry(position, event)


@given(JSON_VALUES)
@settings(max_examples=300, deadline=None)
def test_canonical_json_is_byte_for_byte_the_rfc8785_reference(value: Any) -> None:
    try:
        want = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        with pytest.raises(RecordError):
            canonical_json(value)
        return
    assert canonical_json(value) == want


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code points
        {"n": 1.0, "m": 1e21, "k": -0.0},  # ECMAScript number text
        {"big": 2**53 - 1, "nested": [{"z": "\u0000\u001f\u007f\u2028"}]},
    ],
)
def test_canonical_json_handles_the_cases_where_sorted_orjson_is_not_jcs(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_an_integer_beyond_ijson_range_has_no_canonical_form() -> None:
    with pytest.raises(RecordError, match="RFC 8785"):
        canonical_json({"n": 2**53})


def test_record_carries_the_common_fields_and_every_event_field() -> None:
    entry = grant_entry()
    record = record_of(entry, 6)
    assert list(record)[: len(COMMON_FIELDS)] == list(COMMON_FIELDS)
    assert record["leaf_index"] == 6
    assert record["position"] == 7
    assert record["event_id"] == str(entry.event.event_id)
    assert record["type"] == "ConsentGranted"
    assert record["subject"] == "artist-1"
    assert record["recorded_at"] == "2025-05-14T09:30:00.123456Z"
    assert record["effective_at"] == "2025-01-01T00:00:00.000000Z"
    assert record["stream_id"] == str(subject_stream_id("artist-1"))
    assert record["stream_version"] == 3
    own = {f.name for f in dataclasses.fields(entry.event)} - {
        "originator_id",
        "originator_version",
        "timestamp",
    }
    unset = {f for f in entry.event.omitted_when_none if getattr(entry.event, f) is None}
    assert own - unset <= set(record)
    assert record["evidence"] == {"channel": "web", "sealed": SEALED}


def test_fields_added_for_rights_holders_are_left_out_of_the_record_until_set() -> None:
    entry = grant_entry()
    assert not {"actor", "model", "conditions"} & set(record_of(entry, 0))
    granted = entry.event
    assert isinstance(granted, ConsentGranted)
    event = dataclasses.replace(
        granted, actor="label-1", model="m1", conditions=["credit the singer"]
    )
    record = record_of(Entry(entry.position, event), 0)
    assert (record["actor"], record["model"], record["conditions"]) == (
        "label-1",
        "m1",
        ["credit the singer"],
    )


def test_terms_publication_record_has_a_null_subject() -> None:
    event = TermsPublished(
        originator_id=terms_stream_id("2025-05"),
        originator_version=1,
        timestamp=WHEN,
        event_id=uuid4(),
        effective_at=WHEN,
        version="2025-05",
        effective_from=datetime(2025, 5, 14, tzinfo=UTC),
        clauses=[{"purpose": "ai-training", "default": "denied"}],
        document_sha256=None,
    )
    record = record_of(Entry(1, event), 0)
    assert record["subject"] is None
    assert record["effective_from"] == "2025-05-14T00:00:00.000000Z"


def test_leaf_hash_is_sha256_of_zero_byte_and_jcs_of_the_record() -> None:
    record = record_of(grant_entry(), 0)
    assert leaf_hash_of(record) == hash_leaf(rfc8785.dumps(record))


def test_same_entry_and_index_always_give_the_same_record_and_hash() -> None:
    entry = grant_entry()
    assert orjson.dumps(record_of(entry, 3)) == orjson.dumps(record_of(entry, 3))
    assert leaf_hash_of(record_of(entry, 3)) != leaf_hash_of(record_of(entry, 4))


def test_every_event_type_renders_without_field_collisions() -> None:
    for cls in EVENT_TYPES.values():
        names = {f.name for f in dataclasses.fields(cls)}
        assert not names & (set(COMMON_FIELDS) - {"event_id", "subject", "effective_at"})


def test_a_naive_instant_is_refused() -> None:
    event = SubjectErased(
        originator_id=subject_stream_id("a"),
        originator_version=1,
        timestamp=datetime(2025, 1, 1),  # naive: the point of the test
        event_id=uuid4(),
        effective_at=WHEN,
        subject="a",
        reason=None,
    )
    with pytest.raises(RecordError, match="no zone"):
        record_of(Entry(1, event), 0)
