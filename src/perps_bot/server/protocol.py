"""The HTTP side of a request the API refuses before any handler logic: a JSON body
that is not sent as JSON or cannot be read, and a request aiohttp itself cannot parse.

A body must come as `Content-Type: application/json` (415 otherwise). Beyond saying
what the API takes, this keeps another web page from driving the server: a page may
POST `text/plain` (or a form) to 127.0.0.1 without asking, but a cross-site
`application/json` request needs a CORS preflight, which this server never grants.

aiohttp logs a request it cannot parse (bad framing, a body that is not in its
Content-Encoding) with a traceback on `aiohttp.server`, though the client is at fault
and got its 400: `ClientErrorsInOneLine` makes each such record one warning line.
"""

import logging
from collections.abc import Iterable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from perps_bot.domain import short
from perps_bot.server.requests import RequestError, parse_json

JSON = "application/json"
#: the query parameters each API route takes (others none); `token` any of them
QUERIES = {
    "/api/sessions/{id}/trades": ("limit",),
    "/api/sessions/{id}/equity": ("points", "portfolio"),
    "/api/sessions/{id}/plans": ("portfolio",),
    "/api/sessions/{id}/replan": ("portfolio",),
    "/api/sessions/{id}/strategy": ("portfolio",),
    "/api/sessions/{id}/stream": ("trades", "points"),
}


def unknown_query(route: str, names: Iterable[str]) -> None:
    """RequestError (400) for a query parameter API route `route` does not take: a
    misspelt one (`trades?limt=5`) answered as if nothing had been asked."""
    known = QUERIES.get(route, ())
    unknown = sorted(n for n in names if n not in known and n != "token")
    if unknown:
        takes = f"known: {', '.join(known)}" if known else "it takes none"
        raise RequestError(f"unknown query parameter {short(unknown[0])!r} ({takes})")


async def read_json(request: web.Request) -> object:
    """The request's body as JSON, or RequestError: 415 when it is not sent as JSON, 400
    when it cannot be read (a Content-Encoding it is not in) or parsed."""
    if request.content_type != JSON:
        given = request.headers.get("Content-Type", "").strip()
        what = f"Content-Type {short(given)!r}" if given else "no Content-Type"
        raise RequestError(f"the body must be JSON sent as Content-Type: {JSON} (got {what})",
                           status=415)  # fmt: skip
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:
        raise RequestError(f"unreadable body: {client_fault(exc)}") from None
    return parse_json(raw, request.charset)


def client_fault(exc: BaseException) -> str:
    """aiohttp's reason for refusing what a client sent, on one short line (its
    message may quote the offending line and point at it with a '^' line below)."""
    cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
    reason = cause.message if isinstance(cause, HttpProcessingError) else str(exc)
    lines = [line.strip() for line in str(reason).splitlines() if line.strip(" ^")]
    return short(" ".join(" ".join(lines).split()), 120)


class ClientErrorsInOneLine(logging.Filter):
    """On `aiohttp.server`: a record whose exception is the client's fault (a request
    or body aiohttp cannot parse) becomes one warning line naming it, without the
    traceback; every other record (the server's own faults) passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | web.RequestPayloadError):
            record.msg, record.args = "refused a malformed request: %s", (client_fault(exc),)
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:  # aiohttp's debug lines stay debug
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_QUIET = ClientErrorsInOneLine()


def quiet_client_errors() -> None:
    """Install the filter on aiohttp's server logger (once: the same filter is not added
    twice)."""
    logging.getLogger("aiohttp.server").addFilter(_QUIET)
