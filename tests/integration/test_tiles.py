"""The log as C2SP tlog-tiles, checked by an independent reading of the spec.

The verifier below is written from c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint and
c2sp.org/signed-note alone: it parses the checkpoint note, checks its Ed25519 signature
and key ID, rebuilds the tree root from the level-0 tiles with its own RFC 6962 hashing,
checks each level-1 hash against the 256 leaves below it and each entry against its
leaf hash. It shares no code with `projections.tiles` or `ledger.merkle`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.commands import Grant
from projections.tiles import TileRef, encode_index
from services.bootstrap import Services
from services.cli.main import main
from services.settings import Settings
from tests.integration.api_support import assert_problem, running_api

LEAVES = 600  # two full level-0 tiles, a partial one of 88, and a partial level-1 tile of 2


def write_leaves(services: Services, count: int) -> None:
    """Append `count` events in a few group commits."""
    ledger = services.ledger
    pending = [
        Grant(subject=f"artist-{n}", purpose="ai-training", party="acme") for n in range(count)
    ]
    for start in range(0, count, 200):
        ledger.execute_many(pending[start : start + 200])


# ------------------------------------------------------------- the reference reader


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over leaf hashes (the slow, obvious recursion)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def reference_path(level: int, index: int, width: int, entries: bool = False) -> str:
    """The spec's tile path, written from its text."""
    digits = str(index).rjust(3 * ((len(str(index)) + 2) // 3), "0")
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    n = "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])
    head = "entries" if entries else str(level)
    return f"tile/{head}/{n}" + (f".p/{width}" if width < 256 else "")


def read_checkpoint(note: str, public_key: bytes) -> tuple[str, int, bytes]:
    """Verify a signed-note checkpoint; return (origin, size, root)."""
    text, _, signatures = note.partition("\n\n")
    text += "\n"
    origin, size, root = text.splitlines()[:3]
    key_id = sha256(origin.encode() + b"\n\x01" + public_key)[:4]
    verified = False
    for line in signatures.splitlines():
        assert line.startswith("\u2014 "), line
        name, blob64 = line[2:].split(" ")
        blob = base64.b64decode(blob64)
        if name == origin and blob[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], text.encode())
            verified = True
    assert verified, "no signature line of the log's key"
    return origin, int(size), base64.b64decode(root)


def hashes(data: bytes) -> list[bytes]:
    assert len(data) % 32 == 0
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def bundle_entries(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 2], "big")
        out.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    return out


def verify_tiles(get: Callable[[str], bytes], public_key: bytes) -> tuple[int, list[bytes]]:
    """Check a tiled log end to end through `fetch(path) -> bytes`; return (size, entries)."""
    _, size, root = read_checkpoint(get("checkpoint").decode(), public_key)
    leaves: list[bytes] = []
    entries: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        tile = hashes(get(reference_path(0, n, width)))
        assert len(tile) == width
        leaves += tile
        bundle = bundle_entries(get(reference_path(0, n, width, entries=True)))
        assert [sha256(b"\x00" + e) for e in bundle] == tile
        entries += bundle
    assert mth(leaves) == root
    level1 = size // 256
    if level1:
        for n in range((level1 + 255) // 256):
            width = min(256, level1 - 256 * n)
            tile = hashes(get(reference_path(1, n, width)))
            for j, node in enumerate(tile):
                first = (256 * n + j) * 256
                assert node == mth(leaves[first : first + 256])
    return size, entries


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize(
    ("index", "want"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_indexes_are_written_in_x_prefixed_groups_of_three_digits(
    index: int, want: str
) -> None:
    assert encode_index(index) == want
    assert TileRef(0, index, 7).path() == reference_path(0, index, 7)


def test_exported_tiles_verify_by_the_spec_and_carry_the_audit_exports_records(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    write_leaves(services, LEAVES)
    common = ["--database-url", settings.database_url, "--data-dir", str(settings.data_dir)]
    out = tmp_path / "tiles"
    assert main(["tiles", "export", str(out), *common]) == 0
    public_key = services.log.key.public_key_raw()
    size, entries = verify_tiles(lambda path: (out / path).read_bytes(), public_key)
    assert size == LEAVES
    assert (out / "tile/1/000.p/2").exists()
    assert (out / "tile/0/002.p/88").exists()

    audit = tmp_path / "audit"
    assert main(["export", str(audit), *common]) == 0
    lines = (audit / "events.jsonl").read_bytes().splitlines()
    assert lines == entries
    assert [json.loads(e)["leaf_index"] for e in entries] == list(range(LEAVES))


def test_served_tiles_match_the_static_ones_and_are_cacheable(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    write_leaves(services, 300)
    with running_api(services) as api:

        def fetch(path: str) -> bytes:
            response = api.get(f"/v1/ledger/tiles/{path}")
            assert response.status_code == 200, (path, response.text)
            if path.startswith("tile/"):
                assert "immutable" in response.headers["cache-control"]
            return bytes(response.content)

        size, _ = verify_tiles(fetch, services.log.key.public_key_raw())
        assert size == 300
        assert_problem(api.get("/v1/ledger/tiles/tile/0/001"), 404, "Tile not found")
        assert_problem(api.get("/v1/ledger/tiles/tile/0/1"), 422)
        assert_problem(api.get("/v1/ledger/tiles/tile/0/000.p/300"), 422)
        assert api.client.get("/v1/ledger/tiles/checkpoint").status_code == 401
