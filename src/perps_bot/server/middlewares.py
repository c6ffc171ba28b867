"""What every request of the server (`app`) passes through around its handler.

Every refused request is a 4xx with `{"error": "..."}` (unknown routes and methods,
missing static files and unknown query parameters included, a 405 with its `Allow`),
and one a database cannot answer (damaged while the server runs) a 503 naming it.
Bound to loopback the server answers only to loopback names in `Host` (403 otherwise:
see `hosts`, DNS rebinding). With a token (binds other than loopback) the API,
`/status` and `/metrics` need `Authorization: Bearer <token>` (or `?token=`: a
browser's websocket cannot send the header), otherwise 401; the page and its static
files hold no data.
"""

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from perps_bot.domain import short
from perps_bot.server.hosts import refusal
from perps_bot.server.protocol import unknown_query
from perps_bot.server.requests import RequestError
from perps_bot.storage import StoreError

log = logging.getLogger("perps_bot.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may ask: the token a request must send ('': none), and the names its Host may
    give beyond loopback's (None: any, for a bind beyond loopback, which has a token)."""

    token: str
    hosts: frozenset[str] | None


ACCESS = web.AppKey("access", Access)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        response = web.json_response({"error": str(exc)}, status=exc.status)
        if not request.content.is_eof():  # a body left unread (or unreadable): its
            response.force_close()  # rest must not be taken for the next request
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _refused(request, exc)
    except StoreError as exc:  # a database damaged (or replaced) while the server runs:
        # this request cannot be answered, the server and its other sessions go on
        log.warning("%s %s: %s", request.method, short(request.path, 80), exc)
        return web.json_response({"error": str(exc)}, status=503)


def _refused(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no route, a method the route does not take, a body over
    the size limit, a stream opened without a websocket upgrade) as the API's JSON
    error: the reason, the request, aiohttp's detail when it has one, and a 405's
    `Allow` (RFC 9110: it names the methods the route takes)."""
    error = f"{exc.reason}: {request.method} {short(request.path, 80)}"
    detail = " ".join((exc.text or "").split())
    if detail and detail != f"{exc.status}: {exc.reason}":
        error += f": {short(detail, 120)}"
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return web.json_response({"error": error}, status=exc.status, headers=headers)


@web.middleware
async def _local_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    extra = request.app[ACCESS].hosts
    if extra is not None:
        why = refusal(request.headers.get("Host"), extra)
        if why is not None:
            raise RequestError(why, status=403)
    return await handler(request)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[ACCESS].token
    if token and (request.path.startswith("/api/") or request.path in ("/status", "/metrics")):
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        given = given or request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise RequestError("unauthorized: send Authorization: Bearer <token>", status=401)
    return await handler(request)


@web.middleware
async def _known_queries(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource
    if route is not None and route.canonical.startswith("/api/"):
        unknown_query(route.canonical, request.query)
    return await handler(request)


#: in the order a request meets them (the first one also sees the others' refusals)
MIDDLEWARES = (_errors, _local_host, _auth, _known_queries)
