"""The court-ready dossier: print a JSON dossier to PDF with headless Chromium, read it back.

Why Chromium's print-to-PDF and not WeasyPrint: the PDF is the timeline page's own
rendering. The chart and the matrix are drawn by the same dependency-free script the web
page runs (`services/http/web/chart.js`), so the court sees exactly the picture the legal
team saw, with one implementation of each drawing; Chromium is already a dependency of the
browser tests and of the deployment image, whereas WeasyPrint runs no JavaScript and would
need a second, Python-side drawing of the chart plus Debian's Pango.

The printed page is `dossier.html` of the web package with the dossier JSON in a data
block (never executed); Chromium runs with a fresh profile and no network features. The
JSON dossier is then attached to the PDF as `dossier.json` (an embedded file, read back
with pypdf), so `consent-ledger dossier verify FILE.pdf` checks the very document printed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib.resources import files
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import orjson
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from ledger.errors import InvalidInputError, StoreUnavailableError

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--no-pdf-header-footer",
    "--virtual-time-budget=10000",  # let the page's script draw before printing
)
ATTACHMENT: Final = "dossier.json"
PRINT_SECONDS: Final = 90.0
WEB_PACKAGE: Final = "services.http.web"
_PAGE_FILES: Final = ("ledger.css", "chart.js", "ledger.js")


class PdfRenderError(StoreUnavailableError):
    """Signal that the PDF could not be printed (no Chromium, or it failed or hung)."""

    title = "PDF rendering unavailable"


class NotADossierFileError(InvalidInputError):
    """Refuse a file that is neither a JSON dossier nor a PDF carrying one."""

    title = "Not a dossier"


def chromium_path() -> str:
    """Return the Chromium executable to print with; raise PdfRenderError without one."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise PdfRenderError(
            f"no Chromium at {CHROMIUM} or on PATH (apt-get install chromium); "
            "ask for the JSON dossier instead"
        )
    return found


def dossier_html(dossier: dict[str, Any]) -> str:
    """Return the printable page of a dossier: the template with the JSON in its data block."""
    template = files(WEB_PACKAGE).joinpath("dossier.html").read_text("utf-8")
    # In a <script> data block only "</" could end the block early; "<\/" is the same JSON.
    data = orjson.dumps(dossier).decode("utf-8").replace("</", "<\\/")
    return template.replace("{{DOSSIER_JSON}}", data)


def render_dossier_pdf(dossier: dict[str, Any], *, timeout: float = PRINT_SECONDS) -> bytes:
    """Return the PDF of `dossier`, with the JSON dossier attached as `dossier.json`.

    Raises PdfRenderError when Chromium is missing, fails, or takes over `timeout` seconds.
    """
    chromium = chromium_path()
    web = files(WEB_PACKAGE)
    with tempfile.TemporaryDirectory(prefix="consent-ledger-dossier-") as scratch:
        root = Path(scratch)
        page = root / "dossier.html"
        page.write_text(dossier_html(dossier), "utf-8")
        for name in _PAGE_FILES:
            (root / name).write_bytes(web.joinpath(name).read_bytes())
        printed = root / "dossier.pdf"
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={root / 'profile'}",
            f"--print-to-pdf={printed}",
            page.as_uri(),
        ]
        try:
            # The command is ours: the browser's path and a file URI in our scratch directory.
            subprocess.run(  # noqa: S603
                command, capture_output=True, timeout=timeout, check=True, cwd=root
            )
        except subprocess.TimeoutExpired:
            raise PdfRenderError(f"Chromium did not print the dossier in {timeout:g} s") from None
        except (subprocess.CalledProcessError, OSError) as error:
            raise PdfRenderError(f"Chromium could not print the dossier: {error}") from None
        if not printed.exists() or printed.stat().st_size == 0:
            raise PdfRenderError("Chromium exited without writing the PDF")
        return attach_dossier(printed.read_bytes(), dossier)


def attach_dossier(pdf: bytes, dossier: dict[str, Any]) -> bytes:
    """Return `pdf` with `dossier` attached as `dossier.json` and its title set."""
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    writer.add_attachment(ATTACHMENT, orjson.dumps(dossier, option=orjson.OPT_INDENT_2))
    writer.add_metadata(
        {
            "/Title": f"Consent dossier: {dossier.get('subject')}",
            "/Subject": "What the subject had allowed, with evidence and Merkle proofs",
            "/Creator": "Consent Ledger",
        }
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def read_dossier(data: bytes, *, name: str = "file") -> dict[str, Any]:
    """Return the JSON dossier in `data`: a PDF's `dossier.json` attachment, or JSON itself.

    Raises NotADossierFileError naming `name` when neither holds a JSON object.
    """
    if data.startswith(b"%PDF"):
        try:
            attached = PdfReader(BytesIO(data)).attachments.get(ATTACHMENT)
        except (PdfReadError, ValueError, KeyError, TypeError) as error:
            raise NotADossierFileError(f"{name}: not a readable PDF ({error})") from None
        if not attached:
            raise NotADossierFileError(f"{name}: the PDF carries no {ATTACHMENT} attachment")
        data = attached[0]
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise NotADossierFileError(f"{name}: not a JSON dossier ({error})") from None
    if not isinstance(body, dict):
        raise NotADossierFileError(f"{name}: want a JSON object, got {type(body).__name__}")
    return body
