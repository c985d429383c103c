# long module: the offline verifier reads as one checklist, file by file, for auditors
"""Verify an audit export offline: only its files, the documented format and a public key.

The format itself (files, filter, manifest) is `ledger.export_format`; this module
checks an export against it. `verify_export` streams the two line files in lockstep,
in constant memory, and stops at the first failure with a VerificationError naming
the file, line, leaf_index and event_id.
"""

from __future__ import annotations

import hashlib
import re
from binascii import a2b_hex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    ed25519_verifies,
    verify_signed_checkpoint,
    verify_signed_note,
)
from ledger.encoding import RecordError, b64decode, b64encode, canonical_json
from ledger.export_format import (
    CHECKPOINT_FILE,
    CONSISTENCY_FILE,
    EVENTS_FILE,
    EVIDENCE_FILE,
    EXPORT_FORMAT,
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    NOTE_FILE,
    PROOFS_FILE,
    README_FILE,
    REQUIRED_RECORD_FIELDS,
    ExportFilter,
    VerificationError,
    manifest_signed_body,
    parse_public_key,
    sign_manifest,
)
from ledger.export_format import decode_b64 as _b64
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    OnePassChecker,
    ProofError,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CONSISTENCY_FILE",
    "EVENTS_FILE",
    "EVIDENCE_FILE",
    "EXPORT_FORMAT",
    "MANIFEST_CONTEXT",
    "MANIFEST_FILE",
    "NOTE_FILE",
    "PROOFS_FILE",
    "README_FILE",
    "ExportFilter",
    "VerificationError",
    "VerifyReport",
    "manifest_signed_body",
    "parse_public_key",
    "sign_manifest",
    "verify_export",
]

PROGRESS_EVERY: Final = 1000  # records between two progress callbacks


@dataclass(frozen=True)
class VerifyReport:
    """What a successful verification established."""

    checkpoint: Checkpoint
    records: int
    filter: ExportFilter
    key_trusted: bool  # False: checked against the key the export itself carries
    consistent_from: int | None  # tree size of the earlier checkpoint checked, if any
    note_checked: bool

    def to_json(self) -> dict[str, Any]:
        """Return the report as `verify --json` prints it."""
        return {
            "verified": True,
            "log_id": self.checkpoint.log_id,
            "tree_size": self.checkpoint.tree_size,
            "root_hash": self.checkpoint.root_hash.hex(),
            "records": self.records,
            "complete": self.filter.complete,
            "filter": self.filter.to_json(),
            "key_trusted": self.key_trusted,
            "consistent_from": self.consistent_from,
            "note_checked": self.note_checked,
        }


