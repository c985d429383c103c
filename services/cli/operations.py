"""Command-line verbs of operations: `rotate master-key` and `rotate checkpoint-key`.

Run them with every other ledger process stopped (they read the keys once, at start);
see docs/operations.md. `rotate master-key` re-wraps every subject key under a new
master key (erased subjects stay erased) and keeps the old key beside it for the
backups taken before. `rotate checkpoint-key` retires the signing key, whose
checkpoints stay trusted, and prints the old and new key IDs of the signed notes.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import orjson

from services.key_rotation import rotate_checkpoint_key, rotate_master_key

if TYPE_CHECKING:
    from services.bootstrap import Services


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    rotate = verb("rotate", cmd_rotate_usage, "rotate a key of the data dir (processes stopped)")
    actions = rotate.add_subparsers(dest="rotate_verb", metavar="KEY", parser_class=type(rotate))
    actions.required = True
    verb(
        "master-key", cmd_rotate_master, "re-wrap every subject key under a new master key", actions
    )
    verb(
        "checkpoint-key",
        cmd_rotate_checkpoint,
        "sign checkpoints with a new key; the old one's stay trusted",
        actions,
    )


def cmd_rotate_usage(args: argparse.Namespace, services: Services) -> int:
    """Refuse `rotate` without a key (argparse requires one)."""
    print(
        "consent-ledger: error: rotate needs a key: master-key or checkpoint-key", file=sys.stderr
    )
    return 2


def cmd_rotate_master(args: argparse.Namespace, services: Services) -> int:
    """Rotate the master key."""
    done = rotate_master_key(services.settings.resolved_data_dir(), services.database)
    if args.json:
        body = {"rewrapped": done.rewrapped, "retired_file": str(done.retired_file)}
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
    else:
        print(
            f"re-wrapped {done.rewrapped} subject keys; the old master key is kept in "
            f"{done.retired_file} for the backups taken before this rotation"
        )
    return 0


def cmd_rotate_checkpoint(args: argparse.Namespace, services: Services) -> int:
    """Rotate the checkpoint signing key."""
    done = rotate_checkpoint_key(services.settings.resolved_data_dir(), services.log.log_id)
    if args.json:
        sys.stdout.write(orjson.dumps(done.__dict__).decode() + "\n")
    else:
        print(
            f"checkpoint key {done.old_key_id} retired (still trusted); new key {done.new_key_id}"
        )
        print(done.new_public_key)
    return 0
