# long module: one walk through the legal page, its PDF and the offline docs, sharing one server
"""The legal team's picture, end to end in real headless Chromium: the timeline chart, the
at-a-glance matrix, subject search, erasure explained, the court PDF (read back with
Debian's pdftotext and verified by `consent-ledger dossier verify`), and /docs offline.

Screenshots are kept under tests/artifacts/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import expect
from pypdf import PdfReader, PdfWriter

from ledger.instants import parse_instant
from services.api_keys import Role
from services.bootstrap import bootstrap
from services.demo import load_demo
from services.settings import Settings
from tests.e2e import test_web_timeline as web_timeline
from tests.e2e.server_support import Server, start_server
from tests.e2e.test_web_timeline import chromium_or_skip

# The timeline tests' fixtures: Debian's Chromium driven by Playwright, a fresh context a test.
browser = web_timeline.browser
page = web_timeline.page

pytestmark = [pytest.mark.timeout(180), pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass(frozen=True)
class LegalSite:
    """A server over the demo ledger, the ledger's URL and data dir, and a key per role."""

    server: Server
    database_url: str
    data_dir: Path
    keys: dict[Role, str]

    def cli(self, *words: str) -> subprocess.CompletedProcess[str]:
        """Run `consent-ledger WORDS` against this site's ledger."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *words],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={
                "PATH": "/usr/bin:/bin",
                "LEDGER_DATABASE_URL": self.database_url,
                "LEDGER_DATA_DIR": str(self.data_dir),
                "LEDGER_LOG_FORMAT": "json",
            },
        )

    def api(self, path: str, role: Role = Role.AUDITOR, **params: str) -> Any:
        """GET a /v1 route with the key of `role`; return the JSON body."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        response = httpx.get(f"{self.server.url}{path}", params=params, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def legal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LegalSite]:
    """Load the demo into an SQLite ledger, make keys, serve it with uvicorn."""
    root = tmp_path_factory.mktemp("legal")
    url, data_dir = f"sqlite:///{root / 'ledger.db'}", root / "data"
    services = bootstrap(Settings(database_url=url, data_dir=data_dir, log_format="json"))
    try:
        load_demo(services.ledger)
        keys = {role: services.api_keys.create(f"legal-{role.value}", role)[1] for role in Role}
    finally:
        services.close()
    server = start_server(url, data_dir)
    try:
        yield LegalSite(server, url, data_dir, keys)
    finally:
        assert server.stop() in (0, -signal.SIGTERM)


def open_subject(page: Any, legal: LegalSite, subject: str, role: Role = Role.AUDITOR) -> None:
    """Sign in with the key of `role`, open `subject`'s page and wait for its picture."""
    page.goto(f"{legal.server.url}/ui/")
    page.fill("#api-key", legal.keys[role])
    page.fill("#subject", subject)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(f"{legal.server.url}/ui/subjects/{subject}")


def ask(page: Any, purpose: str, at: str = "", known_at: str = "") -> None:
    """Ask the page's question and wait until the answer and the new picture are drawn."""
    page.wait_for_selector(f"#q-purpose option[value='{purpose}']", state="attached")
    page.select_option("#q-purpose", purpose)
    page.fill("#q-at", at)
    page.fill("#q-known-at", known_at)
    page.evaluate("document.body.dataset.overview = 'asking'")
    page.click("#question-form button[type=submit]")
    page.wait_for_selector("#answer:not([hidden])")
    page.wait_for_selector("body[data-overview='ready']", state="attached")


def band_covering(page: Any, view: str, lane: str, instant: str) -> dict[str, Any]:
    """Return the drawn band of `lane` in chart `view` that covers `instant`, with its box."""
    bands = page.eval_on_selector_all(
        f".chart-frame[data-view='{view}'] g.lane[data-lane='{lane}'] rect.band",
        """rects => rects.map(r => ({from: r.dataset.from, to: r.dataset.to,
             allowed: r.dataset.allowed, basis: r.dataset.basis, cls: r.getAttribute('class'),
             x: Number(r.getAttribute('x')), width: Number(r.getAttribute('width'))}))""",
    )
    at = parse_instant(instant)
    found = [b for b in bands if parse_instant(b["from"]) <= at < parse_instant(b["to"])]
    assert len(found) == 1, (lane, instant, bands)
    return dict(found[0])


