"""Checkpoints: the signed checkpoint.json of BRIEF §5 and the C2SP signed note."""

from __future__ import annotations

import base64
import hashlib
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import (
    Checkpoint,
    CheckpointFormatError,
    CheckpointSignatureError,
    KeyFormat,
    SigningKey,
    UntrustedKeyError,
    load_signing_key_or_create,
    note_key_id,
    note_verifier_key,
    sign_checkpoint,
    sign_note,
    signed_body,
    to_signed_note,
    verify_note,
    verify_signed_checkpoint,
    verify_signed_note,
)

ROOT = hashlib.sha256(b"root").digest()
WHEN = datetime(2026, 11, 26, 17, 0, 0, 123456, tzinfo=UTC)
ORIGIN = "ledger.example.com/consent"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def checkpoint() -> Checkpoint:
    return Checkpoint("consent-ledger/test", 42, ROOT, WHEN)


def test_signed_body_is_jcs_of_the_four_fields_with_hex_root_and_z_timestamp(
    checkpoint: Checkpoint,
) -> None:
    assert signed_body(checkpoint) == (
        b'{"log_id":"consent-ledger/test","root_hash":"' + ROOT.hex().encode() + b'",'
        b'"timestamp":"2026-11-26T17:00:00.123456Z","tree_size":42}'
    )


def test_checkpoint_timestamp_with_an_offset_is_kept_as_the_same_instant_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    cp = Checkpoint("log", 0, ROOT, datetime(2026, 11, 26, 18, 0, tzinfo=paris))
    assert cp.timestamp == datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    assert cp.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timestamp": datetime(2026, 11, 26, 17, 0)}, "got no zone"),
        ({"tree_size": -1}, "tree_size: got -1"),
        ({"tree_size": 2**53}, "tree_size: got 9007199254740992"),
        ({"root_hash": b"short"}, "root_hash: got 5 bytes, want 32"),
        ({"log_id": ""}, "log_id: got ''"),
    ],
)
def test_checkpoint_refuses_fields_that_break_its_preconditions(
    fields: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"log_id": "log", "tree_size": 1, "root_hash": ROOT, "timestamp": WHEN}
    with pytest.raises(CheckpointFormatError, match=message):
        Checkpoint(**(values | fields))


def test_signed_checkpoint_json_has_exactly_the_fields_of_the_brief(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    obj = sign_checkpoint(checkpoint, key).to_json()
    assert obj == {
        "log_id": "consent-ledger/test",
        "tree_size": 42,
        "root_hash": ROOT.hex(),
        "timestamp": "2026-11-26T17:00:00.123456Z",
        "public_key": key.public_key_b64(),
        "signature": obj["signature"],
    }
    assert len(base64.b64decode(key.public_key_b64())) == 32
    assert len(base64.b64decode(str(obj["signature"]))) == 64


def test_signed_checkpoint_verifies_against_the_trusted_key(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    obj = sign_checkpoint(checkpoint, key).to_json()
    assert verify_signed_checkpoint(obj, key.public_key_b64()) == checkpoint
    assert verify_signed_checkpoint(obj, None) == checkpoint


def test_a_flipped_signature_byte_fails_verification(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    obj = sign_checkpoint(checkpoint, key).to_json()
    signature = bytearray(base64.b64decode(str(obj["signature"])))
    signature[10] ^= 0x01
    obj["signature"] = base64.b64encode(bytes(signature)).decode()
    with pytest.raises(CheckpointSignatureError, match="does not verify under public key"):
        verify_signed_checkpoint(obj, key.public_key_b64())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 43),
        ("root_hash", hashlib.sha256(b"other").hexdigest()),
        ("timestamp", "2026-11-26T17:00:00.123457Z"),
        ("log_id", "consent-ledger/other"),
    ],
)
def test_a_changed_signed_field_fails_verification(
    checkpoint: Checkpoint, key: SigningKey, field: str, value: object
) -> None:
    obj: dict[str, object] = dict(sign_checkpoint(checkpoint, key).to_json())
    obj[field] = value
    with pytest.raises(CheckpointSignatureError):
        verify_signed_checkpoint(obj, key.public_key_b64())


