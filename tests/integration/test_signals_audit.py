"""The drift check against a real web server on loopback: correct pages pass, lies fail.

The server plays the platform's web front: it serves each page with the signal headers
and `<meta>` tags, and the site-wide files, as the ledger rendered them when it was
last deployed. After a revocation it goes on serving the old ones: the check must say so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from projections.signals.sitewide import FILES, WELL_KNOWN_PATHS
from projections.signals.urls import UrlTemplate
from services.bootstrap import Services
from services.cli.main import main

pytestmark = pytest.mark.timeout(120)

Routes = dict[str, tuple[int, dict[str, str], bytes]]


class WebFront:
    """A loopback HTTP server answering from a table of path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: Routes = {}
        self.requested: list[str] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                front.requested.append(self.path)
                status, headers, body = front.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def web() -> Iterator[WebFront]:
    front = WebFront()
    front.thread.start()
    yield front
    front.server.shutdown()
    front.server.server_close()


def deploy(services: Services, web: WebFront, tmp_path: Path, pages: list[tuple[str, str]]) -> None:
    """Publish, on the web front, what the ledger says now about these pages and the site."""
    template = UrlTemplate.parse(web.origin + "/{subject}/{content}")
    service = services.signals.configure(None, template.template)
    for subject, content in pages:
        signals = service.page(subject, content).signals
        html = f"<html><head>{signals.meta_html()}</head><body>track</body></html>".encode()
        headers = {**signals.headers(), "Content-Type": "text/html"}
        web.routes[template.path(subject, content)] = (200, headers, html)
        catalogue = service.page(subject, None).signals
        web.routes[template.path(subject, None)] = (200, dict(catalogue.headers()), b"artist")
    out = tmp_path / f"site-{len(web.requested)}"
    service.export(out)
    for name in FILES:
        web.routes[WELL_KNOWN_PATHS[name]] = (200, {}, (out / name).read_bytes())


def audit(services: Services, web: WebFront, *extra: str) -> list[str]:
    settings = services.settings
    argv = [
        "signals", "audit", "--url-template", web.origin + "/{subject}/{content}",
        "--database-url", settings.database_url, "--data-dir", str(settings.data_dir), *extra,
    ]  # fmt: skip
    return [str(main(argv))]


def run_audit(
    services: Services, web: WebFront, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    (code,) = audit(services, web, "--json", "--concurrency", "4", "--timeout", "5")
    return int(code), orjson.loads(capsys.readouterr().out)


def test_pages_and_files_that_say_what_the_ledger_says_pass(
    services: Services, web: WebFront, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services.ledger.grant("artist-1", "ai-generative-training", party="*")
    services.ledger.revoke("artist-1", "ai-generative-training", party="*", content_ids=["t2"])
    services.ledger.grant("artist-2", "data-mining", party="*", content_ids=["t9"])
    deploy(services, web, tmp_path, [("artist-1", "t2"), ("artist-2", "t9")])
    code, report = run_audit(services, web, capsys)
    assert report["mismatches"] == []
    assert code == 0
    assert report["pages"] == 4  # two catalogues, two contents with facts


def test_a_page_still_saying_allowed_after_a_revocation_fails_the_check(
    services: Services, web: WebFront, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for purpose in ("ai-training", "ai-generative-training"):
        services.ledger.grant("artist-1", purpose, party="*", content_ids=["t1"])
    deploy(services, web, tmp_path, [("artist-1", "t1")])
    services.ledger.revoke("artist-1", "ai-generative-training", party="*", content_ids=["t1"])
    code, report = run_audit(services, web, capsys)
    assert code == 1
    found = {(m["url"], m["source"], m["field"]) for m in report["mismatches"]}
    page = web.origin + "/artist-1/t1"
    assert (page, "header", "X-Robots-Tag") in found
    assert (page, "meta", "cawg.ai_generative_training") in found
    assert (page, "robots.txt", "content-usage") in found  # the old robots.txt lies too


def test_a_stale_robots_txt_alone_is_caught_and_listed(
    services: Services, web: WebFront, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services.ledger.grant("artist-1", "ai-training", party="*")
    services.ledger.grant("artist-1", "ai-generative-training", party="*")
    deploy(services, web, tmp_path, [("artist-1", "t1")])
    stale = web.routes["/robots.txt"]
    services.ledger.revoke("artist-1", "ai-training", party="*")
    deploy(services, web, tmp_path, [("artist-1", "t1")])
    web.routes["/robots.txt"] = stale
    code, report = run_audit(services, web, capsys)
    assert code == 1
    mismatches = report["mismatches"]
    assert [(m["source"], m["field"], m["served"], m["expected"]) for m in mismatches] == [
        ("robots.txt", "content-usage", "train-ai=y", "train-ai=n"),
        ("robots.txt", "content-signal", "ai-train=yes, ai-input=no", "ai-train=no, ai-input=no"),
    ]


def test_the_check_asks_only_the_template_host_and_follows_no_redirect(
    services: Services, web: WebFront, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = WebFront()
    elsewhere.thread.start()
    try:
        services.ledger.grant("artist-1", "data-mining", party="*", content_ids=["t1"])
        deploy(services, web, tmp_path, [("artist-1", "t1")])
        web.routes["/artist-1/t1"] = (302, {"Location": elsewhere.origin + "/artist-1/t1"}, b"")
        code, report = run_audit(services, web, capsys)
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()
    assert code == 1
    assert elsewhere.requested == []
    assert sorted(web.requested[-4:]) == sorted(
        ["/robots.txt", "/.well-known/tdmrep.json", "/artist-1/", "/artist-1/t1"]
    )
    (fetch,) = [m for m in report["mismatches"] if m["source"] == "fetch"]
    assert fetch["served"] == "HTTP 302"


def test_the_text_report_lists_every_mismatch_one_per_line(
    services: Services, web: WebFront, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services.ledger.grant("artist-1", "ai-training", party="*", content_ids=["t1"])
    deploy(services, web, tmp_path, [("artist-1", "t1")])
    services.ledger.revoke("artist-1", "ai-training", party="*", content_ids=["t1"])
    (code,) = audit(services, web)
    lines = capsys.readouterr().out.splitlines()
    assert code == "1"
    assert lines[-1].endswith("mismatches")
    assert any("/artist-1/t1: meta cawg.ai_training: served 'allowed'" in line for line in lines)