def d_line_x(page: Any, view: str = "now") -> float:
    """Return the x of the chart's D line."""
    return float(
        page.get_attribute(f".chart-frame[data-view='{view}'] .date-line line", "x1") or "nan"
    )


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_chart_draws_the_right_bands_for_demo_artists_at_two_dates(
    page: Any, legal: LegalSite
) -> None:
    open_subject(page, legal, "artist-echo")
    ask(page, "ai-training", at="2024-06-01")
    revoked = band_covering(page, "now", "ai-training|platform||all", "2024-06-01")
    assert (revoked["allowed"], revoked["basis"]) == ("false", "explicit-revocation")
    assert revoked["x"] <= d_line_x(page) <= revoked["x"] + revoked["width"]
    before = band_covering(page, "now", "ai-training|platform||all", "2024-02-20")
    assert (before["allowed"], before["basis"]) == ("true", "terms-default")
    assert "allowed" in before["cls"]
    assert before["x"] < revoked["x"]
    assert page.text_content(".date-line text") == "D 2024-06-01"
    inference_2024 = band_covering(page, "now", "ai-inference|platform||all", "2024-06-01")
    assert inference_2024["allowed"] == "true"
    shot(page, "legal-echo-2024-06-01.png")

    ask(page, "ai-inference", at="2025-09-01")
    assert page.text_content(".date-line text") == "D 2025-09-01"
    inference_2025 = band_covering(page, "now", "ai-inference|platform||all", "2025-09-01")
    assert (inference_2025["allowed"], inference_2025["basis"]) == ("false", "terms-default")
    assert inference_2025["x"] <= d_line_x(page) <= inference_2025["x"] + inference_2025["width"]
    voice = band_covering(page, "now", "ai-generative-training|platform||voice", "2025-09-01")
    assert voice["allowed"] == "true"
    terms = page.eval_on_selector_all(
        ".chart-frame[data-view='now'] rect.terms-band", "rs => rs.map(r => r.dataset.version)"
    )
    assert terms == ["2024-02", "2025-05"]
    assert page.locator(".chart-frame[data-view='now'] .marker.publication").count() == 2


def test_chart_as_known_before_the_void_shows_what_the_void_changed(
    page: Any, legal: LegalSite
) -> None:
    history = legal.api("/v1/subjects/artist-nova/history")["events"]
    grant = next(e for e in history if e["type"] == "ConsentGranted")
    open_subject(page, legal, "artist-nova")
    ask(page, "ai-generative-training", at="2025-07-01", known_at=grant["recorded_at"])
    lane = "ai-generative-training|platform||all"
    assert band_covering(page, "known-at", lane, "2025-07-01")["allowed"] == "true"
    assert band_covering(page, "now", lane, "2025-07-01")["allowed"] == "false"
    assert page.locator(f".chart-frame[data-view='now'] g.lane.changed[data-lane='{lane}']").count()
    event = f"[data-event-id='{grant['event_id']}']"
    struck = page.locator(f".chart-frame[data-view='now'] .marker.voided{event}")
    assert struck.count() == 1
    live = page.locator(f".chart-frame[data-view='known-at'] .marker{event}")
    assert "voided" not in (live.get_attribute("class") or "")
    shot(page, "legal-nova-known-before-void.png")


def test_focusing_a_marker_shows_the_event_and_its_evidence(page: Any, legal: LegalSite) -> None:
    open_subject(page, legal, "artist-echo")
    page.wait_for_selector("body[data-overview='ready']", state="attached")
    marker = page.locator(".chart-frame[data-view='now'] .marker.revocation").first
    marker.focus()
    tip = page.locator("#chart-tooltip")
    tip.wait_for(state="visible")
    assert "Revoked" in tip.text_content()
    assert "artist opted out" in tip.text_content()
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden")
    grant = page.locator(".chart-frame[data-view='now'] .marker.grant").first
    grant.hover()
    tip.wait_for(state="visible")
    assert "Evidence" in tip.text_content()
    assert "web" in tip.text_content()
    shot(page, "legal-echo-tooltip.png")


