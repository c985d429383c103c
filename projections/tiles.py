"""The Merkle log as C2SP tlog-tiles: static, immutable files any CDN or bucket can serve.

The layout (c2sp.org/tlog-tiles), relative to a prefix:

- ``checkpoint``: the latest signed checkpoint, a C2SP signed note (c2sp.org/tlog-checkpoint,
  c2sp.org/signed-note) signed by the log's Ed25519 key under the log id;
- ``tile/<L>/<N>[.p/<W>]``: tile N of level L, the concatenated 32-byte hashes of the
  tree nodes at height 8·L with indexes 256·N … 256·N + W - 1 (level 0: the leaf
  hashes). A full tile holds 256 hashes; only the rightmost tile of a level may be
  partial, holding the W (1 … 255) whole subtrees that exist;
- ``tile/entries/<N>[.p/<W>]``: the entry bundle of level-0 tile N: each leaf's data
  (the JCS record of BRIEF §5, whose SHA-256(0x00 || data) is the leaf hash) prefixed
  by its length as a big-endian uint16.

N is written in groups of three digits, all but the last prefixed with ``x``
(1234067 → ``x001/x234/067``). A tile of a given width never changes, so every tile
is cacheable forever; only ``checkpoint`` moves. Hashes are read from the log's own
tables (`projections.merkle_log`): nothing is hashed here but what the log already
stored, and entry data is rendered by the one record function (`ledger.records`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.errors import InvalidInputError, NotFoundError
from ledger.records import canonical_json, record_of
from projections.export import scan_batches
from projections.merkle_log import LogService

TILE_HEIGHT: Final = 8  # c2sp.org/tlog-tiles: tiles are 2^8 hashes wide
TILE_WIDTH: Final = 1 << TILE_HEIGHT
HASH_SIZE: Final = 32
MAX_ENTRY_BYTES: Final = 0xFFFF  # an entry's length is a big-endian uint16
_PATH: Final = re.compile(r"^(?:x\d{3}/)*\d{3}(?:\.p/(\d{1,3}))?$")


class TileNotFoundError(NotFoundError):
    """Refuse a tile the log does not hold (yet): beyond the tree, or wider than it."""

    title = "Tile not found"


@dataclass(frozen=True)
class TileRef:
    """One tile: level L (hash height 8·L; "entries" bundles are level 0 data), index, width."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def path(self, *, entries: bool = False) -> str:
        """Return the tile's path under the prefix, e.g. ``tile/0/x001/234.p/7``."""
        head = "tile/entries" if entries else f"tile/{self.level}"
        tail = f".p/{self.width}" if self.width < TILE_WIDTH else ""
        return f"{head}/{encode_index(self.index)}{tail}"


def encode_index(index: int) -> str:
    """Return N in the spec's path form: 3-digit groups, all but the last prefixed by x.

    Requires index >= 0.
    """
    if index < 0:
        raise InvalidInputError(f"tile index: got {index}, want >= 0")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def parse_tile_path(level: int, rest: str) -> TileRef:
    """Parse ``<N>[.p/<W>]`` of a tile path at `level`; raise InvalidInputError if malformed."""
    match = _PATH.match(rest)
    if match is None or level < 0 or level > 63:
        raise InvalidInputError(
            f"tile path {level}/{rest!r}: want <L>/<N>[.p/<W>], N in x-prefixed groups "
            "of 3 digits, e.g. 0/x001/234.p/7"
        )
    width_text = match.group(1)
    width = int(width_text) if width_text else TILE_WIDTH
    if not 1 <= width < TILE_WIDTH and width_text:
        raise InvalidInputError(f"tile width: got {width}, want 1 … {TILE_WIDTH - 1}")
    index = int(rest.split(".p/")[0].replace("x", "").replace("/", ""))
    return TileRef(level, index, width)


def tiles_of(size: int) -> Iterator[TileRef]:
    """Yield every tile of a tree of `size` leaves, level by level (the full and the partial)."""
    level = 0
    while (count := size >> (TILE_HEIGHT * level)) > 0:
        for index in range(0, (count + TILE_WIDTH - 1) // TILE_WIDTH):
            yield TileRef(level, index, min(TILE_WIDTH, count - index * TILE_WIDTH))
        level += 1


class LogTiles:
    """Read tiles and entry bundles out of the log's tables."""

    def __init__(self, log: LogService) -> None:
        self.log = log

    def tile(self, ref: TileRef) -> bytes:
        """Return the tile's hashes; TileNotFoundError if the log does not hold them all."""
        first = ref.index * TILE_WIDTH
        self._require(ref)
        if ref.level == 0:
            hashes = [leaf.leaf_hash for leaf in self.log.leaves(first, first + ref.width)]
        else:
            hashes = self.log.nodes(TILE_HEIGHT * ref.level, first, first + ref.width)
        if len(hashes) != ref.width:
            raise TileNotFoundError(f"tile {ref.path()}: the log holds {len(hashes)} hashes")
        return b"".join(hashes)

    def entries(self, ref: TileRef) -> bytes:
        """Return the entry bundle of level-0 tile `ref`: uint16 length || record, per leaf."""
        if ref.level != 0:
            raise InvalidInputError("entry bundles exist for level 0 only")
        self._require(ref)
        first = ref.index * TILE_WIDTH
        out = bytearray()
        for _, _, pairs in scan_batches(self.log, first + ref.width, TILE_WIDTH, first=first):
            for leaf, entry in pairs:
                data = canonical_json(record_of(entry, leaf.leaf_index))
                if len(data) > MAX_ENTRY_BYTES:
                    raise InvalidInputError(
                        f"leaf {leaf.leaf_index}: record of {len(data)} bytes, want at most "
                        f"{MAX_ENTRY_BYTES} for a tlog-tiles entry bundle"
                    )
                out += len(data).to_bytes(2, "big") + data
        return bytes(out)

    def _require(self, ref: TileRef) -> None:
        held = self.log.tree_size() >> (TILE_HEIGHT * ref.level)
        if (ref.index * TILE_WIDTH) + ref.width > held:
            raise TileNotFoundError(
                f"tile {ref.path()}: the log holds {held} hashes at level {ref.level}"
            )

    def export(self, directory: Path) -> int:
        """Write checkpoint, tiles and entry bundles of the latest checkpoint; return files written.

        Full tiles already present are kept (they never change), so a re-export into a
        mirror writes only what is new.
        """
        checkpoint = self.log.head_checkpoint()
        written = 0
        for ref in tiles_of(checkpoint.tree_size):
            kinds = (False, True) if ref.level == 0 else (False,)
            for entries in kinds:
                path = directory / ref.path(entries=entries)
                if ref.width == TILE_WIDTH and path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.entries(ref) if entries else self.tile(ref))
                written += 1
        (directory / "checkpoint").write_text(checkpoint.note, encoding="utf-8")
        return written + 1
