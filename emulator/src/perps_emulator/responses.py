"""HTTP answers that are not a route's JSON: JSON helper and scripted faults.

Each fault kind answers the way the real failure looks on the wire (HTML error page,
Binance's -1003 with Retry-After, a body that is not JSON, a held-back answer), so
ccxt raises what it would raise against the real exchange (see faults.py).
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from perps_emulator.faults import DEFAULT_MESSAGES, Fault

HTML_ERROR = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
RATE_LIMIT_MSG = "Too many requests; current limit is 2400 requests per minute."


def json_response(body: Any, status: int) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def faulted(fault: Fault, delay: Callable[[float], Awaitable[None]]) -> web.Response:
    """The answer of a fault that replaces the request (every kind the request is not
    processed for); ``delay`` waits for a timeout fault (cut short on stop)."""
    if fault.kind == "status":
        status = fault.http_status
        return web.Response(
            status=status, text=HTML_ERROR.format(status=status), content_type="text/html"
        )
    if fault.kind == "rate_limit":
        return web.Response(
            status=fault.http_status,
            text=json.dumps({"code": -1003, "msg": fault.msg or RATE_LIMIT_MSG}),
            content_type="application/json",
            headers={"Retry-After": str(fault.retry_after)},
        )
    if fault.kind == "error_code":
        return json_response({"code": fault.code, "msg": fault.message}, fault.http_status)
    if fault.kind == "malformed":
        return web.Response(status=200, text='{"orderId": 1, "sym', content_type="text/plain")
    # timeout: the request is lost; if the client still waits it gets a gateway timeout
    await delay(fault.delay_s)
    return web.Response(status=504, text=HTML_ERROR.format(status=504), content_type="text/html")


def rewritten(response: web.Response, fields: dict[str, Any]) -> web.Response:
    """A processed request's JSON answer with ``fields`` set (the ``rewrite`` fault);
    an error answer stays as it is."""
    if response.status != 200:
        return response
    body = json.loads(response.text or "null")
    for row in body if isinstance(body, list) else [body]:
        if isinstance(row, dict):
            row.update(fields)
    return json_response(body, response.status)


def repeated(response: web.Response) -> web.Response:
    """A processed request's JSON list answer with every row twice (the ``repeat``
    fault); any other answer stays as it is."""
    body = json.loads(response.text or "null") if response.status == 200 else None
    if not isinstance(body, list):
        return response
    return json_response([row for row in body for _ in range(2)], response.status)


def holed(response: web.Response, fields: dict[str, Any]) -> web.Response:
    """A processed request's JSON list answer without the rows whose first value lies in
    [fields["from"], fields["until"]) (the ``hole`` fault); any other answer stays."""
    body = json.loads(response.text or "null") if response.status == 200 else None
    if not isinstance(body, list):
        return response
    start, end = fields["from"], fields["until"]
    kept = [row for row in body if not (isinstance(row, list) and row and start <= row[0] < end)]
    return json_response(kept, response.status)


def reshaped(fault: Fault, response: web.Response) -> web.Response:
    """A processed request's answer as a ``rewrite``, ``repeat`` or ``hole`` fault makes
    it (any other kind: as it is)."""
    if fault.kind == "rewrite" and fault.fields is not None:
        return rewritten(response, fault.fields)
    if fault.kind == "repeat":
        return repeated(response)
    if fault.kind == "hole" and fault.fields is not None:
        return holed(response, fault.fields)
    return response


def status_unknown() -> web.Response:
    """Binance's -1007: the backend did not answer in time; the order may still run."""
    return json_response({"code": -1007, "msg": DEFAULT_MESSAGES[-1007]}, 503)
