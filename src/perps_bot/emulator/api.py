"""Binance USDM REST endpoints over the engine: request params in, Binance-shaped JSON out.

Each handler takes the merged request parameters (query string, plus the form body
for POST/PUT) and returns a JSON-able value or raises BinanceError. Field names and
string/number types follow Binance's documented responses, restricted to what ccxt
4.5's binanceusdm reads (see docs/notes on the emulation). Timestamps come from the
injected clock.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perps_bot.emulator.engine import (
    MAKER_FEE,
    TAKER_FEE,
    BinanceError,
    EmuOrder,
    EmuPosition,
    EmuTrade,
    Engine,
    mandatory,
    open_orders,
)
from perps_bot.emulator.markets import FUNDING_INTERVAL_MS, QUOTE, PriceProcess

Params = Mapping[str, str]
Handler = Callable[[Params], Any]
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
KLINE_INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
DAY_MS = 86_400_000


def f8(value: float) -> str:
    return f"{value:.8f}"


def plain(value: Decimal) -> str:
    """Decimal without exponent notation ("1E-9" -> "0.000000001")."""
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    private: bool
    handler: Handler


class BinanceApi:
    """The route table and its handlers."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.clock = clock
        self.markets = engine.markets
        self._listen_key = "emulatorListenKey0000000000000000000000000000000000000000000000"
        public: list[tuple[str, str, Handler]] = [
            ("GET", "/fapi/v1/ping", lambda p: {}),
            ("GET", "/fapi/v1/time", lambda p: {"serverTime": self.clock()}),
            ("GET", "/fapi/v1/exchangeInfo", self.exchange_info),
            ("GET", "/fapi/v1/ticker/24hr", self.ticker_24hr),
            ("GET", "/fapi/v1/ticker/bookTicker", self.book_ticker),
            ("GET", "/fapi/v1/ticker/price", self.ticker_price),
            ("GET", "/fapi/v2/ticker/price", self.ticker_price),
            ("GET", "/fapi/v1/depth", self.depth),
            ("GET", "/fapi/v1/premiumIndex", self.premium_index),
            ("GET", "/fapi/v1/fundingRate", self.funding_rate_history),
            ("GET", "/fapi/v1/fundingInfo", self.funding_info),
            ("GET", "/fapi/v1/klines", self.klines),
        ]
        private: list[tuple[str, str, Handler]] = [
            ("POST", "/fapi/v1/order", self.new_order),
            ("GET", "/fapi/v1/order", self.query_order),
            ("DELETE", "/fapi/v1/order", self.cancel_order),
            ("GET", "/fapi/v1/openOrder", self.query_open_order),
            ("GET", "/fapi/v1/openOrders", self.open_orders),
            ("GET", "/fapi/v1/allOrders", self.all_orders),
            ("DELETE", "/fapi/v1/allOpenOrders", self.cancel_all),
            ("GET", "/fapi/v1/userTrades", self.user_trades),
            ("GET", "/fapi/v1/income", self.income),
            ("GET", "/fapi/v2/positionRisk", self.position_risk_v2),
            ("GET", "/fapi/v3/positionRisk", self.position_risk_v3),
            ("GET", "/fapi/v1/leverageBracket", self.leverage_bracket),
            ("GET", "/fapi/v1/symbolConfig", self.symbol_config),
            ("GET", "/fapi/v2/account", lambda p: self.account(v3=False)),
            ("GET", "/fapi/v3/account", lambda p: self.account(v3=True)),
            ("GET", "/fapi/v2/balance", self.balance),
            ("GET", "/fapi/v3/balance", self.balance),
            ("POST", "/fapi/v1/leverage", self.set_leverage),
            ("POST", "/fapi/v1/marginType", self.set_margin_type),
            ("GET", "/fapi/v1/positionSide/dual", lambda p: {"dualSidePosition": False}),
            ("POST", "/fapi/v1/positionSide/dual", self.set_position_mode),
            ("GET", "/fapi/v1/commissionRate", self.commission_rate),
            ("POST", "/fapi/v1/listenKey", lambda p: {"listenKey": self._listen_key}),
            ("PUT", "/fapi/v1/listenKey", lambda p: {"listenKey": self._listen_key}),
            ("DELETE", "/fapi/v1/listenKey", lambda p: {}),
        ]
        self.routes: dict[tuple[str, str], Route] = {}
        for method, path, handler in public:
            self.routes[(method, path)] = Route(method, path, False, handler)
        for method, path, handler in private:
            self.routes[(method, path)] = Route(method, path, True, handler)

    # --- helpers ----------------------------------------------------------------------

    def _selected(self, params: Params) -> list[PriceProcess]:
        symbol = params.get("symbol")
        return [self.engine.market(symbol)] if symbol else list(self.markets.values())

    def _one_or_all(self, params: Params, render: Callable[[PriceProcess], Any]) -> Any:
        rendered = [render(m) for m in self._selected(params)]
        return rendered[0] if params.get("symbol") else rendered

    # --- market data ------------------------------------------------------------------

    def exchange_info(self, params: Params) -> Any:
        symbols = []
        for market in self.markets.values():
            spec = market.spec
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "pair": spec.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": spec.base,
                    "quoteAsset": QUOTE,
                    "marginAsset": QUOTE,
                    "pricePrecision": spec.price_decimals,
                    "quantityPrecision": spec.qty_decimals,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": plain(spec.tick),
                            "maxPrice": "10000000",
                            "tickSize": plain(spec.tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "stepSize": plain(spec.step),
                            "minQty": plain(spec.min_qty),
                            "maxQty": plain(spec.max_qty),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "stepSize": plain(spec.step),
                            "minQty": plain(spec.min_qty),
                            "maxQty": plain(spec.market_max_qty),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": plain(spec.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self.clock(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": QUOTE, "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    def _day_stats(self, market: PriceProcess) -> tuple[float, float, float, int]:
        now = self.clock()
        recent = [price for t, price in market.history if t >= now - DAY_MS] or [market.last]
        open_price = recent[0]
        return open_price, max([*recent, market.last]), min([*recent, market.last]), now

    def ticker_24hr(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec = market.spec
            open_price, high, low, now = self._day_stats(market)
            volume = sum(t.qty for t in self.engine.state.trades if t.symbol == spec.symbol)
            volume += spec.level_qty * 100
            change = market.last - open_price
            return {
                "symbol": spec.symbol,
                "priceChange": spec.fmt_price(change),
                "priceChangePercent": f"{100.0 * change / open_price:.3f}",
                "weightedAvgPrice": spec.fmt_price(market.last),
                "lastPrice": spec.fmt_price(market.last),
                "lastQty": spec.fmt_qty(float(spec.min_qty)),
                "openPrice": spec.fmt_price(open_price),
                "highPrice": spec.fmt_price(high),
                "lowPrice": spec.fmt_price(low),
                "volume": spec.fmt_qty(volume),
                "quoteVolume": f"{volume * market.last:.2f}",
                "openTime": now - DAY_MS,
                "closeTime": now,
                "firstId": 1,
                "lastId": market.update_id,
                "count": market.update_id,
            }

        return self._one_or_all(params, render)

    def book_ticker(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec = market.spec
            return {
                "symbol": spec.symbol,
                "bidPrice": spec.fmt_price(market.best_bid),
                "bidQty": spec.fmt_qty(market.level_qty(0)),
                "askPrice": spec.fmt_price(market.best_ask),
                "askQty": spec.fmt_qty(market.level_qty(0)),
                "time": self.clock(),
                "lastUpdateId": market.update_id,
            }

        return self._one_or_all(params, render)

    def ticker_price(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec = market.spec
            return {
                "symbol": spec.symbol,
                "price": spec.fmt_price(market.last),
                "time": self.clock(),
            }

        return self._one_or_all(params, render)

    def depth(self, params: Params) -> Any:
        market = self.engine.market(params.get("symbol"))
        spec = market.spec
        try:
            limit = int(params.get("limit") or 500)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.") from None
        if limit not in DEPTH_LIMITS:
            limit = min((d for d in DEPTH_LIMITS if d >= limit), default=1000)
        now = self.clock()
        return {
            "lastUpdateId": market.update_id,
            "E": now,
            "T": now,
            "bids": [[spec.fmt_price(x.price), spec.fmt_qty(x.qty)] for x in market.bids(limit)],
            "asks": [[spec.fmt_price(x.price), spec.fmt_qty(x.qty)] for x in market.asks(limit)],
        }

    def premium_index(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec, now = market.spec, self.clock()
            return {
                "symbol": spec.symbol,
                "markPrice": f"{market.mark:.8f}",
                "indexPrice": f"{market.index:.8f}",
                "estimatedSettlePrice": f"{market.index:.8f}",
                "lastFundingRate": f"{market.funding_rate:.8f}",
                "interestRate": "0.00010000",
                "nextFundingTime": market.next_funding_time(now),
                "time": now,
            }

        return self._one_or_all(params, render)

    def funding_info(self, params: Params) -> Any:
        return [
            {
                "symbol": market.spec.symbol,
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": FUNDING_INTERVAL_MS // 3_600_000,
                "disclaimer": False,
            }
            for market in self.markets.values()
        ]

    def funding_rate_history(self, params: Params) -> Any:
        symbol = params.get("symbol")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        limit = _int_param(params, "limit") or 100
        rows = [
            {
                "symbol": f.symbol,
                "fundingRate": f"{f.rate:.8f}",
                "fundingTime": f.time,
                "markPrice": f"{f.mark_price:.8f}",
            }
            for f in self.engine.state.funding_history
            if (not symbol or f.symbol == symbol)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]
        return rows[-limit:]

    def klines(self, params: Params) -> Any:
        market = self.engine.market(params.get("symbol"))
        spec = market.spec
        interval = params.get("interval")
        if not interval:
            raise mandatory("interval")
        if interval not in KLINE_INTERVALS_MS:
            raise BinanceError(-1120, "Invalid interval.")
        width = KLINE_INTERVALS_MS[interval]
        limit = min(_int_param(params, "limit") or 500, 1500)
        end = _int_param(params, "endTime") or self.clock()
        start = _int_param(params, "startTime")
        last_open = end // width * width
        first_open = (
            start // width * width if start is not None else last_open - (limit - 1) * width
        )
        opens = [t for t in range(first_open, last_open + 1, width)][:limit]
        history = list(market.history)
        rows = []
        previous_close = (
            next((p for t, p in history if t >= (opens[0] if opens else end)), market.last)
            if history
            else market.last
        )
        for open_time in opens:
            prices = [p for t, p in history if open_time <= t < open_time + width]
            o = previous_close
            h, low, c = max([o, *prices]), min([o, *prices]), prices[-1] if prices else o
            volume = spec.level_qty * (1 + len(prices))
            rows.append(
                [
                    open_time,
                    spec.fmt_price(o),
                    spec.fmt_price(h),
                    spec.fmt_price(low),
                    spec.fmt_price(c),
                    spec.fmt_qty(volume),
                    open_time + width - 1,
                    f"{volume * c:.4f}",
                    1 + len(prices),
                    spec.fmt_qty(volume / 2),
                    f"{volume * c / 2:.4f}",
                    "0",
                ]
            )
            previous_close = c
        return rows

    # --- orders -----------------------------------------------------------------------

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
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.type,
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
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        from_id = _int_param(params, "orderId")
        limit = min(_int_param(params, "limit") or 500, 1000)
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
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        order_id = _int_param(params, "orderId")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        from_id = _int_param(params, "fromId")
        limit = min(_int_param(params, "limit") or 500, 1000)
        rows = [
            self.render_trade(t)
            for t in self.engine.state.trades
            if t.symbol == symbol
            and (order_id is None or t.order_id == order_id)
            and (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        return rows[:limit] if from_id is not None else rows[-limit:]

    def income(self, params: Params) -> Any:
        symbol, kind = params.get("symbol"), params.get("incomeType")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        limit = min(_int_param(params, "limit") or 100, 1000)
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

    # --- account ----------------------------------------------------------------------

    def _position_common(self, pos: EmuPosition) -> dict[str, Any]:
        market = self.markets[pos.symbol]
        spec = market.spec
        mark = market.mark
        return {
            "symbol": pos.symbol,
            "positionSide": "BOTH",
            "positionAmt": spec.fmt_qty(pos.amount),
            "entryPrice": f8(pos.entry_price),
            "breakEvenPrice": f8(pos.entry_price),
            "markPrice": f8(mark),
            "unRealizedProfit": f8(self.engine.unrealized(pos.symbol)),
            "liquidationPrice": "0",
            "notional": f8(pos.amount * mark),
            "marginAsset": QUOTE,
            "isolatedMargin": "0.00000000",
            "isolatedWallet": "0",
            "adl": 0,
            "updateTime": pos.update_time,
        }

    def position_risk_v2(self, params: Params) -> Any:
        rows = []
        for market in self._selected(params):
            symbol = market.spec.symbol
            row = self._position_common(self.engine.state.positions[symbol])
            row.update(
                {
                    "leverage": str(self.engine.state.leverage[symbol]),
                    "marginType": "isolated"
                    if self.engine.state.margin_type[symbol] == "ISOLATED"
                    else "cross",
                    "isAutoAddMargin": "false",
                    "maxNotionalValue": f"{self._max_notional(symbol):.0f}",
                }
            )
            rows.append(row)
        return rows

    def position_risk_v3(self, params: Params) -> Any:
        rows = []
        for market in self._selected(params):
            symbol = market.spec.symbol
            pos = self.engine.state.positions[symbol]
            if pos.amount == 0:
                continue
            row = self._position_common(pos)
            im = self.engine.position_initial_margin(symbol)
            row.update(
                {
                    "initialMargin": f8(im),
                    "maintMargin": f8(self.engine.maint_margin(symbol)),
                    "positionInitialMargin": f8(im),
                    "openOrderInitialMargin": f8(self.engine.order_initial_margin(symbol)),
                    "bidNotional": "0",
                    "askNotional": "0",
                }
            )
            rows.append(row)
        return rows

    def _max_notional(self, symbol: str) -> float:
        leverage = self.engine.state.leverage[symbol]
        # Brackets run from the smallest notional (highest leverage) up: the largest cap
        # whose bracket still allows ``leverage`` is the most the position may reach.
        cap = 0.0
        for _, bracket_cap, bracket_leverage in self._brackets(symbol):
            if bracket_leverage >= leverage:
                cap = bracket_cap
        return cap

    def _brackets(self, symbol: str) -> list[tuple[float, float, int]]:
        tiers = self.markets[symbol].spec.tiers
        rows = []
        for i, (floor, mmr, _) in enumerate(tiers):
            cap = tiers[i + 1][0] if i + 1 < len(tiers) else 1e11
            rows.append((floor, cap, int(1 / (2 * mmr))))
        return rows

    def leverage_bracket(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec = market.spec
            return {
                "symbol": spec.symbol,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": i + 1,
                        "initialLeverage": lev,
                        "notionalCap": cap,
                        "notionalFloor": floor,
                        "maintMarginRatio": spec.tiers[i][1],
                        "cum": spec.tiers[i][2],
                    }
                    for i, (floor, cap, lev) in enumerate(self._brackets(spec.symbol))
                ],
            }

        return self._one_or_all(params, render)

    def symbol_config(self, params: Params) -> Any:
        state = self.engine.state
        return [
            {
                "symbol": market.spec.symbol,
                "marginType": state.margin_type[market.spec.symbol],
                "isAutoAddMargin": False,
                "leverage": state.leverage[market.spec.symbol],
                "maxNotionalValue": f"{self._max_notional(market.spec.symbol):.0f}",
            }
            for market in self._selected(params)
        ]

    def account(self, *, v3: bool) -> Any:
        engine = self.engine
        now = self.clock()
        wallet = engine.wallet
        unrealized = engine.total_unrealized()
        position_im = engine.total_position_margin()
        order_im = engine.order_initial_margin()
        maint = sum(engine.maint_margin(s) for s in self.markets)
        available = engine.available_balance()
        asset = {
            "asset": QUOTE,
            "walletBalance": f8(wallet),
            "unrealizedProfit": f8(unrealized),
            "marginBalance": f8(wallet + unrealized),
            "maintMargin": f8(maint),
            "initialMargin": f8(position_im + order_im),
            "positionInitialMargin": f8(position_im),
            "openOrderInitialMargin": f8(order_im),
            "crossWalletBalance": f8(wallet),
            "crossUnPnl": f8(unrealized),
            "availableBalance": f8(available),
            "maxWithdrawAmount": f8(max(0.0, available)),
            "marginAvailable": True,
            "updateTime": now,
        }
        positions = []
        for symbol in self.markets:
            pos = engine.state.positions[symbol]
            if v3 and pos.amount == 0:
                continue
            row: dict[str, Any] = {
                "symbol": symbol,
                "positionSide": "BOTH",
                "positionAmt": self.markets[symbol].spec.fmt_qty(pos.amount),
                "unrealizedProfit": f8(engine.unrealized(symbol)),
                "isolatedMargin": "0",
                "notional": f8(pos.amount * self.markets[symbol].mark),
                "isolatedWallet": "0",
                "initialMargin": f8(engine.position_initial_margin(symbol)),
                "maintMargin": f8(engine.maint_margin(symbol)),
                "updateTime": pos.update_time,
            }
            if not v3:
                row.update(
                    {
                        "positionInitialMargin": f8(engine.position_initial_margin(symbol)),
                        "openOrderInitialMargin": f8(engine.order_initial_margin(symbol)),
                        "leverage": str(engine.state.leverage[symbol]),
                        "isolated": engine.state.margin_type[symbol] == "ISOLATED",
                        "entryPrice": f8(pos.entry_price),
                        "breakEvenPrice": f8(pos.entry_price),
                        "maxNotional": f"{self._max_notional(symbol):.0f}",
                        "bidNotional": "0",
                        "askNotional": "0",
                    }
                )
            positions.append(row)
        totals = {
            "totalInitialMargin": f8(position_im + order_im),
            "totalMaintMargin": f8(maint),
            "totalWalletBalance": f8(wallet),
            "totalUnrealizedProfit": f8(unrealized),
            "totalMarginBalance": f8(wallet + unrealized),
            "totalPositionInitialMargin": f8(position_im),
            "totalOpenOrderInitialMargin": f8(order_im),
            "totalCrossWalletBalance": f8(wallet),
            "totalCrossUnPnl": f8(unrealized),
            "availableBalance": f8(available),
            "maxWithdrawAmount": f8(max(0.0, available)),
        }
        extra: dict[str, Any] = (
            {}
            if v3
            else {
                "feeTier": 0,
                "canTrade": True,
                "canDeposit": True,
                "canWithdraw": True,
                "updateTime": 0,
                "multiAssetsMargin": False,
                "tradeGroupId": -1,
            }
        )
        return {**extra, **totals, "assets": [asset], "positions": positions}

    def balance(self, params: Params) -> Any:
        engine = self.engine
        available = engine.available_balance()
        return [
            {
                "accountAlias": "emulator",
                "asset": QUOTE,
                "balance": f8(engine.wallet),
                "crossWalletBalance": f8(engine.wallet),
                "crossUnPnl": f8(engine.total_unrealized()),
                "availableBalance": f8(available),
                "maxWithdrawAmount": f8(max(0.0, available)),
                "marginAvailable": True,
                "updateTime": self.clock(),
            }
        ]

    def set_leverage(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        leverage = _int_param(params, "leverage")
        if leverage is None:
            raise mandatory("leverage")
        self.engine.set_leverage(symbol, leverage)
        return {
            "leverage": leverage,
            "maxNotionalValue": f"{self._max_notional(symbol):.0f}",
            "symbol": symbol,
        }

    def set_margin_type(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        margin_type = params.get("marginType")
        if not margin_type:
            raise mandatory("marginType")
        self.engine.set_margin_type(symbol, margin_type)
        return {"code": 200, "msg": "success"}

    def set_position_mode(self, params: Params) -> Any:
        dual = (params.get("dualSidePosition") or "").lower()
        if dual == "true":
            raise BinanceError(-4059, "The emulator supports one-way position mode only.")
        if dual != "false":
            raise mandatory("dualSidePosition")
        raise BinanceError(-4059, "No need to change position side.")

    def commission_rate(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        return {
            "symbol": symbol,
            "makerCommissionRate": f"{MAKER_FEE:.6f}",
            "takerCommissionRate": f"{TAKER_FEE:.6f}",
        }


def _int_param(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None


__all__ = ["FUNDING_INTERVAL_MS", "BinanceApi", "Route"]