def test_a_checkpoint_signed_by_another_key_is_untrusted(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    other = SigningKey.generate()
    obj = sign_checkpoint(checkpoint, other).to_json()
    with pytest.raises(UntrustedKeyError) as caught:
        verify_signed_checkpoint(obj, key.public_key_b64())
    assert f"got {other.public_key_b64()}, want {key.public_key_b64()}" in str(caught.value)


def test_a_swapped_embedded_key_fails_even_without_a_trusted_key(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    obj = sign_checkpoint(checkpoint, key).to_json()
    obj["public_key"] = SigningKey.generate().public_key_b64()
    with pytest.raises(CheckpointSignatureError):
        verify_signed_checkpoint(obj, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signature": None}, "missing signature"),
        ({"tree_size": "42"}, "tree_size: got str"),
        ({"tree_size": True}, "tree_size: got bool"),
        ({"root_hash": "AB" * 32}, "want 64 lowercase hex digits"),
        ({"timestamp": "2026-11-26T17:00:00+00:00"}, "want ISO 8601 UTC"),
        ({"public_key": "not base64!"}, "public_key: got 'not base64!', want base64"),
        ({"public_key": base64.b64encode(b"x" * 31).decode()}, "got 31 bytes, want 32"),
    ],
)
def test_malformed_checkpoint_json_is_refused_with_the_field_named(
    checkpoint: Checkpoint, key: SigningKey, change: dict[str, object], message: str
) -> None:
    obj: dict[str, object] = dict(sign_checkpoint(checkpoint, key).to_json())
    for field, value in change.items():
        if value is None:
            del obj[field]
        else:
            obj[field] = value
    with pytest.raises(CheckpointFormatError, match=message):
        verify_signed_checkpoint(obj, key.public_key_b64())


@pytest.mark.parametrize("key_format", ["pem", "raw"])
def test_a_saved_key_loads_back_and_is_readable_by_its_owner_only(
    tmp_path: Path, key: SigningKey, key_format: KeyFormat
) -> None:
    path = tmp_path / f"checkpoint.{key_format}"
    key.save(path, key_format=key_format)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public_key_raw() == key.public_key_raw()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_saving_a_key_never_overwrites_an_existing_file(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "checkpoint.pem"
    key.save(path)
    with pytest.raises(FileExistsError):
        SigningKey.generate().save(path)
    assert SigningKey.load(path).public_key_raw() == key.public_key_raw()


def test_load_signing_key_or_create_generates_on_first_run_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "checkpoint.pem"
    first = load_signing_key_or_create(path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert load_signing_key_or_create(path).public_key_raw() == first.public_key_raw()


def test_a_key_file_that_is_neither_pem_nor_a_raw_seed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.key"
    path.write_bytes(b"x" * 10)
    with pytest.raises(CheckpointFormatError, match="got 10 bytes that are not a PEM"):
        SigningKey.load(path)


def test_signing_key_repr_shows_the_public_key_only(key: SigningKey) -> None:
    assert repr(key) == f"SigningKey(public_key={key.public_key_b64()!r})"


def test_signed_note_follows_the_c2sp_checkpoint_layout(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    note = to_signed_note(checkpoint, key, ORIGIN)
    text, signature_line = note.split("\n\n")
    assert text == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}"
    name, blob = signature_line.removeprefix("\N{EM DASH} ").removesuffix("\n").split(" ")
    assert name == ORIGIN
    raw = base64.b64decode(blob)
    key_hash = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + key.public_key_raw()).digest()[:4]
    assert raw[:4] == key_hash == note_key_id(ORIGIN, key.public_key_raw())
    assert len(raw) == 4 + 64


def test_signed_note_round_trips_origin_size_and_root(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    note = to_signed_note(checkpoint, key, ORIGIN)
    assert verify_signed_note(note, ORIGIN, key.public_key_raw()) == (ORIGIN, 42, ROOT)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n42\n", "\n43\n"),
        (f"{ORIGIN}\n", "ledger.example.com/other\n"),
        (base64.b64encode(ROOT).decode(), base64.b64encode(hashlib.sha256(b"x").digest()).decode()),
    ],
)
def test_a_tampered_signed_note_fails_verification(
    checkpoint: Checkpoint, key: SigningKey, old: str, new: str
) -> None:
    note = to_signed_note(checkpoint, key, ORIGIN)
    text, signatures = note.split("\n\n")
    with pytest.raises(CheckpointSignatureError, match="does not verify over the note text"):
        verify_signed_note(
            text.replace(old, new, 1) + "\n\n" + signatures, ORIGIN, key.public_key_raw()
        )


def test_a_signed_note_with_a_flipped_signature_byte_fails(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    note = to_signed_note(checkpoint, key, ORIGIN)
    text, line = note.split("\n\n")
    prefix, blob = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 0x80
    tampered = f"{text}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointSignatureError):
        verify_signed_note(tampered, ORIGIN, key.public_key_raw())


def test_a_signed_note_without_a_signature_of_the_trusted_key_is_rejected(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    note = to_signed_note(checkpoint, SigningKey.generate(), ORIGIN)
    with pytest.raises(UntrustedKeyError, match=f"want one by {ORIGIN}"):
        verify_signed_note(note, ORIGIN, key.public_key_raw())


def test_signatures_of_other_keys_in_a_note_are_ignored(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    note = to_signed_note(checkpoint, key, ORIGIN)
    text = note.split("\n\n")[0] + "\n"
    witness_line = sign_note(text, SigningKey.generate(), "witness.example/w1").split("\n\n")[1]
    assert verify_signed_note(note + witness_line, ORIGIN, key.public_key_raw())[1] == 42


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("o\n1\nAAAA\n", "no blank line"),
        ("o\n1\nAAAA\n\n\N{EM DASH} o AAAA", "no final newline"),
        ("o\n1\nAAAA\n\n- o AAAAAAAA\n", "want '— <key name> <base64>'"),
        ("o\n1\n\tAAAA\n\n\N{EM DASH} o AAAAAAAA\n", "control character"),
    ],
)
def test_malformed_signed_notes_are_refused(key: SigningKey, note: str, message: str) -> None:
    with pytest.raises(CheckpointFormatError, match=message):
        verify_signed_note(note, "o", key.public_key_raw())


def test_origin_that_cannot_be_a_note_key_name_is_refused(
    checkpoint: Checkpoint, key: SigningKey
) -> None:
    with pytest.raises(CheckpointFormatError, match="want non-empty without spaces or '\\+'"):
        to_signed_note(checkpoint, key, "my log")


# The example of Go's golang.org/x/mod/sumdb/note package documentation (BSD licence):
# a known answer that ties our note format to the reference implementation.
GO_NOTE_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_NOTE_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_NOTE_TEXT + "\n\N{EM DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_note_signing_reproduces_the_go_sumdb_note_example_byte_for_byte() -> None:
    go_key = SigningKey.from_seed(GO_NOTE_SEED)
    assert note_verifier_key("PeterNeumann", go_key.public_key_raw()) == GO_NOTE_VERIFIER
    assert sign_note(GO_NOTE_TEXT, go_key, "PeterNeumann") == GO_NOTE
    assert verify_note(GO_NOTE, "PeterNeumann", go_key.public_key_raw()) == GO_NOTE_TEXT
