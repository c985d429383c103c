"""The HTTP API's factory: `create_app(services)` wires the routes to one deployment.

Nothing is built at import. The app owns four small components beside the routes: the
group committer (writes), the idempotency store, the authenticator (API keys) and the
store watch (fast 503s while the database is down). Its lifespan starts the committer,
the watch and the projector, and stops them, draining queued writes, when the server
stops.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import LedgerError
from ledger.vocabulary import ASPECTS, Vocabulary
from services.bootstrap import Services, bootstrap
from services.http import DOCS_PATH
from services.http.auth import Authenticator
from services.http.fast_check import CHECK_PATH, CheckFastLane, SharedHeadRead
from services.http.group_commit import Committer, build_committer
from services.http.idempotency import IdempotencyStore
from services.http.limits import BodyLimitMiddleware
from services.http.problems import install_problem_handlers
from services.http.rate_limit import RateLimiter
from services.http.routes.consent import consent_router
from services.http.routes.docs import redoc_router
from services.http.routes.dossier import dossier_router
from services.http.routes.health import health_router
from services.http.routes.history import history_router
from services.http.routes.ledger import ledger_router
from services.http.routes.overview import overview_router
from services.http.routes.permissions import answer_check, answer_in_memory, permissions_router
from services.http.routes.rights import rights_router
from services.http.routes.signals import signals_router
from services.http.routes.snapshots import snapshots_router
from services.http.routes.tiles import tiles_router
from services.http.routes.ui import ui_router
from services.http.schemas import FilterRequest, Problem
from services.http.store_watch import StoreWatch
from services.http.writes import WriteGateway
from services.leases import Lease
from services.logs import configure_logging
from services.settings import Settings

REQUEST_ID_HEADER: Final = "X-Request-ID"
REDOC_PATH: Final = "/redoc"
DOCS_ASSETS_PATH: Final = "/docs-assets"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_log = structlog.get_logger("consent_ledger.api")

DESCRIPTION: Final = """\
The consent system of record over HTTP. Every route but the probes and this
documentation needs an API key (`Authorization: Bearer KEY`, from
`consent-ledger keys create NAME --role writer|reader|auditor|admin`).
Writes answer 201 `{event_id, position, recorded_at}` and honour `Idempotency-Key`;
errors are `application/problem+json` (RFC 9457).
"""


def create_app(services: Services, *, committer: Committer | None = None) -> FastAPI:
    """Return the API for one deployment's services.

    `committer` defaults to what the settings ask for: group commit, or one transaction
    per write with `LEDGER_API_GROUP_COMMIT=off`.
    """
    settings = services.settings
    writer = committer or build_committer(
        services.ledger.pipeline,
        group_commit=settings.api_group_commit,
        max_batch=settings.api_commit_max_batch,
    )
    idempotency = IdempotencyStore(
        services.database,
        lease_seconds=settings.idempotency_lease_seconds,
    )
    limiter = (
        RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    auth = Authenticator(services.api_keys, limiter)
    gateway = WriteGateway(writer, idempotency)
    watch = StoreWatch(services.database)

    async def store_reachable() -> None:
        watch.require()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lease = services.leases.lease("projector")
        await run_in_threadpool(_start, services, writer, idempotency, lease)
        watch.start()
        try:
            yield
        finally:
            await run_in_threadpool(watch.stop)
            await run_in_threadpool(_stop, services, writer, lease)

    # FastAPIOffline serves Swagger UI and ReDoc from the package's own files: the
    # documentation pages work without internet access (no CDN).
    app = FastAPIOffline(
        title="Consent Ledger",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=DOCS_PATH,
        redoc_url=None,  # served by `redoc_router`, with a policy that keeps it offline
        static_url=DOCS_ASSETS_PATH,
    )
    app.state.services = services
    app.state.committer = writer
    app.state.idempotency = idempotency
    app.state.store_watch = watch
    gated = [Depends(store_reachable)]
    app.include_router(health_router(services, watch))
    app.include_router(consent_router(gateway, auth), dependencies=gated)
    reads = permissions_router(services, auth)
    app.include_router(reads, dependencies=gated)
    app.include_router(
        rights_router(services.ledger, services.log, gateway, auth), dependencies=gated
    )
    app.include_router(signals_router(services, auth), dependencies=gated)
    app.include_router(history_router(services.ledger, auth), dependencies=gated)
    app.include_router(ledger_router(services, auth), dependencies=gated)
    app.include_router(dossier_router(services, auth), dependencies=gated)
    app.include_router(overview_router(services, auth), dependencies=gated)
    app.include_router(snapshots_router(services, auth), dependencies=gated)
    app.include_router(tiles_router(services, auth), dependencies=gated)
    app.include_router(ui_router())
    app.include_router(
        redoc_router(
            path=REDOC_PATH,
            openapi_url=app.openapi_url or "/openapi.json",
            assets_url=DOCS_ASSETS_PATH,
            title=app.title,
        )
    )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(DOCS_PATH)

    install_problem_handlers(app)
    app.add_middleware(
        CheckFastLane,
        answer=functools.partial(answer_check, services.reader),
        **_in_memory_lane(services),
        auth=auth,
        watch=watch,
        route=_route(reads, CHECK_PATH),
        handlers=app.exception_handlers,
    )
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.openapi = _openapi_builder(app, services.ledger.vocabulary)  # type: ignore[method-assign]
    return app


def _in_memory_lane(services: Services) -> dict[str, Any]:
    """The fast lane's event-loop answer, when the projector keeps an in-memory index
    (`LEDGER_CHECK_INDEX`); without one every fast check goes straight to a thread."""
    projector = services.reader.projector
    if projector is None or projector.index is None:
        return {}
    return {
        "in_memory": functools.partial(answer_in_memory, services.reader),
        "head": SharedHeadRead(services.reader.index_head),
    }


APP_FACTORY: Final = "services.http.app:app_from_environment"
"""What `serve --workers N` hands uvicorn: each API process builds its own app."""


def app_from_environment() -> FastAPI:
    """Return the API for the deployment the environment describes (uvicorn's factory)."""
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(bootstrap(settings))


def _start(
    services: Services, writer: Committer, idempotency: IdempotencyStore, lease: Lease
) -> None:
    writer.start()
    try:
        services.api_keys.ensure_table()
        idempotency.prune()
    except LedgerError as error:  # the store is down: serve 503s until it is back
        _log.warning("store_unavailable_at_start", detail=error.detail)
    # Leader-elected: beside a worker, or with `serve --workers N`, one process projects;
    # the others' reads wait for its tracking record.
    services.projector.start_background(guard=lease.held)


def _stop(services: Services, writer: Committer, lease: Lease) -> None:
    writer.stop()
    services.projector.stop()
    lease.release()


def _route(router: APIRouter, path: str) -> object:
    """Return the router's route for `path` (what the request log names)."""
    return next(r for r in router.routes if getattr(r, "path", None) == path)


def _package_version() -> str:
    try:
        return version("consent-ledger")
    except PackageNotFoundError:
        return "0.0.0"


class RequestContextMiddleware:
    """Bind a request id to the log context, echo it as X-Request-ID, log each request.

    A caller's X-Request-ID is kept when it is a short token; otherwise a new one is made.
    The log line names the route template, never the path or query (they hold ids), nor
    any header (they hold keys).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one request inside its own log context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None)
            _log.info(
                "request",
                method=scope["method"],
                route=route or "unmatched",
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


def _openapi_builder(app: FastAPI, vocabulary: Vocabulary) -> Callable[[], dict[str, Any]]:
    """Return `app.openapi`: FastAPI's schema plus the problem and filter bodies, and the
    deployment's purposes and the aspects documented as enums."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        modes: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
            (Problem, "serialization"),
            (FilterRequest, "validation"),
        )
        for model, mode in modes:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        _document_words(schema, {"purpose": sorted(vocabulary.purposes), "aspect": list(ASPECTS)})
        app.openapi_schema = schema
        return schema

    return build


def _document_words(schema: dict[str, Any], words: dict[str, list[str]]) -> None:
    """Add `enum`s for vocabulary words to every property and parameter of that name."""

    def add_enum(node: dict[str, Any], values: list[str]) -> None:
        if node.get("type") == "string":
            node["enum"] = values
        for branch in node.get("anyOf", ()):
            add_enum(branch, values)

    for component in schema.get("components", {}).get("schemas", {}).values():
        for name, prop in component.get("properties", {}).items():
            if name in words:
                add_enum(prop, words[name])
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("name") in words:
                    add_enum(parameter.get("schema", {}), words[parameter["name"]])