@pytest.mark.parametrize("subject", ["artist-vega", "artist-lumen"])
def test_matrix_matches_check_for_every_cell(page: Any, legal: LegalSite, subject: str) -> None:
    open_subject(page, legal, subject)
    ask(page, "ai-training", at="2025-09-01")
    cells = page.eval_on_selector_all(
        "#matrix-table td.cell",
        "tds => tds.map(td => [td.dataset.purpose, td.dataset.party, td.dataset.allowed, "
        "td.dataset.basis])",
    )
    purposes = page.eval_on_selector_all("#matrix-table tbody th", "ths => ths.length")
    parties = page.eval_on_selector_all("#matrix-table thead th", "ths => ths.length - 1")
    assert len(cells) == purposes * parties >= 7 * 2
    known_at = page.text_content("#glance-when")
    assert known_at
    assert "K " in known_at
    for purpose, party, allowed, basis in cells:
        answer = legal.api(
            "/v1/check",
            Role.READER,
            subject=subject,
            purpose=purpose,
            party=party,
            at="2025-09-01",
        )
        assert (allowed, basis) == (str(answer["allowed"]).lower(), answer["basis"])
    assert page.locator("#terms-clauses").text_content().count("granted") >= 1


def test_search_box_suggests_a_demo_artist_and_opens_it(page: Any, legal: LegalSite) -> None:
    open_subject(page, legal, "artist-echo")
    page.fill("#other-subject", "artist-n")
    page.wait_for_selector("#subject-suggestions option[value='artist-nova']", state="attached")
    assert page.locator("#subject-suggestions option").count() == 1
    page.fill("#other-subject", "artist-nova")
    page.click("#subject-form button[type=submit]")
    page.wait_for_url(f"{legal.server.url}/ui/subjects/artist-nova")
    page.wait_for_selector("body[data-overview='ready']", state="attached")


def test_unknown_subject_is_said_plainly_with_no_verdict(page: Any, legal: LegalSite) -> None:
    open_subject(page, legal, "artist-nobody")
    message = page.locator("#subject-message")
    message.wait_for(state="visible")
    assert "Unknown subject" in message.text_content()
    assert "artist-nobody" in message.text_content()
    assert page.locator(".card.question").is_hidden()
    assert page.locator("#verdict").count() == 0


def test_erasure_is_explained_and_offers_the_question_as_known_just_before(
    page: Any, legal: LegalSite
) -> None:
    open_subject(page, legal, "artist-ghost")
    ask(page, "ai-training")
    assert page.text_content("#basis") == "erased"
    note = page.locator("#erasure-note")
    assert "personal data was destroyed on" in note.text_content()
    assert "remain provable" in note.text_content()
    shot(page, "legal-ghost-erased.png")
    page.click("#ask-before-erasure")
    # a locator assertion waits without `eval`, which the page's CSP forbids
    expect(page.locator("#basis")).to_have_text(
        "explicit-grant"
    )  # the 2024-04-01 grant, still provable
    assert page.text_content("#verdict") == "Allowed"
    known_at = page.input_value("#q-known-at")
    erasure = next(
        e
        for e in legal.api("/v1/subjects/artist-ghost/history")["events"]
        if e["type"] == "SubjectErased"
    )
    assert parse_instant(known_at) < parse_instant(erasure["recorded_at"])
    assert (parse_instant(erasure["recorded_at"]) - parse_instant(known_at)).total_seconds() < 1e-3


def pdf_text(path: Path) -> str:
    """Return the text of a PDF as Debian's pdftotext reads it."""
    if shutil.which("pdftotext") is None:
        chromium_or_skip()  # the same rule: skip locally, fail under CI
        pytest.fail("pdftotext is missing (apt-get install poppler-utils)")
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def public_key_file(legal: LegalSite, tmp_path: Path) -> Path:
    """Write the ledger's published checkpoint key to a file, as an auditor would keep it."""
    key = legal.api("/v1/ledger/checkpoint", Role.READER)["public_key"]
    assert len(base64.b64decode(key)) == 32
    path = tmp_path / "ledger.pub"
    path.write_text(key + "\n")
    return path


