"""Bearer API keys and the roles each route needs, declared on the route as a dependency.

| access      | roles                   | routes                                                  |
| ----------- | ----------------------- | ------------------------------------------------------- |
| `RECORD`    | writer, admin           | grants, revocations, terms acceptances, voids           |
| `READ`      | reader, auditor, admin, | check, filter, AI signals, checkpoint and proofs,       |
|             | data                    | datasets and snapshot files                             |
| `DATA`      | data, admin             | snapshot creation, dataset registration                 |
| `AUDIT`     | auditor, admin          | subject history (shows decrypted evidence)              |
| `ADMINISTER`| admin                   | terms publication, erasure                              |

No key or an unknown key is 401 (with `WWW-Authenticate: Bearer`); a known key whose
role lacks the access is 403; a key over its rate limit (`LEDGER_RATE_LIMIT_PER_SECOND`,
`LEDGER_RATE_LIMIT_BURST`) is 429 with `Retry-After`. A key is found by the SHA-256 of the
bearer secret (an indexed lookup), so no secret is ever compared byte by byte. Keys are
never logged: only their name and role are bound to the request's log context.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Final

import structlog
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from services.api_keys import ApiKey, ApiKeyStore, Role, key_digest
from services.http.problems import ApiProblem
from services.http.rate_limit import RateLimiter, retry_after_header

CACHE_SECONDS: Final = 1.0  # a known key is looked up again at most this often (revocation)
CACHE_MAX_KEYS: Final = 10_000
REFRESH_AHEAD_SECONDS: Final = 0.25  # a key in use is verified again this long before expiry
REALM: Final = "consent-ledger"


class Access(Enum):
    """What a route needs; each value is the set of roles that have it."""

    RECORD = frozenset({Role.WRITER, Role.ADMIN})
    READ = frozenset({Role.READER, Role.AUDITOR, Role.ADMIN, Role.DATA})
    DATA = frozenset({Role.DATA, Role.ADMIN})
    AUDIT = frozenset({Role.AUDITOR, Role.ADMIN})
    ADMINISTER = frozenset({Role.ADMIN})


class NotAuthenticatedError(ApiProblem):
    """No API key, or one the ledger does not know."""

    status = 401
    title = "Not authenticated"


class TooManyRequestsError(ApiProblem):
    """A key that made more requests than its rate limit allows."""

    status = 429
    title = "Too many requests"


class ForbiddenError(ApiProblem):
    """A known API key whose role may not use the route."""

    status = 403
    title = "Forbidden"


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `consent-ledger keys create NAME --role ROLE`.",
)


class Authenticator:
    """Resolve bearer keys to stored keys, with a short in-process cache of known keys."""

    def __init__(self, store: ApiKeyStore, limiter: RateLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()
        # lookups in flight, by event loop and digest: concurrent misses share one
        self._pending: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[ApiKey | None]] = {}

    def cached(self, secret: str) -> ApiKey | None:
        """Return the key for a bearer secret if it was verified less than CACHE_SECONDS
        ago, else None (no lookup)."""
        return self._cached(key_digest(secret))

    def _cached(self, digest: str) -> ApiKey | None:
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    def _refresh_ahead(self, digest: str, secret: str) -> None:
        """Start verifying a busy key again (in the background, on the running loop) in
        the last REFRESH_AHEAD_SECONDS of its cache window, so that its requests do not
        all miss the cache at once when the window ends. A revoked key is still refused
        within CACHE_SECONDS of the revocation: every verification starts after the one
        before it, and a key is served for CACHE_SECONDS from the start of its last."""
        with self._lock:
            cached = self._cache.get(digest)
        if cached is None or cached[1] - time.monotonic() > REFRESH_AHEAD_SECONDS:
            return
        loop = asyncio.get_running_loop()
        if (loop, digest) not in self._pending:
            task = loop.create_task(self._look_up(digest, secret))
            task.add_done_callback(_ignore_outcome)

    def admit_cached(self, secret: str, access: Access) -> ApiKey | None:
        """Admit a request as `requires(access)` would, but only from the cache: return
        the key, bound to the log context and charged one token of its rate limit, when
        it is cached, its role has `access` and it is within its limit; otherwise None,
        with nothing charged or bound (the caller then takes the full route)."""
        digest = key_digest(secret)
        key = self._cached(digest)
        if key is None or key.role not in access.value:
            return None
        self._refresh_ahead(digest, secret)
        if self.limiter is not None and self.limiter.take(key.name) is not None:
            return None
        structlog.contextvars.bind_contextvars(api_key=key.name, role=key.role.value)
        return key

    async def authenticate(self, secret: str) -> ApiKey:
        """Return the key for a bearer secret; raise NotAuthenticatedError if unknown.

        A known key is served from memory for up to CACHE_SECONDS (counted from when
        its lookup began); the store is asked (off the event loop) otherwise, once for
        all the requests that missed it meanwhile. Unknown keys are not cached.
        """
        key = self.cached(secret)
        if key is not None:
            return key
        digest = key_digest(secret)
        key = await self._look_up(digest, secret)
        if key is None:
            raise NotAuthenticatedError(
                "the API key is not known",
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
            )
        return key

    async def _look_up(self, digest: str, secret: str) -> ApiKey | None:
        """Ask the store, sharing a lookup already in flight for the same secret; cache
        a known key for CACHE_SECONDS from when the lookup began."""
        loop = asyncio.get_running_loop()
        flight = (loop, digest)
        pending = self._pending.get(flight)
        if pending is None:
            began = time.monotonic()

            async def look_up() -> ApiKey | None:
                try:
                    found = await run_in_threadpool(self.store.authenticate, secret)
                finally:
                    del self._pending[flight]
                with self._lock:
                    if found is None:  # unknown, or revoked since it was last verified
                        self._cache.pop(digest, None)
                    else:
                        if len(self._cache) >= CACHE_MAX_KEYS:
                            self._cache.clear()
                        self._cache[digest] = (found, began + CACHE_SECONDS)
                return found

            pending = self._pending[flight] = loop.create_task(look_up())
        return await asyncio.shield(pending)

    def requires(self, access: Access) -> Callable[..., Awaitable[ApiKey]]:
        """Return a route dependency that admits only keys whose role has `access`."""

        async def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        ) -> ApiKey:
            if credentials is None or not credentials.credentials:
                raise NotAuthenticatedError(
                    "send an API key as `Authorization: Bearer KEY`",
                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
                )
            key = await self.authenticate(credentials.credentials)
            structlog.contextvars.bind_contextvars(api_key=key.name, role=key.role.value)
            limiter = self.limiter
            if limiter is not None and (wait_s := limiter.take(key.name)) is not None:
                raise TooManyRequestsError(
                    f"API key {key.name!r} is over its rate limit of "
                    f"{limiter.rate:g} requests/s (burst {limiter.burst:g})",
                    headers={"Retry-After": retry_after_header(wait_s)},
                )
            if key.role not in access.value:
                allowed = ", ".join(sorted(r.value for r in access.value))
                raise ForbiddenError(
                    f"role {key.role.value!r} may not use this route; it needs one of: {allowed}",
                    headers={
                        "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'
                    },
                )
            return key

        dependency.__name__ = f"requires_{access.name.lower()}"
        return dependency


def _ignore_outcome(task: asyncio.Task[ApiKey | None]) -> None:
    """Consume a background verification's outcome (a failure shows on the next miss)."""
    if not task.cancelled():
        task.exception()
