"""`consent-ledger`: the command line, a thin shell over the ledger's use cases.

Every verb parses its words, calls one use case and prints the result (`--json` for
machines). A refused input prints one line on stderr, exits non-zero and writes nothing.
Exit codes: 2 invalid input or usage, 3 not found, 4 conflict, 5 store unavailable.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

import orjson

from ledger.application import Receipt
from ledger.commands import AcceptTerms, Erase, Grant, PublishTerms, Revoke, Void
from ledger.errors import ConflictError, ErrorKind, InvalidInputError, LedgerError
from ledger.instants import parse_instant
from projections.history import history_json
from services.bootstrap import Services, bootstrap
from services.cli import api as cli_api
from services.cli import audit as cli_audit
from services.cli import projections as cli_projections
from services.cli import relay as cli_relay
from services.logs import configure_logging
from services.settings import Settings

EXIT_CODES = {
    ErrorKind.INVALID: 2,
    ErrorKind.NOT_FOUND: 3,
    ErrorKind.CONFLICT: 4,
    ErrorKind.UNAVAILABLE: 5,
}

READ_ONLY_VERBS = frozenset(
    {"check", "filter", "history", "export", "audit", "inclusion", "consistency"}
)
"""Verbs that only read: pointed at a ledger that does not exist, they create nothing."""

Handler = Callable[[argparse.Namespace, Services], int]


class CliUsageError(Exception):
    """A command line that argparse refused."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error so `main` prints it as one line."""
        raise CliUsageError(f"{self.prog}: {message}")


def instant(field: str) -> Callable[[str], Any]:
    """Return an argparse type that parses an ISO 8601 instant with a zone."""

    def parse(text: str) -> Any:
        try:
            return parse_instant(text, field=field)
        except LedgerError as error:
            raise argparse.ArgumentTypeError(error.detail.split(": ", 1)[-1]) from None

    parse.__name__ = "time"
    return parse


def emit_json(value: object) -> None:
    """Print `value` as one line of JSON."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_receipt(args: argparse.Namespace, receipt: Receipt) -> int:
    """Print a write's event id (or the whole receipt with --json)."""
    if args.json:
        emit_json(receipt.to_json())
    else:
        print(receipt.event_id)
    return 0


def evidence_from(args: argparse.Namespace) -> dict[str, Any] | None:
    """Collect `--channel`, `--method` and `--evidence KEY=VALUE` flags into evidence."""
    evidence: dict[str, Any] = {}
    if getattr(args, "channel", None):
        evidence["channel"] = args.channel
    if getattr(args, "method", None):
        evidence["method"] = args.method
    for pair in getattr(args, "evidence", None) or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--evidence {pair!r}: want KEY=VALUE")
        evidence[key] = value
    return evidence or None


# ------------------------------------------------------------------ handlers


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
    )
    return print_receipt(args, services.ledger.execute(command))


def cmd_grant(args: argparse.Namespace, services: Services) -> int:
    """Record a grant."""
    command = Grant(
        subject=args.subject,
        purpose=args.purpose,
        party=args.party,
        content_ids=args.content,
        aspect=args.aspect,
        effective_at=args.at,
        expires_at=args.expires,
        evidence=evidence_from(args),
    )
    return print_receipt(args, services.ledger.execute(command))


def cmd_revoke(args: argparse.Namespace, services: Services) -> int:
    """Record a revocation."""
    command = Revoke(
        subject=args.subject,
        purpose=args.purpose,
        party=args.party,
        content_ids=args.content,
        aspect=args.aspect,
        effective_at=args.at,
        reason=args.reason,
        evidence=evidence_from(args),
    )
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


def cmd_demo(args: argparse.Namespace, services: Services) -> int:
    """Load the demo scenario into an empty ledger (once) and print the walkthrough."""
    from services.demo import find_scenario, load_demo, walkthrough

    scenario = find_scenario(services.ledger)
    if scenario is None:
        held = services.ledger.ledger_position()
        if held:
            raise ConflictError(
                f"the ledger already holds events (position {held}) but not the demo; "
                "the demo loads only into an empty ledger (pass --database-url for a new one)"
            )
        scenario = load_demo(services.ledger)
    walkthrough(services.ledger, scenario, print)
    return 0


# ------------------------------------------------------------------- parser


