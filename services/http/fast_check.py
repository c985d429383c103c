"""The fast lane of `GET /v1/check`: the common request shape answered without FastAPI's
per-request machinery, with the same answers, errors, headers and logs.

Profiled under `bench.api` load (docs/benchmarks.md, "Issue 14: HTTP reads"), a check
spent more time in FastAPI's routing, dependency solving and query validation, and in
anyio's thread hop, than in the read itself. `CheckFastLane` sits inside the request
log middleware (so every request is still logged under its route template and carries
its request id) and takes only requests it can answer exactly as the declared route
would:

- `GET /v1/check` whose query names only `subject`, `purpose`, `party`, `content`,
  `aspect` and `model`, each at most once, with `subject` and `purpose` present (every
  other value of those is a plain string to the declared route too: the ledger's own
  rules check them, in `answer_check`, the one implementation both paths call);
- a bearer key the authenticator verified less than `CACHE_SECONDS` ago, whose role may
  read, and that is within its rate limit (`Authenticator.admit_cached`);
- while the store watch holds the store reachable.

Where the projector keeps its in-memory index here, a request the lane takes is answered
on the event loop from that index (`answer_in_memory`), with no thread hop and no
statement of its own: the checks waiting at one moment share one read of the ledger head
(`SharedHeadRead`), sent after every one of them arrived, so each answer still reflects
every write committed before its request. When the index cannot answer (not built yet,
behind that head, a contributor it does not hold), the request is answered on a worker
thread by `answer_check`, as without the index.

Everything else (times, `min_position`, a missing, unknown or unverified key, a role
that may not read, a key over its limit, a repeated or unknown parameter) goes to the
declared route unchanged, which is also the one the OpenAPI document describes. An error
the read raises is answered by the app's own problem handlers, looked up by the error's
class as Starlette does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.http.auth import Access, Authenticator
from services.http.store_watch import StoreWatch

CHECK_PATH: Final = "/v1/check"
FAST_PARAMS: Final = frozenset({"subject", "purpose", "party", "content", "aspect", "model"})
REQUIRED_PARAMS: Final = ("subject", "purpose")

Answer = Callable[..., Response]
"""`answer_check(**params)`: the check route's own work, from its query parameters."""
InMemoryAnswer = Callable[..., Response | None]
"""`answer_in_memory(head, **params)`: the same answer from the in-memory index, or None."""


class SharedHeadRead:
    """The ledger head, read on a worker thread for every check waiting at one moment.

    A caller joins the next read that has not been sent yet; a read is sent at once when
    none is in flight, else as soon as the one in flight returns. So every read a caller
    gets was sent after that caller asked: it reflects every write committed before.
    `read` returns None when there is nothing to read (no in-memory index here).
    """

    def __init__(self, read: Callable[[], int | None]) -> None:
        self._read = read
        self._next: asyncio.Future[int | None] | None = None
        self._in_flight = False

    async def after_now(self) -> int | None:
        """Return a head read sent after this call began."""
        loop = asyncio.get_running_loop()
        joined = self._next
        if joined is None:
            joined = self._next = loop.create_future()
            if not self._in_flight:
                self._send(loop)
        return await asyncio.shield(joined)

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self._in_flight = True
        sent = loop.run_in_executor(None, self._read)

        def returned(done: asyncio.Future[int | None]) -> None:
            self._in_flight = False
            error = done.exception()
            if error is not None:
                waiting.set_exception(error)
            else:
                waiting.set_result(done.result())
            if self._next is not None:
                self._send(loop)

        sent.add_done_callback(returned)


class CheckFastLane:
    """ASGI middleware: answer the common `GET /v1/check` directly (see the module doc).

    `route` is the declared route (named in the request's log line); `handlers` the
    app's exception handlers by class; `answer` runs on a worker thread.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        answer: Answer,
        auth: Authenticator,
        watch: StoreWatch,
        route: object,
        handlers: Mapping[Any, Callable[..., Any]],
        in_memory: InMemoryAnswer | None = None,
        head: SharedHeadRead | None = None,
    ) -> None:
        self.app = app
        self.answer = answer
        self.in_memory = in_memory
        self.head = head
        self.auth = auth
        self.watch = watch
        self.route = route
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request the fast lane can take; pass every other one on."""
        if (
            scope["type"] != "http"
            or scope["path"] != CHECK_PATH
            or scope["method"] != "GET"
            or not self.watch.available
        ):
            await self.app(scope, receive, send)
            return
        params = check_params(scope.get("query_string", b""))
        secret = bearer_secret(scope) if params is not None else None
        if params is None or secret is None or self.auth.admit_cached(secret, Access.READ) is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        response = await self._from_memory(scope, receive, params)
        if response is None:
            run = functools.partial(contextvars.copy_context().run, self.answer, **params)
            try:
                response = await asyncio.get_running_loop().run_in_executor(None, run)
            except Exception as error:  # answered by the app's own handler for its class
                response = await self._handle(Request(scope, receive), error)
        await response(scope, receive, send)

    async def _from_memory(
        self, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> Response | None:
        """The answer from the in-memory index, on the event loop; None to ask a thread."""
        if self.in_memory is None or self.head is None:
            return None
        try:
            head = await self.head.after_now()
        except Exception:  # the thread's own read then meets the error and answers it
            return None
        if head is None:
            return None
        try:
            return self.in_memory(head, **params)
        except Exception as error:  # answered by the app's own handler for its class
            return await self._handle(Request(scope, receive), error)

    async def _handle(self, request: Request, error: Exception) -> Response:
        for cls in type(error).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                response: Response = await handler(request, error)
                return response
        raise error


def check_params(query_string: bytes) -> dict[str, str] | None:
    """Return the query's parameters if the fast lane may take them, else None.

    Decoded as Starlette decodes a query (latin-1, blank values kept).
    """
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in FAST_PARAMS or name in params:
            return None
        params[name] = value
    if any(name not in params for name in REQUIRED_PARAMS):
        return None
    return params


def bearer_secret(scope: Scope) -> str | None:
    """Return the bearer credentials of the first Authorization header, as HTTPBearer
    reads them, or None when there is none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            if scheme.lower() != "bearer" or not credentials:
                return None
            return credentials
    return None
