"""Command-line verbs of the HTTP API: `serve` and `keys create`.

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

from services.api_keys import Role
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

    keys = verb("keys", cmd_keys_usage, "manage HTTP API keys")
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


def cmd_keys_usage(args: argparse.Namespace, services: Services) -> int:
    """Refuse `keys` without an action (argparse requires one; kept for completeness)."""
    print("consent-ledger: error: keys needs an action: create", file=sys.stderr)
    return 2


def cmd_keys_create(args: argparse.Namespace, services: Services) -> int:
    """Create an API key and print it once."""
    key, secret = services.api_keys.create(args.name, args.role)
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
    serve_http(services, host=args.host, port=args.port)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
