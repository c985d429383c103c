"""The argument types and flags every verb group of the command line shares.

One `instant` type (ISO 8601 with a zone, the ledger's own parser), one `scope_flags`, one
`evidence_flags`. Identifiers are checked by the ledger's one rule (`check_identifier`),
the same that HTTP applies. A verb
group module `services/cli/<group>.py` exposes `register(verb, common)`, where `verb` is
a `VerbAdder`; `services.cli.main` calls it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from ledger.errors import InvalidInputError, LedgerError
from ledger.instants import parse_instant
from ledger.vocabulary import ASPECTS

if TYPE_CHECKING:
    from services.bootstrap import Services

Handler = Callable[[argparse.Namespace, "Services"], int]
"""A verb's handler: parsed arguments and the bootstrapped services in, exit code out."""

TIME_HELP = "ISO 8601 with Z or an offset, e.g. 2025-05-14T12:00:00Z; a bare date is midnight UTC"


class CliUsageError(Exception):
    """A command line that argparse refused."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error so `main` prints it as one line."""
        raise CliUsageError(f"{self.prog}: {message}")


if TYPE_CHECKING:  # generic only in the type stubs
    Verbs = argparse._SubParsersAction[Parser]
    """Where verbs are added: the top level, or a verb group such as `terms` or `keys`."""


class VerbAdder(Protocol):
    """Add a verb: `verb(name, handler, help)`, optionally under a sub-verb group."""

    def __call__(
        self, name: str, handler: Handler, help_text: str, sub: Verbs = ..., /
    ) -> Parser:  # pragma: no cover - a protocol
        """Return the new verb's parser (it has the global flags)."""
        ...


def instant(flag: str) -> Callable[[str], datetime]:
    """Return an argparse type that parses an ISO 8601 instant with a zone (or a bare date).

    The error names the flag and says what is wrong: not ISO 8601, or no zone.
    """

    def parse(text: str) -> datetime:
        try:
            return parse_instant(text, field=flag)
        except LedgerError as error:
            raise argparse.ArgumentTypeError(error.detail.split(": ", 1)[-1]) from None
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range") from None

    parse.__name__ = "time"
    return parse


def time_flag(p: argparse.ArgumentParser, flag: str, what: str, **options: Any) -> None:
    """Add a time flag (`--at`, `--known-at`, ...) parsed by `instant`; `what` is its help."""
    p.add_argument(flag, type=instant(flag), metavar="T", help=f"{what}; {TIME_HELP}", **options)


def subject_purpose(p: argparse.ArgumentParser, *, purpose: bool = True) -> None:
    """Add the SUBJECT (and PURPOSE) positional arguments."""
    p.add_argument("subject", help="the subject: a rights holder's pseudonymous id, e.g. artist-1")
    if purpose:
        p.add_argument("purpose", help="a purpose of the vocabulary (see consent-ledger --help)")


def scope_flags(p: argparse.ArgumentParser, *, many_contents: bool = True) -> None:
    """Add `--party`, `--content` and `--aspect`: the scope of a grant, revocation or question."""
    p.add_argument(
        "--party",
        default="platform",
        help="'platform' (the default, the first party), a named third party such as "
        "'acme-ai', or '*' (any third party)",
    )
    p.add_argument(
        "--content",
        nargs="+",
        action="extend",
        metavar="ID",
        help="content (track) ids; repeatable"
        + ("; absent: the whole catalogue" if many_contents else "; one id"),
    )
    p.add_argument(
        "--aspect",
        default="all",
        help=f"{', '.join(ASPECTS[:-1])} or {ASPECTS[-1]} (the default)",
    )
    p.add_argument("--model", help="a model name: the event or question names that model")


def actor_flag(p: argparse.ArgumentParser) -> None:
    """Add `--actor`: who acts, the subject (default) or an agent with authority (§2.1)."""
    p.add_argument("--actor", help="who acts: the subject (default) or an authorised agent")


def evidence_flags(p: argparse.ArgumentParser) -> None:
    """Add `--channel`, `--method` and `--evidence KEY=VALUE`: how a choice was made."""
    p.add_argument("--channel", help="where the choice was made, e.g. web, app, paper")
    p.add_argument("--method", help="how it was made, e.g. checkbox, signature")
    p.add_argument(
        "--evidence",
        action="append",
        metavar="KEY=VALUE",
        help="more evidence (ip, user_agent, email, name, note are encrypted); repeatable",
    )


def global_flags() -> Parser:
    """Return the parent parser of the global flags.

    Their default is SUPPRESS so that a flag given before the verb is not overwritten by
    the verb's absent one; `main` fills in `GLOBAL_FLAGS` for the flags given nowhere.
    """
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite:///path.db or postgresql://…; overrides LEDGER_DATABASE_URL",
    )
    common.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder of the keys; overrides LEDGER_DATA_DIR (default: beside the database)",
    )
    common.add_argument(
        "--kafka",
        dest="kafka_bootstrap_servers",
        metavar="HOST:PORT",
        help="Kafka brokers; overrides KAFKA_BOOTSTRAP_SERVERS",
    )
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return common


def evidence_from(args: argparse.Namespace) -> dict[str, str] | None:
    """Collect `--channel`, `--method` and `--evidence KEY=VALUE` flags into evidence."""
    evidence: dict[str, str] = {}
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
