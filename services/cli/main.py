# long module: the ledger verbs' handlers and the one parser that registers every verb group
"""`consent-ledger`: the command line, a thin shell over the ledger's use cases.

Every verb parses its words, calls one use case and prints the result (`--json` for
machines). A refused input prints one line on stderr, exits non-zero and writes nothing.
Exit codes: 2 invalid input or usage, 3 not found, 4 conflict, 5 store unavailable.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from ledger.commands import AcceptTerms, Erase, Grant, PublishTerms, Revoke, Void
from ledger.errors import (
    ErrorKind,
    InvalidInputError,
    LedgerError,
    LedgerNotFoundError,
)
from projections.history import history_json
from services.bootstrap import Services, bootstrap
from services.cli import api as cli_api
from services.cli import audit as cli_audit
from services.cli import demo as cli_demo
from services.cli import dossier as cli_dossier
from services.cli import operations as cli_operations
from services.cli import projections as cli_projections
from services.cli import receipts as cli_receipts
from services.cli import relay as cli_relay
from services.cli import rights as cli_rights
from services.cli import signals as cli_signals
from services.cli import snapshots as cli_snapshots
from services.cli import tiles as cli_tiles
from services.cli import worker as cli_worker
from services.cli.args import (
    CliUsageError,
    Handler,
    Parser,
    actor_flag,
    evidence_flags,
    evidence_from,
    global_flags,
    scope_flags,
    subject_purpose,
    time_flag,
)
from services.cli.help import EXAMPLES, purposes_help
from services.cli.output import emit_json, print_receipt, report_error
from services.logs import configure_logging
from services.settings import Settings

if TYPE_CHECKING:
    from services.cli.args import Verbs

EXIT_CODES = {
    ErrorKind.INVALID: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UNAVAILABLE: 5,
    ErrorKind.FORBIDDEN: 6,
}

READ_ONLY_VERBS = frozenset(
    {
        "check",
        "filter",
        "history",
        "export",
        "audit",
        "inclusion",
        "consistency",
        "dossier",
        "impacts",
        "report",
    }
)
"""Verbs that only read: pointed at a ledger that does not exist, they create nothing."""


def cmd_terms_publish(args: argparse.Namespace, services: Services) -> int:
    """Publish a terms version."""
    clauses = []
    for clause in args.clause or []:
        purpose, sep, default = clause.partition("=")
        if not sep:
            raise InvalidInputError(f"--clause {clause!r}: want PURPOSE=granted|denied")
        clauses.append({"purpose": purpose, "default": default})
    digest = None
    if args.document is not None:
        try:
            digest = hashlib.sha256(Path(args.document).read_bytes()).hexdigest()
        except OSError as error:
            raise InvalidInputError(f"--document {args.document}: {error.strerror}") from None
    command = PublishTerms(
        version=args.version,
        effective_from=args.effective_from,
        clauses=clauses,
        document_sha256=digest,
    )
    return print_receipt(args, services.ledger.execute(command))


def cmd_terms_accept(args: argparse.Namespace, services: Services) -> int:
    """Record a terms acceptance."""
    command = AcceptTerms(
        subject=args.subject,
        version=args.version,
        effective_at=args.at,
        evidence=evidence_from(args),
        actor=args.actor,
    )
    return print_receipt(args, services.ledger.execute(command))


def _scoped(args: argparse.Namespace) -> dict[str, Any]:
    """The fields a grant and a revocation share: whose, what, for whom, when, on whose word."""
    return {
        "subject": args.subject,
        "purpose": args.purpose,
        "party": args.party,
        "content_ids": args.content,
        "aspect": args.aspect,
        "effective_at": args.at,
        "evidence": evidence_from(args),
        "model": args.model,
        "actor": args.actor,
    }


def cmd_grant(args: argparse.Namespace, services: Services) -> int:
    """Record a grant."""
    command = Grant(**_scoped(args), expires_at=args.expires, conditions=args.condition)
    return print_receipt(args, services.ledger.execute(command))


def cmd_revoke(args: argparse.Namespace, services: Services) -> int:
    """Record a revocation."""
    command = Revoke(**_scoped(args), reason=args.reason)
    return print_receipt(args, services.ledger.execute(command))


def cmd_void(args: argparse.Namespace, services: Services) -> int:
    """Void an event entered in error."""
    try:
        event_id = UUID(args.event_id)
    except ValueError:
        raise InvalidInputError(f"event id {args.event_id!r} is not a UUID") from None
    command = Void(voided_event_id=event_id, reason=args.reason)
    return print_receipt(args, services.ledger.execute(command))


def cmd_erase(args: argparse.Namespace, services: Services) -> int:
    """Erase a subject's personal data."""
    command = Erase(subject=args.subject, reason=args.reason)
    return print_receipt(args, services.ledger.execute(command))


