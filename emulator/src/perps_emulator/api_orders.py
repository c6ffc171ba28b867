"""Order, trade, income and forced-order endpoints (signed).

``forceOrders`` lists the exchange's own closing orders (liquidations, clientOrderId
``autoclose-...``) in Binance's shape: a list of order objects, filtered by symbol,
autoCloseType (LIQUIDATION | ADL; the emulator has no ADL), startTime, endTime and
limit (default 50, at most 100), oldest first: from startTime its first orders, else
the last ones, of one window of at most 7 days (as the trade list's).

``userTrades`` keeps Binance's limits (its docs, Account Trade List): at most 1000 a
page (default 500), a window of at most 7 days, `fromId` not with a time, 6 months
back; a client must page to read more.
"""

from typing import Any

from perps_emulator.errors import BinanceError
from perps_emulator.markets import QUOTE
from perps_emulator.params import int_param
from perps_emulator.render import Handlers, Params, f8
from perps_emulator.state import EmuOrder, EmuTrade, open_orders

#: the longest startTime-endTime window of the account trade list (userTrades)
TRADE_WINDOW_MS = 7 * 86_400_000
#: how far back the account trade list reaches ("only the past 6 months")
TRADE_HISTORY_MS = 180 * 86_400_000


class Trading(Handlers):
    """Handlers of the order, trade and income routes."""

    def render_order(self, order: EmuOrder) -> dict[str, Any]:
        spec = self.markets[order.symbol].spec
        return {
            "orderId": order.order_id,
            "symbol": order.symbol,
            "status": order.status,
            "clientOrderId": order.client_order_id,
            "price": spec.fmt_price(order.price),
            "avgPrice": f8(order.avg_price),
            "origQty": spec.fmt_qty(order.orig_qty),
            "executedQty": spec.fmt_qty(order.executed_qty),
            "cumQty": spec.fmt_qty(order.executed_qty),
            "cumQuote": f8(order.cum_quote),
            "timeInForce": order.time_in_force or "GTC",
            "type": order.type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side,
            "positionSide": "BOTH",
            "stopPrice": spec.fmt_price(order.stop_price) if order.stop_price else "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.orig_type or order.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": order.time,
            "updateTime": order.update_time,
        }

    def new_order(self, params: Params) -> Any:
        return self.render_order(self.engine.place_order(params))

    def query_order(self, params: Params) -> Any:
        self.engine.market(params.get("symbol"))
        return self.render_order(self.engine.find_order(params, unknown_code=-2013))

    def cancel_order(self, params: Params) -> Any:
        return self.render_order(self.engine.cancel_order(params))

    def query_open_order(self, params: Params) -> Any:
        self.engine.market(params.get("symbol"))
        order = self.engine.find_order(params, unknown_code=-2013)
        if not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        return self.render_order(order)

    def open_orders(self, params: Params) -> Any:
        symbol = params.get("symbol")
        if symbol:
            self.engine.market(symbol)
        return [self.render_order(o) for o in open_orders(self.engine.state, symbol or None)]

    def all_orders(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        from_id = int_param(params, "orderId")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = [
            self.render_order(o)
            for o in self.engine.state.orders.values()
            if o.symbol == symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        return rows[:limit] if from_id is not None else rows[-limit:]

    def cancel_all(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        self.engine.cancel_all(symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def render_trade(self, trade: EmuTrade) -> dict[str, Any]:
        spec = self.markets[trade.symbol].spec
        return {
            "buyer": trade.side == "BUY",
            "commission": f8(trade.commission),
            "commissionAsset": QUOTE,
            "id": trade.trade_id,
            "maker": trade.maker,
            "orderId": trade.order_id,
            "price": spec.fmt_price(trade.price),
            "qty": spec.fmt_qty(trade.qty),
            "quoteQty": f8(trade.qty * trade.price),
            "realizedPnl": f8(trade.realized_pnl),
            "side": trade.side,
            "positionSide": "BOTH",
            "symbol": trade.symbol,
            "time": trade.time,
        }

    def user_trades(self, params: Params) -> Any:
        """Binance's account trade list: with `fromId`, the first `limit` trades from that
        id on (never with startTime or endTime: -1128); otherwise the trades of one window
        of at most 7 days (-1127 beyond): startTime to 7 days after it, 7 days up to
        endTime, or the last 7 days; only the past 6 months are kept. With `orderId`,
        that order's trades whatever their time (its own window, if sent, applies)."""
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        order_id = int_param(params, "orderId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        from_id = int_param(params, "fromId")
        limit = min(int_param(params, "limit") or 500, 1000)
        now = self.clock()
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if from_id is None and order_id is None:
            start, end = week_window(start, end, now)
        rows = [
            self.render_trade(t)
            for t in self.engine.state.trades
            if t.symbol == symbol
            and t.time >= now - TRADE_HISTORY_MS
            and (order_id is None or t.order_id == order_id)
            and (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        from_start = from_id is not None or int_param(params, "startTime") is not None
        return rows[:limit] if from_start else rows[-limit:]

    def income(self, params: Params) -> Any:
        symbol, kind = params.get("symbol"), params.get("incomeType")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = min(int_param(params, "limit") or 100, 1000)
        rows = [
            {
                "symbol": i.symbol,
                "incomeType": i.income_type,
                "income": f8(i.income),
                "asset": QUOTE,
                "info": i.income_type,
                "time": i.time,
                "tranId": i.tran_id,
                "tradeId": i.trade_id,
            }
            for i in self.engine.state.income
            if (not symbol or i.symbol == symbol)
            and (not kind or i.income_type == kind)
            and (start is None or i.time >= start)
            and (end is None or i.time <= end)
        ]
        return rows[:limit]

    def force_orders(self, params: Params) -> Any:
        symbol = params.get("symbol")
        if symbol:
            self.engine.market(symbol)
        kind = params.get("autoCloseType")
        if kind and kind not in ("LIQUIDATION", "ADL"):
            raise BinanceError(-1130, "Data sent for parameter 'autoCloseType' is not valid.")
        given = int_param(params, "startTime")
        start, end = week_window(given, int_param(params, "endTime"), self.clock())
        limit = min(int_param(params, "limit") or 50, 100)
        rows = [
            self.render_order(o)
            for o in self.engine.state.orders.values()
            if o.auto_close
            and (not symbol or o.symbol == symbol)
            and (not kind or o.auto_close == kind)
            and start <= o.time <= end
        ]
        return rows[:limit] if given is not None else rows[-limit:]


def week_window(start: int | None, end: int | None, now: int) -> tuple[int, int]:
    """The window a trade or forced-order read covers (Binance): at most 7 days (-1127
    beyond); startTime alone: the 7 days after it; endTime alone: the 7 days up to it;
    neither: the last 7 days."""
    if start is not None and end is not None:
        if end - start > TRADE_WINDOW_MS:
            raise BinanceError(-1127, "More than 7 days between startTime and endTime.")
        return start, end
    if start is not None:
        return start, start + TRADE_WINDOW_MS
    end = now if end is None else end
    return end - TRADE_WINDOW_MS, end