def tampered(pdf: Path, out: Path) -> Path:
    """Write a copy of `pdf` whose attached dossier has one event record altered."""
    reader = PdfReader(pdf)
    dossier = orjson.loads(reader.attachments["dossier.json"][0])
    dossier["events"][0]["record"]["effective_at"] = "2020-01-01T00:00:00.000000Z"
    writer = PdfWriter()
    for sheet in reader.pages:
        writer.add_page(sheet)
    writer.add_attachment("dossier.json", orjson.dumps(dossier))
    buffer = BytesIO()
    writer.write(buffer)
    out.write_bytes(buffer.getvalue())
    return out


def test_court_pdf_from_the_page_holds_the_verdicts_and_checkpoint_and_verifies(
    page: Any, legal: LegalSite, tmp_path: Path
) -> None:
    open_subject(page, legal, "artist-echo")
    ask(page, "ai-training", at="2024-06-01")
    with page.expect_download(timeout=120_000) as download:
        page.click("#download-pdf")
    pdf = tmp_path / "echo.pdf"
    shutil.copy(download.value.path(), pdf)
    text = pdf_text(pdf)
    dossier = orjson.loads(PdfReader(pdf).attachments["dossier.json"][0])
    assert "artist-echo" in text
    assert "DENIED" in text
    assert "explicit-revocation" in text
    assert dossier["checkpoint"]["root_hash"] in text.replace("\n", "")
    assert "How to verify this dossier" in text
    assert "ai-generative-training" in text
    assert "terms-default" in text
    key = public_key_file(legal, tmp_path)
    verified = legal.cli("dossier", "verify", str(pdf), "--public-key", str(key))
    assert verified.returncode == 0, verified.stderr
    assert "dossier verified" in verified.stdout
    forged = legal.cli(
        "dossier", "verify", str(tampered(pdf, tmp_path / "forged.pdf")), "--public-key", str(key)
    )
    assert forged.returncode == 1
    assert "FAILED" in forged.stderr
    assert len(forged.stderr.strip().splitlines()) == 1
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(pdf.read_bytes()[: pdf.stat().st_size // 2])
    assert legal.cli("dossier", "verify", str(cut), "--public-key", str(key)).returncode == 1
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(pdf), str(ARTIFACTS / "legal-dossier-page")],
        check=False,
    )


def test_cli_writes_pdf_and_json_dossiers_that_verify(legal: LegalSite, tmp_path: Path) -> None:
    chromium_or_skip()
    key = public_key_file(legal, tmp_path)
    for name in ("orion.pdf", "orion.json"):
        out = tmp_path / name
        made = legal.cli(
            "dossier",
            "artist-orion",
            "--purpose",
            "ai-training",
            "--at",
            "2024-01-01",
            "--out",
            str(out),
        )
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"wrote {out}")
        assert "ai-training allowed" in made.stdout
        verified = legal.cli("dossier", "verify", str(out), "--public-key", str(key), "--json")
        assert verified.returncode == 0, verified.stderr
        assert orjson.loads(verified.stdout)["verified"] is True
    assert "artist-orion" in pdf_text(tmp_path / "orion.pdf")
    refused = legal.cli("dossier", "artist-orion", "--out", str(tmp_path / "orion.txt"))
    assert refused.returncode == 2
    assert not (tmp_path / "orion.txt").exists()
    unknown = legal.cli("dossier", "nobody", "--out", str(tmp_path / "nobody.pdf"))
    assert unknown.returncode == 3
    assert not (tmp_path / "nobody.pdf").exists()


def test_docs_and_redoc_render_without_network(page: Any, legal: LegalSite) -> None:
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(legal.server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{legal.server.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "ps => ps.map(p => p.textContent)")
    assert "/v1/check" in [p.strip() for p in paths]
    assert "/v1/subjects" in [p.strip() for p in paths]
    shot(page, "docs-offline.png")
    page.goto(f"{legal.server.url}/redoc")
    page.wait_for_selector("h1:has-text('Consent Ledger')", timeout=30_000)
    assert page.locator("text=May this party use this subject's content").count() >= 1
    shot(page, "redoc-offline.png")
    assert elsewhere == []  # both pages rendered with no request leaving this server
