"""The legal team's timeline page, end to end: a real uvicorn server, a real headless Chromium.

The server runs `consent-ledger serve` on an SQLite ledger loaded with the demo. The
browser is Debian's Chromium driven by Playwright (never `playwright install`: nothing
is downloaded). Without Chromium the browser tests skip, except under CI=true, where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.events import ConsentRevoked, EventVoided
from projections.dossier import verify_dossier
from services.api_keys import Role
from services.bootstrap import bootstrap
from services.demo import load_demo
from services.settings import Settings
from tests.e2e.server_support import Server, start_server

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


@dataclass(frozen=True)
class DemoSite:
    """A running server over the demo ledger, with a key per role and the demo's landmarks."""

    server: Server
    keys: dict[Role, str]
    echo_revocation: str
    nova_grant: str
    nova_void: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """Load the demo into an SQLite ledger, make keys, and serve it with uvicorn."""
    root = tmp_path_factory.mktemp("web")
    url, data_dir = f"sqlite:///{root / 'ledger.db'}", root / "data"
    services = bootstrap(Settings(database_url=url, data_dir=data_dir, log_format="json"))
    try:
        scenario = load_demo(services.ledger)
        keys = {role: services.api_keys.create(f"web-{role.value}", role)[1] for role in Role}
        revocation = next(
            e.event
            for e in services.ledger.subject_entries("artist-echo")
            if isinstance(e.event, ConsentRevoked)
        )
        void = next(
            e.event
            for e in services.ledger.subject_entries("artist-nova")
            if isinstance(e.event, EventVoided)
        )
    finally:
        services.close()
    server = start_server(url, data_dir)
    try:
        yield DemoSite(
            server,
            keys,
            str(revocation.event_id),
            str(scenario.mistaken_grant.event_id),
            str(void.event_id),
        )
    finally:
        assert server.stop() in (0, -signal.SIGTERM)


def chromium_or_skip() -> None:
    """Skip (fail under CI=true) when headless Chromium or Playwright is not available."""
    reason = None
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests need headless Chromium under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Yield a headless Chromium (Debian's) driven by Playwright."""
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Yield a page in a fresh browser context (its own sessionStorage and cookies)."""
    context = browser.new_context(viewport={"width": 1440, "height": 960}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Any, site: DemoSite, role: Role, subject: str) -> None:
    """Sign in on /ui/ with the key of `role` and open `subject`'s timeline."""
    page.goto(f"{site.server.url}/ui/")
    page.fill("#api-key", site.keys[role])
    page.fill("#subject", subject)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(f"{site.server.url}/ui/subjects/{subject}")


@pytest.mark.browser
def test_auditor_sees_the_revocation_that_denies_training_on_2024_06_01(
    page: Any, site: DemoSite, tmp_path: Path
) -> None:
    sign_in(page, site, Role.AUDITOR, "artist-echo")
    page.wait_for_selector("#timeline tbody tr")
    rows = page.locator("#timeline tbody tr")
    assert rows.count() == 4  # two acceptances, the opt-out, the voice opt-in
    assert page.locator(f"#event-{site.echo_revocation} .badge").text_content() == "Revoked"
    assert "echo@example.org" in page.locator("#timeline").text_content()  # evidence, opened

    page.wait_for_selector("#q-purpose option[value='ai-training']", state="attached")
    page.select_option("#q-purpose", "ai-training")
    page.fill("#q-at", "2024-06-01")
    page.click("#question-form button[type=submit]")
    page.wait_for_selector("#answer.denied")

    assert page.locator("#verdict").text_content() == "Denied"
    assert page.locator("#basis").text_content() == "explicit-revocation"
    assert page.locator("#terms-version").text_content() == "2024-02"
    assert int(page.locator("#position").text_content()) > 0
    deciding = page.locator("#timeline tbody tr.deciding")
    assert deciding.count() == 1
    assert deciding.get_attribute("data-event-id") == site.echo_revocation
    assert page.locator("#deciding a").get_attribute("href") == f"#event-{site.echo_revocation}"
    # The 2025 acceptance and voice grant were not yet in effect on 2024-06-01.
    assert page.locator("#timeline tbody tr.outside").count() == 2

    page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
    assert (tmp_path / "timeline.png").stat().st_size > 10_000

    # The key lives in this tab's sessionStorage only: no cookie, never in the URL.
    assert (
        page.evaluate("sessionStorage.getItem('consent-ledger.api-key')") == site.keys[Role.AUDITOR]
    )
    assert page.context.cookies() == []
    assert site.keys[Role.AUDITOR] not in page.url

    with page.expect_download() as download:
        page.click("#download-dossier")
    dossier = orjson.loads(Path(download.value.path()).read_bytes())
    assert dossier["question"]["at"].startswith("2024-06-01T00:00:00")
    by_purpose = {d["purpose"]: d for d in dossier["decisions"]}
    assert by_purpose["ai-training"]["basis"] == "explicit-revocation"
    assert verify_dossier(dossier) == len(dossier["events"])


@pytest.mark.browser
def test_voided_grant_is_struck_through_and_links_to_its_void(page: Any, site: DemoSite) -> None:
    sign_in(page, site, Role.ADMIN, "artist-nova")
    page.wait_for_selector(f"#event-{site.nova_void}")
    grant = page.locator(f"#event-{site.nova_grant}")
    assert "voided" in (grant.get_attribute("class") or "")
    struck = grant.locator("td").nth(2).evaluate("td => getComputedStyle(td).textDecorationLine")
    assert struck == "line-through"
    assert grant.locator(".void-note a").get_attribute("href") == f"#event-{site.nova_void}"
    assert page.locator(f"#event-{site.nova_void} .badge").text_content() == "Voided"


@pytest.mark.browser
def test_reader_key_is_told_it_is_not_allowed_to_see_the_timeline(
    page: Any, site: DemoSite
) -> None:
    sign_in(page, site, Role.READER, "artist-echo")
    message = page.locator("#timeline-message")
    message.wait_for(state="visible")
    assert "Not allowed" in message.text_content()
    assert "auditor or admin" in message.text_content()
    assert page.locator("#timeline").is_hidden()


@pytest.mark.browser
def test_unknown_key_is_asked_to_sign_in_again(page: Any, site: DemoSite) -> None:
    page.goto(f"{site.server.url}/ui/")
    page.fill("#api-key", "cl_not-a-key")
    page.fill("#subject", "artist-echo")
    page.click("#sign-in-form button[type=submit]")
    message = page.locator("#timeline-message")
    message.wait_for(state="visible")
    assert "not accepted" in message.text_content()
    assert message.locator("a").get_attribute("href") == "/ui/?subject=artist-echo"


def test_page_shells_need_no_key_and_admit_only_their_own_script(site: DemoSite) -> None:
    with httpx.Client(base_url=site.server.url, timeout=10) as client:
        for path in ("/ui/", "/ui/subjects/artist-nova"):
            shell = client.get(path)
            assert shell.status_code == 200
            assert shell.headers["content-type"].startswith("text/html")
            policy = shell.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "default-src 'none'" in policy
        nova = client.get("/ui/subjects/artist-nova").text
        assert "artist-nova" not in nova  # the shell holds no data: the same for every subject
        assert nova == client.get("/ui/subjects/someone-else").text
        assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
        for asset, media in (("ledger.js", "text/javascript"), ("ledger.css", "text/css")):
            served = client.get(f"/ui/static/{asset}")
            assert served.status_code == 200
            assert served.headers["content-type"].startswith(media)
        assert client.get("/ui/static/app.py").status_code == 404
        assert client.get("/ui/static/..%2F__init__.py").status_code == 404
