"""The HTTP API (FastAPI): `services.http.app.create_app(services)` builds it."""

from typing import Final

DOCS_PATH: Final = "/docs"
"""Where the API serves its interactive documentation (importing this loads no FastAPI)."""
