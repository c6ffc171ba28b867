"""The /_emulator/ control endpoints: what a test or a rehearsal drives over HTTP.

| method and path | body | effect |
|---|---|---|
| POST /_emulator/fault | a Fault as JSON | queue a fault (faults.py) |
| DELETE /_emulator/fault | | drop pending faults |
| POST /_emulator/price | {"symbol", "price"} | move last and mark; fills, liquidations |
| POST /_emulator/mark | {"symbol", "mark"} | move the mark only; liquidations |
| POST /_emulator/step | {"n": 1} | n seeded random-walk steps |
| POST /_emulator/funding | | one funding settlement |
| POST /_emulator/liquidation | {"enabled": true} | switch the liquidation engine |
| POST /_emulator/cancel_algo | {"clientAlgoId"} | cancel a waiting algo order as someone else |
| GET /_emulator/state | | snapshot of prices and account |
| GET /_emulator/calls | | every exchange request seen |

``cancel_algo`` is what a person at the exchange's website (or another program on the
same account) does to a stop or take-profit: the order is CANCELED and the bot learns
it only from the exchange (its next poll or reconciliation).

To force a liquidation deterministically, switch it on and POST a price past the
position's ``liquidationPrice`` (positionRisk, or ``liquidation_prices`` in the state).
Bad input answers 400 with {"ok": false, "error": ...}; control calls are never
faulted nor recorded in ``calls``.
"""

from typing import TYPE_CHECKING, Any

from aiohttp import web

from perps_emulator.errors import BinanceError, EmulatorError
from perps_emulator.faults import Fault
from perps_emulator.responses import json_response

if TYPE_CHECKING:
    from perps_emulator.server import EmulatorServer


async def handle_control(
    server: "EmulatorServer", request: web.Request, method: str, name: str
) -> web.Response:
    try:
        body: dict[str, Any] = {}
        if method == "POST" and request.can_read_body:
            loaded = await request.json()
            if not isinstance(loaded, dict):
                raise EmulatorError("control body must be a JSON object")
            body = loaded
        answer = _apply(server, method, name, body)
    except (EmulatorError, ValueError, TypeError, KeyError) as exc:
        return json_response({"ok": False, "error": f"{type(exc).__name__}: {exc}"}, 400)
    if answer is None:
        error = f"no control endpoint {method} /_emulator/{name}"
        return json_response({"ok": False, "error": error}, 404)
    return json_response(answer, 200)


def _apply(server: "EmulatorServer", method: str, name: str, body: dict[str, Any]) -> Any:
    """The answer of one control call; None when there is no such endpoint."""
    if (method, name) == ("POST", "fault"):
        server.inject(Fault.from_json(body))
        return {"ok": True, "pending": len(server.faults.pending)}
    if (method, name) == ("DELETE", "fault"):
        server.clear_faults()
        return {"ok": True, "pending": 0}
    if (method, name) == ("POST", "price"):
        symbol = str(body["symbol"])
        server.set_price(symbol, float(body["price"]))
        return {"ok": True, "price": server.price(symbol)}
    if (method, name) == ("POST", "mark"):
        symbol = str(body["symbol"])
        server.set_mark(symbol, float(body["mark"]))
        return {"ok": True, "mark": server.markets[symbol].mark}
    if (method, name) == ("POST", "step"):
        server.step(int(body.get("n", 1)))
        return {"ok": True}
    if (method, name) == ("POST", "funding"):
        server.settle_funding()
        return {"ok": True}
    if (method, name) == ("POST", "liquidation"):
        enabled = body["enabled"]
        if not isinstance(enabled, bool):
            raise EmulatorError(f"'enabled' must be true or false, got {enabled!r}")
        server.liquidation = enabled
        return {"ok": True, "liquidation": enabled}
    if (method, name) == ("POST", "cancel_algo"):
        return cancel_algo(server, str(body["clientAlgoId"]))
    if (method, name) == ("GET", "state"):
        return server.snapshot()
    if (method, name) == ("GET", "calls"):
        return [list(call) for call in server.calls]
    return None


def cancel_algo(server: "EmulatorServer", client_algo_id: str) -> dict[str, Any]:
    """Cancel the waiting algo order `client_algo_id` behind the bot's back."""
    algos = server.api.algo.algos
    try:
        order = algos.cancel({"clientAlgoId": client_algo_id})
    except BinanceError as exc:
        raise EmulatorError(f"no waiting algo order {client_algo_id!r} ({exc})") from None
    return {"ok": True, "algoId": order.algo_id, "status": order.status}
