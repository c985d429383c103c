"""Command-line verbs of the AI-usage signals, registered on the main parser.

    consent-ledger signals export DIR                       robots.txt, tdmrep.json, rsl.xml
    consent-ledger signals publish [--follow]               record SignalsPublished on change
    consent-ledger signals history SUBJECT [CONTENT] [--at T]   what was published, when
    consent-ledger signals audit --url-template T [--sample N] [--json]   drift check

`export` and the site-wide routes need `LEDGER_CONTENT_URL_TEMPLATE`; `audit` takes the
template of the site it checks and exits 1 listing every mismatch.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ledger.vocabulary import check_identifier
from projections.signals.service import AiSignalService, manifest
from projections.signals.urls import UrlTemplate
from services.cli.args import instant
from services.drift import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, DEFAULT_SAMPLE, run_audit

if TYPE_CHECKING:
    from services.bootstrap import Services

MANIFEST: str = "signals.json"
FOLLOW_INTERVAL_S: float = 1.0


def register(verb: Any, common: Any) -> None:
    """Add `signals export|publish|history|audit`: `verb(name, handler, help[, sub])`."""
    group = verb("signals", cmd_usage, "AI-usage signals: site-wide files, evidence, drift")
    actions = group.add_subparsers(dest="signals_verb", metavar="ACTION", parser_class=type(group))
    actions.required = True

    p = verb("export", cmd_export, "write robots.txt, tdmrep.json and rsl.xml into DIR", actions)
    p.add_argument("directory", type=Path, metavar="DIR", help="where to write the files")

    p = verb(
        "publish", cmd_publish, "record SignalsPublished for pages whose signals changed", actions
    )
    p.add_argument("--follow", action="store_true", help="keep following the ledger (a worker)")
    p.add_argument(
        "--interval", type=float, default=FOLLOW_INTERVAL_S, help="seconds between looks"
    )

    p = verb(
        "history", cmd_history, "show what the signals of a subject's pages said, when", actions
    )
    p.add_argument("subject", help="the subject whose pages were published")
    p.add_argument("content", nargs="?", help="one content id ('-': the catalogue)")
    p.add_argument("--at", type=instant("--at"), help="what was published at this instant")

    p = verb("audit", cmd_audit, "check the published pages and files against the ledger", actions)
    p.add_argument(
        "--url-template", required=True, help="e.g. https://music.example/{subject}/{content}"
    )
    p.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help="pages to check (default 100)"
    )
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests at once")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, help="seconds in all")


def _service(services: Services) -> AiSignalService:
    settings = services.settings
    return services.signals.configure(settings.tdm_policy_url, settings.content_url_template)


def cmd_usage(args: argparse.Namespace, services: Services) -> int:
    """Refuse `signals` without an action (argparse requires one)."""
    print(
        "consent-ledger: error: signals needs an action: export, publish, history, audit",
        file=sys.stderr,
    )
    return 2


def cmd_export(args: argparse.Namespace, services: Services) -> int:
    """Write the site-wide files and `signals.json` (their SHA-256) into DIR."""
    service = _service(services)
    site = service.export(args.directory)
    summary = manifest(site, service.renderer.versions)
    (args.directory / MANIFEST).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if args.json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        for name, file in site.files.items():
            print(f"{file.sha256}  {args.directory / name}  ({file.size} bytes)")
    return 0


def cmd_publish(args: argparse.Namespace, services: Services) -> int:
    """Record SignalsPublished for changed pages; with --follow, until interrupted."""
    service = _service(services)
    stop = threading.Event()
    while True:
        report = service.publish()
        if args.json:
            line = {"position": report.position, "examined": report.examined,
                    "published": [r.to_json() for r in report.published]}  # fmt: skip
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
        else:
            for receipt in report.published:
                print(receipt.event_id)
        if not args.follow:
            return 0
        if stop.wait(args.interval):
            return 0


def cmd_history(args: argparse.Namespace, services: Services) -> int:
    """Print the SignalsPublished events of a subject's pages (or of one, or at --at)."""
    subject = check_identifier(args.subject, field="subject")
    content = args.content
    if content is not None and content != "-":
        content = check_identifier(content, field="content")
    rows = _service(services).history(subject, content, at=args.at)
    if args.json:
        sys.stdout.write(orjson.dumps(rows).decode() + "\n")
        return 0
    for row in rows:
        page = row["content"] if row["content"] is not None else "(catalogue)"
        signals = row["signals"]
        print(
            f"{row['recorded_at']}  position {row['position']}  {page}  "
            f"Content-Usage: {signals.get('content_usage')}  "
            f"X-Robots-Tag: {signals.get('x_robots_tag')}  "
            f"tdm-reservation: {signals['tdm']['tdm-reservation']}  "
            f"json sha256 {row['digests']['json']}"
        )
    return 0


def cmd_audit(args: argparse.Namespace, services: Services) -> int:
    """Fetch pages and files named by --url-template; exit 1 listing every mismatch."""
    template = UrlTemplate.parse(args.url_template)
    try:
        report = run_audit(
            _service(services),
            template,
            sample=max(0, args.sample),
            concurrency=args.concurrency,
            timeout=args.timeout,
            deadline=args.deadline,
        )
    except TimeoutError:
        print(
            f"consent-ledger: error: the audit did not finish within {args.deadline:g} s",
            file=sys.stderr,
        )
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_json()).decode() + "\n")
    else:
        for mismatch in report.mismatches:
            print(mismatch.line())
        print(f"{report.pages} pages checked, {len(report.mismatches)} mismatches")
    return 1 if report.mismatches else 0
