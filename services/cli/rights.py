"""Command-line verbs of BRIEF §2.1: `content register` and `authority grant|revoke`.

    consent-ledger content register CONTENT --owner SUBJECT
        [--contributor SUBJECT=ASPECT[,ASPECT] ...] [--isrc X] [--iswc Y] [--at T]
    consent-ledger authority grant SUBJECT AGENT [--purpose P ...] [--expires T]
    consent-ledger authority revoke SUBJECT AGENT

Each prints the new event id (with `--json`, `{event_id, position, recorded_at}`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ledger.rights import parse_contributor
from services.cli.args import instant

if TYPE_CHECKING:
    from ledger.application import Receipt
    from services.bootstrap import Services


def register(verb: Any, common: Any) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    content = verb("content", _usage("content", "register"), "register works and contributors")
    actions = content.add_subparsers(
        dest="content_verb", metavar="ACTION", parser_class=type(content)
    )
    actions.required = True
    p = verb(
        "register", cmd_content_register, "register a content, its owner and contributors", actions
    )
    p.add_argument("content", help="the content (track) id")
    p.add_argument("--owner", required=True, help="the subject who owns the content")
    p.add_argument(
        "--contributor",
        action="append",
        default=[],
        metavar="SUBJECT=ASPECT[,ASPECT]",
        help="a contributor and its aspects among music, voice, likeness (repeatable)",
    )
    p.add_argument("--isrc", help="ISO 3901 recording code, e.g. US-S1Z-99-00001")
    p.add_argument("--iswc", help="ISO 15707 work code, e.g. T-034.524.680-1")
    p.add_argument("--at", type=instant("--at"), help="effective time (default now)")

    authority = verb(
        "authority", _usage("authority", "grant, revoke"), "agents acting for subjects"
    )
    actions = authority.add_subparsers(
        dest="authority_verb", metavar="ACTION", parser_class=type(authority)
    )
    actions.required = True
    p = verb("grant", cmd_authority_grant, "let an agent act for a subject", actions)
    p.add_argument("subject", help="the subject the agent acts for")
    p.add_argument("agent", help="the agent, a named party (not 'platform' or '*')")
    p.add_argument(
        "--purpose", action="append", metavar="P", help="a purpose it may act for (default all)"
    )
    p.add_argument(
        "--expires", type=instant("--expires"), help="when the authority ends (exclusive)"
    )
    p = verb("revoke", cmd_authority_revoke, "end an agent's authority for a subject", actions)
    p.add_argument("subject", help="the subject the agent acted for")
    p.add_argument("agent", help="the agent whose authority ends")


def cmd_content_register(args: argparse.Namespace, services: Services) -> int:
    """Register a content with its owner and contributors."""
    receipt = services.ledger.register_content(
        args.content,
        args.owner,
        [parse_contributor(text) for text in args.contributor],
        isrc=args.isrc,
        iswc=args.iswc,
        effective_at=args.at,
    )
    return _print(args, receipt)


def cmd_authority_grant(args: argparse.Namespace, services: Services) -> int:
    """Grant an agent authority to act for a subject."""
    receipt = services.ledger.grant_authority(
        args.subject, args.agent, args.purpose, expires_at=args.expires
    )
    return _print(args, receipt)


def cmd_authority_revoke(args: argparse.Namespace, services: Services) -> int:
    """Revoke an agent's authority."""
    return _print(args, services.ledger.revoke_authority(args.subject, args.agent))


def _print(args: argparse.Namespace, receipt: Receipt) -> int:
    if args.json:
        sys.stdout.write(orjson.dumps(receipt.to_json()).decode() + "\n")
    else:
        print(receipt.event_id)
    return 0


def _usage(group: str, actions: str) -> Callable[[argparse.Namespace, Services], int]:
    def usage(args: argparse.Namespace, services: Services) -> int:
        print(f"consent-ledger: error: {group} needs an action: {actions}", file=sys.stderr)
        return 2

    return usage