def cmd_check(args: argparse.Namespace, services: Services) -> int:
    """Answer one permission question."""
    contents = args.content or []
    if len(contents) > 1:
        raise InvalidInputError("check takes one --content id; use filter for many")
    decision = services.reader.check(
        args.subject,
        args.purpose,
        party=args.party,
        content=contents[0] if contents else None,
        aspect=args.aspect,
        at=args.at,
        known_at=args.known_at,
        min_position=args.min_position,
        model=args.model,
    )
    if args.json:
        emit_json(decision.to_json())
    else:
        verdict = "allowed" if decision.allowed else "denied"
        ids = ", ".join(str(i) for i in decision.event_ids) or "-"
        print(
            f"{verdict} (basis {decision.basis.value}; terms {decision.terms_version or '-'}; "
            f"events {ids}; position {decision.position})"
        )
    return 0


def cmd_history(args: argparse.Namespace, services: Services) -> int:
    """Show a subject's history."""
    items = services.ledger.history(args.subject, at=args.at, known_at=args.known_at)
    if args.json:
        emit_json({"subject": args.subject, "events": [history_json(i) for i in items]})
        return 0
    if not items:
        print(f"no events for subject {args.subject!r}")
        return 0
    for item in items:
        row = history_json(item)
        scope = ""
        if "purpose" in row:
            contents = ",".join(row.get("content_ids") or []) or "catalogue"
            scope = f" {row['purpose']} party={row['party']} {contents} aspect={row['aspect']}"
        elif "version" in row:
            scope = f" terms {row['version']}"
        voided = f"  [voided by {row['voided_by']}]" if row["voided_by"] else ""
        print(
            f"{row['position']:>8}  {row['effective_at'][:19]}Z  {row['type']:<15}{scope}"
            f"  {row['event_id']}{voided}"
        )
    return 0


# ------------------------------------------------------------------- parser

GLOBAL_FLAGS: Final = {
    "database_url": None,
    "data_dir": None,
    "kafka_bootstrap_servers": None,
    "json": False,
}
"""The flags every verb takes, before or after it, and their value when absent."""

VERB_GROUPS: Final = (
    cli_demo,
    cli_projections,
    cli_api,
    cli_audit,
    cli_relay,
    cli_dossier,
    cli_rights,
    cli_receipts,
    cli_snapshots,
    cli_worker,
    cli_tiles,
    cli_operations,
    cli_signals,
)
"""Modules adding verbs: each has `register(verb, common)`. Add a group with one line."""


