"""Command-line verbs of the HTTP API: `serve` and `keys create|list|revoke|rotate`.

`consent-ledger serve [--host H] [--port N]` runs the API on uvicorn. On a ledger that
holds no API key at all it first creates an `admin` key and prints it once, so a fresh
`make run` can be called at once. `consent-ledger keys create NAME --role ROLE` prints a
new key once, alone on its last line; only its SHA-256 is stored. FastAPI and uvicorn
are imported only by `serve`, so the other verbs start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ledger.errors import InvalidInputError
from services.api_keys import ApiKey, Role
from services.cli.args import VerbAdder
from services.cli.output import emit_json
from services.entrypoints import DOCS_PATH, serve_http

if TYPE_CHECKING:
    from services.bootstrap import Services

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(verb: VerbAdder, common: object) -> None:
    """Add this area's verbs: `verb(name, handler, help) -> parser`."""
    p = verb("serve", cmd_serve, "serve the HTTP API (docs at /docs)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (default 1); each duty stays single-active",
    )

    keys = verb("keys", cmd_keys_usage, "manage HTTP API keys: create, list, revoke, rotate")
    actions = keys.add_subparsers(dest="keys_verb", metavar="ACTION", parser_class=type(keys))
    actions.required = True
    p = verb("create", cmd_keys_create, "create an API key; it is printed once", actions)
    p.add_argument("name", help="who or what uses the key, e.g. web-front")
    p.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="writer (writes), reader (checks), auditor (history, proofs), admin (terms, erasure)",
    )
    verb("list", cmd_keys_list, "list the API keys: name, role, created (never secrets)", actions)
    p = verb(
        "revoke", cmd_keys_revoke, "revoke every key with this name (refused with 401)", actions
    )
    p.add_argument("name", help="the name of the key(s) to revoke")
    p = verb(
        "rotate", cmd_keys_rotate, "replace a key by a new one of its role; printed once", actions
    )
    p.add_argument("name", help="the name of the key to replace")


def cmd_keys_usage(args: argparse.Namespace, services: Services) -> int:
    """Refuse `keys` without an action (argparse requires one; kept for completeness)."""
    print(
        "consent-ledger: error: keys needs an action: create, list, revoke or rotate",
        file=sys.stderr,
    )
    return 2


def cmd_keys_list(args: argparse.Namespace, services: Services) -> int:
    """Print every key's name, role and creation time."""
    keys = services.api_keys.list()
    if args.json:
        emit_json(
            [{"name": k.name, "role": k.role.value, "created_at": k.created_at} for k in keys]
        )
        return 0
    for key in keys:
        print(f"{key.name}\t{key.role.value}\t{key.created_at}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, services: Services) -> int:
    """Revoke the keys named NAME."""
    count = services.api_keys.revoke(args.name)
    if args.json:
        emit_json({"name": args.name, "revoked": count})
    else:
        print(f"revoked {count} API key(s) named {args.name!r}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, services: Services) -> int:
    """Replace the key named NAME and print the new one once."""
    return _print_new_key(args, *services.api_keys.rotate(args.name))


def cmd_keys_create(args: argparse.Namespace, services: Services) -> int:
    """Create an API key and print it once."""
    return _print_new_key(args, *services.api_keys.create(args.name, args.role))


def _print_new_key(args: argparse.Namespace, key: ApiKey, secret: str) -> int:
    if args.json:
        emit_json(
            {
                "name": key.name,
                "role": key.role.value,
                "created_at": key.created_at,
                "key": secret,
            }
        )
        return 0
    print(f"API key {key.name!r} with role {key.role.value} created; it is shown only this once:")
    print(secret)
    return 0


def cmd_serve(args: argparse.Namespace, services: Services) -> int:
    """Serve the HTTP API until interrupted."""
    if args.workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, got {args.workers}")
    first = services.api_keys.create_first_admin()
    if first is not None:
        key, secret = first
        print(
            f"No API key existed, so an {key.role.value} key named {key.name!r} was created. "
            "It is shown only this once; send it as `Authorization: Bearer KEY`:"
        )
        print(secret)
    else:
        print("API keys: make one per caller with `consent-ledger keys create NAME --role ROLE`")
    base = f"http://{_url_host(args.host)}:{args.port}"
    print(f"Legal timeline page at {base}/ui/ (sign in with an auditor or admin key)")
    print(f"Consent Ledger API at {base}/v1 — API docs at {base}{DOCS_PATH}")
    sys.stdout.flush()
    serve_http(services, host=args.host, port=args.port, workers=args.workers)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