def verify_export(
    directory: Path,
    *,
    public_key: bytes | None = None,
    since_checkpoint: Mapping[str, Any] | None = None,
    since_public_key: bytes | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check every record, proof and signature of the export in `directory`.

    With `public_key` (raw 32 bytes, obtained out of band) every signature must be by
    that key; with None the key the export carries is used, which proves integrity
    but not origin (the report says so). With `since_checkpoint` (an earlier
    checkpoint.json object) the export's tree must extend the earlier one, proven by
    consistency.json; it must be signed by the export's key, or by `since_public_key`
    when the log's signing key was rotated in between. `progress` is called with the
    number of records checked so far.
    Raises VerificationError at the first failure.
    """
    trusted_b64 = b64encode(public_key) if public_key is not None else None
    checkpoint_obj = _read_json_object(directory / CHECKPOINT_FILE)
    try:
        checkpoint = verify_signed_checkpoint(checkpoint_obj, trusted_b64)
    except CheckpointError as error:
        raise VerificationError(f"{CHECKPOINT_FILE}: {error}") from None
    key_raw = b64decode(str(checkpoint_obj["public_key"]))  # verified canonical just above
    note_checked = _verify_note(directory / NOTE_FILE, checkpoint, key_raw)
    export_filter, manifest_records = _verify_manifest(directory, checkpoint, key_raw)
    consistent_from = None
    if since_checkpoint is not None:
        consistent_from = _verify_since(
            directory, since_checkpoint, checkpoint, since_public_key or key_raw
        )
    records = _verify_records(directory, checkpoint, export_filter, progress)
    if records != manifest_records:
        raise VerificationError(
            f"{MANIFEST_FILE} records: got {manifest_records}, want {records} "
            f"(the lines of {EVENTS_FILE})"
        )
    return VerifyReport(
        checkpoint,
        records,
        export_filter,
        key_trusted=public_key is not None,
        consistent_from=consistent_from,
        note_checked=note_checked,
    )


def _verify_note(path: Path, checkpoint: Checkpoint, key_raw: bytes) -> bool:
    """Check checkpoint.note, if present, against checkpoint.json; return whether present."""
    if not path.exists():
        return False
    try:
        note = path.read_text(encoding="utf-8")
        origin, size, root = verify_signed_note(note, checkpoint.log_id, key_raw)
    except (CheckpointError, UnicodeDecodeError) as error:
        raise VerificationError(f"{NOTE_FILE}: {error}") from None
    if (origin, size, root) != (checkpoint.log_id, checkpoint.tree_size, checkpoint.root_hash):
        raise VerificationError(
            f"{NOTE_FILE}: got origin {origin!r}, size {size}, root {root.hex()}; want "
            f"{checkpoint.log_id!r}, {checkpoint.tree_size}, {checkpoint.root_hash.hex()} "
            f"({CHECKPOINT_FILE})"
        )
    return True


def _verify_manifest(
    directory: Path, checkpoint: Checkpoint, key_raw: bytes
) -> tuple[ExportFilter, int]:
    """Check manifest.json's signature and its agreement with the checkpoint."""
    manifest = _read_json_object(directory / MANIFEST_FILE)
    if manifest.get("format") != EXPORT_FORMAT:
        raise VerificationError(
            f"{MANIFEST_FILE} format: got {manifest.get('format')!r}, want {EXPORT_FORMAT!r}"
        )
    if manifest.get("public_key") != b64encode(key_raw):
        raise VerificationError(
            f"{MANIFEST_FILE} public_key: got {manifest.get('public_key')!r}, want the "
            f"checkpoint's key {b64encode(key_raw)}"
        )
    signature = _b64(str(manifest.get("signature", "")), f"{MANIFEST_FILE} signature")
    try:
        body = manifest_signed_body(manifest)
    except RecordError as error:
        raise VerificationError(f"{MANIFEST_FILE}: {error.detail}") from None
    if not ed25519_verifies(key_raw, signature, body):
        raise VerificationError(
            f"{MANIFEST_FILE} signature: got a signature that does not verify under "
            f"public key {b64encode(key_raw)}"
        )
    for name, want in (
        ("log_id", checkpoint.log_id),
        ("tree_size", checkpoint.tree_size),
        ("root_hash", checkpoint.root_hash.hex()),
    ):
        if manifest.get(name) != want:
            raise VerificationError(
                f"{MANIFEST_FILE} {name}: got {manifest.get(name)!r}, want {want!r} "
                f"({CHECKPOINT_FILE})"
            )
    export_filter = ExportFilter.from_json(manifest.get("filter"))
    if manifest.get("complete") is not export_filter.complete:
        raise VerificationError(
            f"{MANIFEST_FILE} complete: got {manifest.get('complete')!r}, want "
            f"{export_filter.complete} (the filter says so)"
        )
    records = manifest.get("records")
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise VerificationError(f"{MANIFEST_FILE} records: got {records!r}, want a count")
    return export_filter, records


def _verify_since(
    directory: Path, earlier_obj: Mapping[str, Any], checkpoint: Checkpoint, key_raw: bytes
) -> int:
    """Check that the export's tree extends an earlier signed checkpoint; return its size."""
    try:
        earlier = verify_signed_checkpoint(earlier_obj, b64encode(key_raw))
    except CheckpointError as error:
        raise VerificationError(f"earlier checkpoint: {error}") from None
    if earlier.log_id != checkpoint.log_id:
        raise VerificationError(
            f"earlier checkpoint log_id: got {earlier.log_id!r}, want {checkpoint.log_id!r}"
        )
    first, second = earlier.tree_size, checkpoint.tree_size
    if first > second:
        raise VerificationError(
            f"earlier checkpoint tree_size: got {first}, want <= {second} (the export's): "
            "the log cannot have shrunk"
        )
    if first == 0:
        if earlier.root_hash != EMPTY_ROOT:
            raise VerificationError(
                f"earlier checkpoint of tree size 0: root {earlier.root_hash.hex()}, want "
                f"{EMPTY_ROOT.hex()} (the empty tree's)"
            )
        return first  # every tree extends the empty one
    proof: list[bytes] = []
    if first < second:
        consistency = _read_json_object(directory / CONSISTENCY_FILE, hint=_CONSISTENCY_HINT)
        for name, want in (
            ("first", first),
            ("second", second),
            ("first_root", earlier.root_hash.hex()),
            ("second_root", checkpoint.root_hash.hex()),
        ):
            if consistency.get(name) != want:
                raise VerificationError(
                    f"{CONSISTENCY_FILE} {name}: got {consistency.get(name)!r}, want {want!r}"
                )
        proof = _hashes(consistency.get("proof"), f"{CONSISTENCY_FILE} proof")
    try:
        verify_consistency(first, second, proof, earlier.root_hash, checkpoint.root_hash)
    except ProofError as error:
        raise VerificationError(
            f"consistency of tree size {first} with {second}: {error}"
        ) from None
    return first


_CONSISTENCY_HINT: Final = (
    "export with --since-checkpoint, or save `consent-ledger proof consistency "
    "--first A --second B --json` (or GET /v1/ledger/proofs/consistency) there"
)


def _verify_records(
    directory: Path,
    checkpoint: Checkpoint,
    export_filter: ExportFilter,
    progress: Callable[[int], None] | None,
) -> int:
    """Check events.jsonl against proofs.jsonl; return the record count.

    A complete export is checked in one pass that rebuilds the tree from its leaves
    (`_verify_complete_records`). That pass says only *that* something is wrong, and
    may notice it some leaves after the damage; then the per-proof check below runs
    from the start and raises the error naming the first failing line, so both paths
    accept and refuse the same exports with the same messages. A filtered export (not
    every leaf present) is checked proof by proof.
    """
    if export_filter.complete:
        try:
            return _verify_complete_records(directory, checkpoint, progress)
        except _OnePassRefusal as refusal:
            _verify_records_by_proof(directory, checkpoint, export_filter, None)
            raise VerificationError(  # the two paths disagree: never seen, but never silent
                f"{EVENTS_FILE}/{PROOFS_FILE}: {refusal}"
            ) from None
    return _verify_records_by_proof(directory, checkpoint, export_filter, progress)


class _OnePassRefusal(Exception):
    """Signal that the one-pass check of a complete export failed (see _verify_records)."""


_HASH_TEXT: Final = 2 * HASH_SIZE + 3  # bytes per audit_path item: quote, hex, quote, comma
_HEX_ITEMS: Final = re.compile(rb'"[0-9a-f]{64}"(?:,"[0-9a-f]{64}")*')
# Floats in a line that orjson wrote: a JSON number with a fraction or an exponent is
# followed by ',', '}' or ']', so with its digits deleted it ends in '.', 'e', 'E', '+'
# or '-' right before that byte. Mapping those five to 'x', the three to 'y' and every
# other byte to 'z' (digits deleted) leaves "xy" wherever a float was: two C calls per
# line. Text inside a string can also make "xy" (", " after an 'e'): a false alarm that
# only sends the line to the full RFC 8785 check, never a float missed.
_FLOAT_MAP: Final = bytes(
    ord("x") if byte in b".eE+-" else ord("y") if byte in b",}]" else ord("z")
    for byte in range(256)
)
_DIGITS: Final = b"0123456789"
_SORTED_53_BIT: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_RECORD_NAMES: Final = tuple(REQUIRED_RECORD_FIELDS)
_RECORD_KINDS: Final = tuple(REQUIRED_RECORD_FIELDS.values())  # exact types: no bool for int
_SUBJECT_KINDS: Final = (str, type(None))


def _verify_complete_records(
    directory: Path, checkpoint: Checkpoint, progress: Callable[[int], None] | None
) -> int:
    """Check a complete export in one pass; return the record count or raise _OnePassRefusal.

    Per line, the same checks as `_verify_records_by_proof`, done cheaply:
    - the record: orjson's sorted serialisation of the parsed line must be the line
      itself, which is RFC 8785 when the line is ASCII (no object key at or above
      U+E000), holds no float (`_FLOAT_MAP`) and no integer beyond 2**53 - 1
      (OPT_STRICT_INTEGER); any other line gets the full check of `_parse_record`;
    - the proof: line j of proofs.jsonl shares every hash from level
      L = bit_length(j ^ (j - 1)) up with line j - 1, so when both are written as the
      exporter writes them (orjson, no spaces) the line must end with the same bytes
      as line j - 1 from its L-th hash on, and only the hashes before are parsed and
      checked against the tree rebuilt from the leaves (`OnePassChecker`). A line in
      any other layout is parsed whole.
    """
    size, root = checkpoint.tree_size, checkpoint.root_hash
    checker = OnePassChecker(size, root)
    after_index = b',"tree_size":%d,"audit_path":[' % size
    previous, previous_start = b"", 0  # last proof line in the exporter's layout, or b""
    sha256, prefix = hashlib.sha256, LEAF_PREFIX
    count = 0
    with _open(directory / EVENTS_FILE) as events, _open(directory / PROOFS_FILE) as proofs:
        for event_line, proof_line in zip_longest(_block_lines(events), _block_lines(proofs)):
            if event_line is None or proof_line is None:
                raise _OnePassRefusal("the two files have different line counts")
            number, j = count + 1, count
            if j >= size:
                raise _OnePassRefusal(f"more than {size} records")
            _check_record(event_line, number, j)
            leaf_hash = sha256(prefix + event_line).digest()
            head = b'{"leaf_index":%d' % j + after_index
            start = len(head)
            parsed = False
            if previous:
                tail = previous[previous_start + _HASH_TEXT * (j ^ (j - 1)).bit_length() - 1 :]
                end = start + _HASH_TEXT * checker.head_length() - 1
                if (
                    len(proof_line) == end + len(tail)
                    and proof_line.startswith(head)
                    and proof_line.endswith(tail)
                    and _HEX_ITEMS.fullmatch(proof_line, start, end)
                ):
                    hashes = [
                        a2b_hex(proof_line[at + 1 : at + 2 * HASH_SIZE + 1])
                        for at in range(start, end, _HASH_TEXT)
                    ]
                    try:
                        checker.add_head(leaf_hash, hashes)
                    except ProofError as error:
                        raise _OnePassRefusal(f"line {number}: {error}") from None
                    parsed = True
            if parsed or _check_whole_proof(checker, leaf_hash, proof_line, number, size):
                previous, previous_start = proof_line, start
            else:
                previous = b""
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
    try:
        checker.finish()
    except ProofError as error:
        raise _OnePassRefusal(str(error)) from None
    if progress is not None:
        progress(count)
    return count


def _check_record(line: bytes, number: int, leaf_index: int) -> None:
    """Check an events.jsonl line for the one-pass path; raise _OnePassRefusal if bad."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: not JSON") from None
    if type(record) is not dict:
        raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: not an object")
    if line.isascii() and b"xy" not in line.translate(_FLOAT_MAP, _DIGITS):
        try:
            canonical = orjson.dumps(record, option=_SORTED_53_BIT)
        except orjson.JSONEncodeError:
            canonical = b""
        if canonical != line:
            raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: not RFC 8785")
    else:
        try:
            _parse_record(line, number)
        except VerificationError as error:
            raise _OnePassRefusal(str(error)) from None
    if tuple(map(type, map(record.get, _RECORD_NAMES))) != _RECORD_KINDS:
        raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: a required field")
    if type(record.get("subject", 0)) not in _SUBJECT_KINDS:
        raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: field subject")
    if record["leaf_index"] != leaf_index:
        raise _OnePassRefusal(f"{EVENTS_FILE} line {number}: leaf_index, want {leaf_index}")


def _check_whole_proof(
    checker: OnePassChecker, leaf_hash: bytes, line: bytes, number: int, size: int
) -> bool:
    """Parse a whole proofs.jsonl line and add it to the checker; return whether it is
    in the exporter's layout (so that the next line can share its bytes)."""
    leaf_index = checker.count
    try:
        path = _parse_proof(line, number, leaf_index, size, f"{EVENTS_FILE} line {number}")
        checker.add(leaf_hash, path)
    except (VerificationError, ProofError) as error:
        raise _OnePassRefusal(f"line {number}: {error}") from None
    standard = {"leaf_index": leaf_index, "tree_size": size, "audit_path": [h.hex() for h in path]}
    return orjson.dumps(standard) == line


def _verify_records_by_proof(
    directory: Path,
    checkpoint: Checkpoint,
    export_filter: ExportFilter,
    progress: Callable[[int], None] | None,
) -> int:
    """Check events.jsonl against proofs.jsonl line by line, each inclusion proof folded
    up to the root (RFC 9162 §2.1.3.2); return the record count."""
    size, root = checkpoint.tree_size, checkpoint.root_hash
    complete = export_filter.complete
    count, previous = 0, -1
    with _open(directory / EVENTS_FILE) as events, _open(directory / PROOFS_FILE) as proofs:
        for number, (event_line, proof_line) in enumerate(
            zip_longest(_lines(events), _lines(proofs)), start=1
        ):
            if event_line is None or proof_line is None:
                shorter = EVENTS_FILE if event_line is None else PROOFS_FILE
                raise VerificationError(
                    f"{shorter} ends at line {number - 1}, but the other file goes on: "
                    f"want one {PROOFS_FILE} line per {EVENTS_FILE} line"
                )
            record = _parse_record(event_line, number)
            leaf_index, event_id = record["leaf_index"], record["event_id"]
            where = f"{EVENTS_FILE} line {number} (leaf_index {leaf_index}, event_id {event_id})"
            path = _parse_proof(proof_line, number, leaf_index, size, where)
            try:
                verify_inclusion(hash_leaf(event_line), leaf_index, size, path, root)
            except ProofError as error:
                raise VerificationError(
                    f"{where}: inclusion proof fails ({PROOFS_FILE} line {number}): {error}"
                ) from None
            if complete and leaf_index != previous + 1:
                raise VerificationError(
                    f"{where}: got leaf_index {leaf_index}, want {previous + 1}: a complete "
                    f"export lists every leaf 0 … {size - 1} in order"
                )
            if leaf_index <= previous:
                raise VerificationError(
                    f"{where}: got leaf_index {leaf_index} after {previous}, want increasing"
                )
            if not _selected(export_filter, record, where):
                raise VerificationError(
                    f"{where}: record outside the export's filter {export_filter.to_json()}"
                )
            previous, count = leaf_index, count + 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
    if complete and count != size:
        raise VerificationError(
            f"{EVENTS_FILE}: got {count} records (leaves 0 … {count - 1}), want {size} "
            f"(leaves 0 … {size - 1}): a complete export must cover the whole tree"
        )
    if progress is not None:
        progress(count)
    return count


def _selected(export_filter: ExportFilter, record: Mapping[str, Any], where: str) -> bool:
    """Return whether the filter selects a record; a malformed recorded_at fails verification."""
    try:
        return export_filter.selects(record)
    except CheckpointError as error:
        raise VerificationError(f"{where}: recorded_at: {error}") from None


def _parse_record(line: bytes, number: int) -> dict[str, Any]:
    """Return the record on an events.jsonl line; it must be JCS and have the common fields."""
    where = f"{EVENTS_FILE} line {number}"
    record = _parse_object(line, where)
    try:
        canonical = canonical_json(record)
    except RecordError as error:
        raise VerificationError(f"{where}: {error.detail}") from None
    if canonical != line:
        raise VerificationError(
            f"{where}: the line is not the RFC 8785 (JCS) form of its record "
            "(edited, reformatted, or a repeated key)"
        )
    for name, kind in REQUIRED_RECORD_FIELDS.items():
        value = record.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise VerificationError(f"{where}: field {name}: got {value!r}, want a {kind.__name__}")
    if "subject" not in record or not isinstance(record["subject"], str | None):
        raise VerificationError(f"{where}: field subject: want a string or null")
    if record["leaf_index"] < 0:
        raise VerificationError(f"{where}: leaf_index {record['leaf_index']} is negative")
    return record


def _parse_proof(line: bytes, number: int, leaf_index: int, size: int, where: str) -> list[bytes]:
    """Return the audit path on a proofs.jsonl line, after checking its index and size."""
    proof = _parse_object(line, f"{PROOFS_FILE} line {number}")
    if proof.get("leaf_index") != leaf_index:
        raise VerificationError(
            f"{where}: {PROOFS_FILE} line {number} is for leaf_index "
            f"{proof.get('leaf_index')!r}, want {leaf_index}"
        )
    if proof.get("tree_size") != size:
        raise VerificationError(
            f"{where}: proof tree_size {proof.get('tree_size')!r}, want {size} ({CHECKPOINT_FILE})"
        )
    return _hashes(proof.get("audit_path"), f"{where}: {PROOFS_FILE} line {number} audit_path")


def _hashes(value: object, what: str) -> list[bytes]:
    """Return a JSON list of lowercase hex hashes as bytes; raise VerificationError if not."""
    if not isinstance(value, list):
        raise VerificationError(f"{what}: got {value!r}, want a list of hex hashes")
    hashes = []
    for index, item in enumerate(value):
        # bytes.fromhex then .hex() round-trips only lowercase hex without spaces.
        try:
            digest = bytes.fromhex(item) if type(item) is str else b""
        except ValueError:
            digest = b""
        if len(digest) != HASH_SIZE or digest.hex() != item:
            raise VerificationError(
                f"{what}[{index}]: got {item!r}, want {2 * HASH_SIZE} lowercase hex digits"
            )
        hashes.append(digest)
    return hashes


def _parse_object(data: bytes, where: str) -> dict[str, Any]:
    """Return the JSON object in data; raise VerificationError naming `where` if not one."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise VerificationError(f"{where}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise VerificationError(f"{where}: got a {type(value).__name__}, want a JSON object")
    return value


def _read_json_object(path: Path, hint: str | None = None) -> dict[str, Any]:
    """Return the JSON object in a file of the export."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        extra = f"; {hint}" if hint else ""
        raise VerificationError(f"{path.name}: missing from the export{extra}") from None
    except OSError as error:
        raise VerificationError(f"{path.name}: {error.strerror}") from None
    return _parse_object(data, path.name)


def _open(path: Path) -> IO[bytes]:
    """Open a line file of the export for binary reading."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise VerificationError(f"{path.name}: missing from the export") from None
    except OSError as error:
        raise VerificationError(f"{path.name}: {error.strerror}") from None


def _block_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Yield what `_lines` yields, split from blocks of about 1 MiB (fewer Python steps)."""
    return chain.from_iterable(_blocks(handle))


def _blocks(handle: IO[bytes]) -> Iterator[list[bytes]]:
    """Yield the lines of a JSON Lines file in lists, read about 1 MiB at a time."""
    while block := handle.read(_BLOCK):
        if not block.endswith(b"\n"):
            block += handle.readline()
        lines = block.split(b"\n")
        if not lines[-1]:
            lines.pop()  # the empty text after the block's last newline
        yield lines


_BLOCK: Final = 1 << 20


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Yield the lines of a JSON Lines file without their final newline."""
    for line in handle:
        yield line[:-1] if line.endswith(b"\n") else line