def build_parser() -> Parser:
    """Build the whole command line: verbs, flags and their handlers."""
    common = global_flags()
    parser = Parser(
        prog="consent-ledger",
        description=f"Consent Ledger: the consent system of record.\n\n{purposes_help()}",
        epilog=EXAMPLES,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True

    def verb(name: str, handler: Handler, help_text: str, sub: Verbs = verbs) -> Parser:
        p: Parser = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler, read_only=name in READ_ONLY_VERBS)
        return p

    terms = verb("terms", _group_only, "publish or accept terms")
    terms_verbs = terms.add_subparsers(dest="terms_verb", metavar="ACTION", parser_class=Parser)
    terms_verbs.required = True
    p = verb("publish", cmd_terms_publish, "publish a terms version", terms_verbs)
    p.add_argument("version", help="the version id, e.g. 2025-05")
    time_flag(p, "--effective-from", "when the terms take effect", required=True)
    p.add_argument(
        "--clause",
        nargs="+",
        action="extend",
        metavar="PURPOSE=granted|denied",
        help="the first party's default for a purpose; repeatable",
    )
    p.add_argument("--document", metavar="FILE", help="the terms document; its SHA-256 is recorded")
    p = verb("accept", cmd_terms_accept, "record a subject's acceptance of terms", terms_verbs)
    subject_purpose(p, purpose=False)
    p.add_argument("version", help="a published terms version")
    time_flag(p, "--at", "effective time (default now)")
    evidence_flags(p)
    actor_flag(p)

    p = verb("grant", cmd_grant, "record a consent grant")
    subject_purpose(p)
    scope_flags(p)
    actor_flag(p)
    p.add_argument(
        "--condition", action="append", metavar="TEXT", help="a condition of the grant (repeatable)"
    )
    time_flag(p, "--expires", "when the grant stops applying (exclusive)")
    time_flag(p, "--at", "effective time (default now)")
    evidence_flags(p)

    p = verb("revoke", cmd_revoke, "record a consent revocation")
    subject_purpose(p)
    scope_flags(p)
    actor_flag(p)
    time_flag(p, "--at", "effective time (default now)")
    p.add_argument("--reason", help="why it was revoked (kept, never published)")
    evidence_flags(p)

    p = verb("void", cmd_void, "void an event entered in error")
    p.add_argument(
        "event_id", metavar="EVENT_ID", help="the UUID of a grant, revocation or acceptance"
    )
    p.add_argument("--reason", required=True, help="why it was entered in error")

    p = verb("check", cmd_check, "answer: may this purpose use this subject's content?")
    subject_purpose(p)
    scope_flags(p, many_contents=False)
    time_flag(p, "--at", "effective instant (default now)")
    time_flag(p, "--known-at", "ledger instant: what was known then (default now)")
    p.add_argument(
        "--min-position", type=int, metavar="N", help="reflect at least the write at position N"
    )

    p = verb("history", cmd_history, "show a subject's events")
    subject_purpose(p, purpose=False)
    time_flag(p, "--at", "only events effective by T")
    time_flag(p, "--known-at", "as known at T")

    p = verb("erase", cmd_erase, "erase a subject's personal data")
    subject_purpose(p, purpose=False)
    p.add_argument("--reason", help="why (e.g. the request's reference)")

    for group in VERB_GROUPS:
        group.register(verb, common)
    return parser


def _group_only(args: argparse.Namespace, services: Services) -> int:
    """Stand in for a verb group's handler: argparse requires one of its actions."""
    raise InvalidInputError(f"{args.verb}: name an action (see consent-ledger {args.verb} --help)")


def settings_from(args: argparse.Namespace) -> Settings:
    """Return the environment's settings with this command line's overrides.

    Raises SettingsError (exit 2) naming a variable whose value does not parse.
    """
    return Settings.from_env().with_overrides(
        database_url=args.database_url,
        data_dir=args.data_dir,
        kafka_bootstrap_servers=args.kafka_bootstrap_servers,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line; the global flags given nowhere take their defaults.

    Raises CliUsageError for a command line that does not parse.
    """
    args = build_parser().parse_args(argv)
    for name, default in GLOBAL_FLAGS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    try:
        args = parse_args(argv)
    except CliUsageError as error:
        report_error(str(error).split(": ", 1)[-1])
        return 2
    services: Services | None = None
    try:
        settings = settings_from(args)
        configure_logging(settings.log_format, settings.log_level)
        offline = getattr(args, "offline_handler", None)
        if offline is not None:  # a verb that needs no ledger (e.g. verify): no bootstrap
            return int(offline(args))
        try:
            services = bootstrap(settings, existing_only=getattr(args, "read_only", False))
        except LedgerNotFoundError:
            check_input = getattr(args, "check_input", None)
            if check_input is not None:  # bad input is refused first, as on any ledger
                check_input(args)
            raise
        handler: Handler = args.handler
        return handler(args, services)
    except LedgerError as error:
        report_error(error.detail)
        return EXIT_CODES[error.kind]
    except KeyboardInterrupt:
        return 130
    finally:
        if services is not None:
            services.close()


if __name__ == "__main__":
    sys.exit(main())
