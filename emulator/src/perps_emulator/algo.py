"""Conditional orders: STOP_MARKET and TAKE_PROFIT_MARKET on the algo order service.

Binance USDM moved conditional orders off ``/fapi/v1/order`` (which now answers
-4120) to ``/fapi/v1/algoOrder`` (``algoType=CONDITIONAL``); ccxt 4.5 sends them
there, looks them up by ``algoId`` / ``clientAlgoId`` and cancels them there too.

Model:
- A conditional order waits (``algoStatus`` NEW) until its price reaches
  ``triggerPrice``: the mark for ``workingType=MARK_PRICE``, the last price for
  ``CONTRACT_PRICE`` (the default). A SELL stop triggers at or below its trigger, a
  BUY stop at or above; a take-profit the other way round. Checked after every
  price move (set_price, set_mark, step).
- Placement refuses a ``quantity`` above MARKET_LOT_SIZE's maxQty (-4005 "Quantity
  greater than max quantity.": the order becomes a market order, and Binance holds
  STOP_MARKET / TAKE_PROFIT_MARKET to the market order's limit), a trigger the current
  price has already reached (-2021 "Order would immediately trigger."), a duplicate
  ``clientAlgoId`` while the earlier one is still NEW (-20132), and ``quantity`` /
  ``reduceOnly`` sent with ``closePosition=true`` (-1106), and an order beyond
  MAX_NUM_ALGO_ORDERS (10) open conditional orders of the symbol (-4045 "Reach max
  stop order limit.").
- When it triggers it becomes a MARKET order of the matching engine (clientOrderId:
  the ``clientAlgoId``; ``origType`` and ``stopPrice`` say what it was) that takes the
  book like any market order; reduce-only caps it at the position (the rest expires),
  ``closePosition`` closes the whole position. The algo order is then FINISHED with
  ``actualOrderId`` (the market order, in /fapi/v1/order, allOrders, userTrades) and
  ``actualPrice`` (its average). A ``closePosition`` order with no position left
  EXPIRES instead.
- Unknown ids answer -2013 (query) and -2011 (cancel), as for plain orders.
"""

from collections.abc import Mapping

from perps_emulator.engine import Engine
from perps_emulator.errors import BinanceError, illegal, mandatory
from perps_emulator.params import (
    client_id_param,
    flag_param,
    price_param,
    quantity_param,
)
from perps_emulator.state import EmuAlgoOrder

ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
WORKING_TYPES = ("CONTRACT_PRICE", "MARK_PRICE")


def triggered(order: EmuAlgoOrder, price: float) -> bool:
    falling = (order.type == "STOP_MARKET") == (order.side == "SELL")
    return price <= order.trigger_price if falling else price >= order.trigger_price


