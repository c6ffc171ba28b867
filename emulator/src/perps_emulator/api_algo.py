"""The algo (conditional) order routes: /fapi/v1/algoOrder (new, query, cancel),
openAlgoOrders, allAlgoOrders and algoOpenOrders (cancel all). Model: algo.py."""

from collections.abc import Callable
from typing import Any

from perps_emulator.algo import AlgoOrders
from perps_emulator.engine import Engine
from perps_emulator.params import int_param
from perps_emulator.render import Handlers, Params, f8
from perps_emulator.state import EmuAlgoOrder


class AlgoApi(Handlers):
    """Handlers of the algo order routes."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        super().__init__(engine, clock)
        self.algos = AlgoOrders(engine)

    def render(self, order: EmuAlgoOrder) -> dict[str, Any]:
        spec = self.markets[order.symbol].spec
        child = self.engine.state.orders.get(order.actual_order_id or 0)
        return {
            "algoId": order.algo_id,
            "clientAlgoId": order.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": order.type,
            "symbol": order.symbol,
            "side": order.side,
            "positionSide": "BOTH",
            "timeInForce": "GTC",
            "quantity": spec.fmt_qty(order.quantity),
            "algoStatus": order.status,
            "actualOrderId": "" if child is None else str(child.order_id),
            "actualPrice": f8(0.0 if child is None else child.avg_price),
            "triggerPrice": spec.fmt_price(order.trigger_price),
            "price": spec.fmt_price(0.0),
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": order.working_type,
            "priceMatch": "NONE",
            "closePosition": order.close_position,
            "priceProtect": False,
            "reduceOnly": order.reduce_only,
            "createTime": order.time,
            "updateTime": order.update_time,
            "triggerTime": order.trigger_time,
            "goodTillDate": 0,
        }

    def new_order(self, params: Params) -> Any:
        return self.render(self.algos.place(params))

    def query_order(self, params: Params) -> Any:
        return self.render(self.algos.find(params, unknown_code=-2013))

    def cancel_order(self, params: Params) -> Any:
        order = self.algos.cancel(params)
        return {"algoId": order.algo_id, "clientAlgoId": order.client_algo_id,
                "code": "200", "msg": "success"}  # fmt: skip

    def open_orders(self, params: Params) -> Any:
        symbol = params.get("symbol")
        if symbol:
            self.engine.market(symbol)
        return [
            self.render(o)
            for o in self.engine.state.algo_orders.values()
            if o.is_open and (not symbol or o.symbol == symbol)
        ]

    def all_orders(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        from_id = int_param(params, "algoId")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = [
            self.render(o)
            for o in self.engine.state.algo_orders.values()
            if o.symbol == symbol
            and (from_id is None or o.algo_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        return rows[:limit] if from_id is not None else rows[-limit:]

    def cancel_all(self, params: Params) -> Any:
        self.algos.cancel_all(self.engine.market(params.get("symbol")).spec.symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}