def build_parser() -> Parser:
    """Build the whole command line: verbs, flags and their handlers."""
    common = Parser(add_help=False)
    common.add_argument("--database-url", help="overrides LEDGER_DATABASE_URL")
    common.add_argument("--data-dir", type=Path, help="overrides LEDGER_DATA_DIR (keys)")
    common.add_argument(
        "--kafka", dest="kafka_bootstrap_servers", help="overrides KAFKA_BOOTSTRAP_SERVERS"
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")

    parser = Parser(prog="consent-ledger", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True

    def verb(name: str, handler: Handler, help_text: str, sub: Any = verbs) -> Parser:
        p: Parser = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler, read_only=name in READ_ONLY_VERBS)
        return p

    def scope_flags(p: Parser) -> None:
        p.add_argument("--party", default="platform", help="platform, a third party or '*'")
        p.add_argument(
            "--content", nargs="+", action="extend", metavar="ID", help="content ids (repeatable)"
        )
        p.add_argument("--aspect", default="all", help="music, voice, likeness or all")

    terms = verbs.add_parser("terms", help="publish or accept terms")
    terms_verbs = terms.add_subparsers(dest="terms_verb", metavar="ACTION", parser_class=Parser)
    terms_verbs.required = True
    p = verb("publish", cmd_terms_publish, "publish a terms version", terms_verbs)
    p.add_argument("version")
    p.add_argument("--effective-from", required=True, type=instant("--effective-from"))
    p.add_argument("--clause", nargs="+", action="extend", metavar="PURPOSE=granted|denied")
    p.add_argument("--document", help="the terms document; its SHA-256 is recorded")
    p = verb("accept", cmd_terms_accept, "record a subject's acceptance of terms", terms_verbs)
    p.add_argument("subject")
    p.add_argument("version")
    p.add_argument("--at", type=instant("--at"), help="effective time (default now)")
    p.add_argument("--channel")
    p.add_argument("--method")
    p.add_argument("--evidence", action="append", metavar="KEY=VALUE")

    p = verb("grant", cmd_grant, "record a consent grant")
    p.add_argument("subject")
    p.add_argument("purpose")
    scope_flags(p)
    p.add_argument("--expires", type=instant("--expires"))
    p.add_argument("--at", type=instant("--at"), help="effective time (default now)")
    p.add_argument("--channel")
    p.add_argument("--method")
    p.add_argument("--evidence", action="append", metavar="KEY=VALUE")

    p = verb("revoke", cmd_revoke, "record a consent revocation")
    p.add_argument("subject")
    p.add_argument("purpose")
    scope_flags(p)
    p.add_argument("--at", type=instant("--at"), help="effective time (default now)")
    p.add_argument("--reason")
    p.add_argument("--channel")
    p.add_argument("--method")
    p.add_argument("--evidence", action="append", metavar="KEY=VALUE")

    p = verb("void", cmd_void, "void an event entered in error")
    p.add_argument("event_id")
    p.add_argument("--reason", required=True)

    p = verb("check", cmd_check, "answer: may this purpose use this subject's content?")
    p.add_argument("subject")
    p.add_argument("purpose")
    scope_flags(p)
    p.add_argument("--at", type=instant("--at"), help="effective instant (default now)")
    p.add_argument("--known-at", type=instant("--known-at"), help="ledger instant (default now)")
    p.add_argument(
        "--min-position", type=int, metavar="N", help="reflect at least the write at position N"
    )

    p = verb("history", cmd_history, "show a subject's events")
    p.add_argument("subject")
    p.add_argument("--at", type=instant("--at"))
    p.add_argument("--known-at", type=instant("--known-at"))

    p = verb("erase", cmd_erase, "erase a subject's personal data")
    p.add_argument("subject")
    p.add_argument("--reason")

    verb("demo", cmd_demo, "load the SoundCloud 2024-2025 scenario and walk through it")

    for extension in (cli_projections, cli_api, cli_audit, cli_relay):
        extension.register(verb, common)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Return the environment's settings with this command line's overrides."""
    return Settings.from_env().with_overrides(
        database_url=args.database_url,
        data_dir=args.data_dir,
        kafka_bootstrap_servers=args.kafka_bootstrap_servers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CliUsageError as error:
        print(f"consent-ledger: error: {str(error).split(': ', 1)[-1]}", file=sys.stderr)
        return 2
    settings = settings_from(args)
    configure_logging(settings.log_format, settings.log_level)
    services: Services | None = None
    try:
        offline = getattr(args, "offline_handler", None)
        if offline is not None:  # a verb that needs no ledger (e.g. verify): no bootstrap
            return int(offline(args))
        services = bootstrap(settings, existing_only=getattr(args, "read_only", False))
        handler: Handler = args.handler
        return handler(args, services)
    except LedgerError as error:
        print(f"consent-ledger: error: {error.detail}", file=sys.stderr)
        return EXIT_CODES[error.kind]
    except KeyboardInterrupt:
        return 130
    finally:
        if services is not None:
            services.close()


if __name__ == "__main__":
    sys.exit(main())
