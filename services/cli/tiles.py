"""Command-line verb `consent-ledger tiles export DIR`: the Merkle log as static C2SP tiles.

It catches the log up, signs a checkpoint of its head, and writes `checkpoint`,
`tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]` under DIR (see `projections.tiles`),
ready for an object store or CDN. Full tiles already in DIR are kept, so exporting again
into a mirror writes only what is new.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from projections.tiles import LogTiles

if TYPE_CHECKING:
    from services.bootstrap import Services


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    tiles = verb("tiles", cmd_tiles_usage, "the Merkle log as C2SP tlog-tiles")
    actions = tiles.add_subparsers(dest="tiles_verb", metavar="ACTION", parser_class=type(tiles))
    actions.required = True
    p = verb(
        "export", cmd_tiles_export, "write checkpoint, tiles and entry bundles to DIR", actions
    )
    p.add_argument("directory", type=Path, help="an empty or new folder for the tiles")


def cmd_tiles_usage(args: argparse.Namespace, services: Services) -> int:
    """Refuse `tiles` without an action (argparse requires one)."""
    print("consent-ledger: error: tiles needs an action: export", file=sys.stderr)
    return 2


def cmd_tiles_export(args: argparse.Namespace, services: Services) -> int:
    """Catch the log up and write its tiles under DIR."""
    services.log.catch_up()
    written = LogTiles(services.log).export(args.directory)
    size = services.log.tree_size()
    if args.json:
        sys.stdout.write(orjson.dumps({"tree_size": size, "files": written}).decode() + "\n")
    else:
        print(f"wrote {written} files for a tree of {size} leaves to {args.directory}")
    return 0