class AlgoOrders:
    """The conditional orders of the account, on top of the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state = engine.state
        self._next_algo_id = 7_000_000_001
        self._next_client_seq = 1

    def place(self, params: Mapping[str, str]) -> EmuAlgoOrder:
        market = self.engine.market(params.get("symbol"))
        spec = market.spec
        if not params.get("algoType"):
            raise mandatory("algoType")
        if params["algoType"].upper() != "CONDITIONAL":
            raise BinanceError(-1130, "Data sent for parameter 'algoType' is not valid.")
        side = (params.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.") if side else mandatory("side")
        kind = (params.get("type") or "").upper()
        if kind not in ALGO_TYPES:
            raise BinanceError(-1116, "Invalid orderType.") if kind else mandatory("type")
        if (params.get("positionSide") or "BOTH").upper() != "BOTH":
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        trigger = price_param(params, "triggerPrice", spec)
        working = (params.get("workingType") or "CONTRACT_PRICE").upper()
        if working not in WORKING_TYPES:
            raise BinanceError(-1130, "Data sent for parameter 'workingType' is not valid.")
        close, reduce_only = flag_param(params, "closePosition"), flag_param(params, "reduceOnly")
        qty = 0.0
        if close:
            for name in ("quantity", "reduceOnly"):
                if params.get(name) and (name != "reduceOnly" or reduce_only):
                    raise BinanceError(-1106, f"Parameter '{name}' sent when not required.")
        else:  # it becomes a market order: MARKET_LOT_SIZE holds, as on Binance (-4005)
            qty = float(quantity_param(params, spec, spec.market_max_qty))
        client_id = client_id_param(params, "clientAlgoId") or self._generated_client_id()
        waiting = [o for o in self.state.algo_orders.values() if o.is_open]
        if any(o.client_algo_id == client_id for o in waiting):
            raise BinanceError(-20132, "The client algo id is duplicated.")
        if sum(o.symbol == spec.symbol for o in waiting) >= spec.max_algo_orders:
            raise BinanceError(-4045, "Reach max stop order limit.")
        now = self.engine.clock()
        order = EmuAlgoOrder(self._next_algo_id, client_id, spec.symbol, side, kind, trigger,
                             working, qty, reduce_only or close, close, now, now)  # fmt: skip
        if triggered(order, self._price(order)):
            raise BinanceError(-2021, "Order would immediately trigger.")
        self._next_algo_id += 1
        self.state.algo_orders[order.algo_id] = order
        return order

    def find(self, params: Mapping[str, str], *, unknown_code: int) -> EmuAlgoOrder:
        algo_id, client_id = params.get("algoId"), params.get("clientAlgoId")
        order: EmuAlgoOrder | None = None
        if algo_id:
            try:
                order = self.state.algo_orders.get(int(algo_id))
            except ValueError:
                raise illegal("algoId") from None
        elif client_id:  # the newest with this id (ids are unique among NEW ones only)
            same = [o for o in self.state.algo_orders.values() if o.client_algo_id == client_id]
            order = same[-1] if same else None
        else:
            raise BinanceError(
                -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"
            )
        symbol = params.get("symbol")
        if order is None or (symbol and order.symbol != symbol):
            if unknown_code == -2011:
                raise BinanceError(-2011, "Unknown order sent.")
            raise BinanceError(-2013, "Order does not exist.")
        return order

    def cancel(self, params: Mapping[str, str]) -> EmuAlgoOrder:
        order = self.find(params, unknown_code=-2011)
        if not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = self.engine.clock()
        return order

    def cancel_all(self, symbol: str) -> None:
        now = self.engine.clock()
        for order in self.state.algo_orders.values():
            if order.is_open and order.symbol == symbol:
                order.status, order.update_time = "CANCELED", now

    def check(self, symbol: str) -> None:
        """Trigger the NEW orders of `symbol` whose price has been reached, oldest first."""
        for order in list(self.state.algo_orders.values()):
            if order.is_open and order.symbol == symbol and triggered(order, self._price(order)):
                self._trigger(order)

    def _trigger(self, order: EmuAlgoOrder) -> None:
        now = self.engine.clock()
        order.trigger_time = order.update_time = now
        position = self.state.positions[order.symbol].amount
        qty = abs(position) if order.close_position else order.quantity
        closing = position != 0 and (position > 0) != (order.side == "BUY")
        if order.close_position and not closing:
            order.status = "EXPIRED"  # nothing left to close
            return
        market = self.engine.markets[order.symbol]
        child = self.engine.record_order(order.client_algo_id, order.symbol, order.side,
                                         "MARKET", "", 0.0, qty, order.reduce_only)  # fmt: skip
        child.orig_type, child.stop_price = order.type, order.trigger_price
        self.engine.take(child, market)
        order.actual_order_id = child.order_id
        order.status = "FINISHED"

    def _price(self, order: EmuAlgoOrder) -> float:
        market = self.engine.markets[order.symbol]
        return market.mark if order.working_type == "MARK_PRICE" else market.last

    def _generated_client_id(self) -> str:
        seq = self._next_client_seq
        self._next_client_seq += 1
        return f"emualgo{seq:015d}"
