"""Public market-data endpoints: exchangeInfo, tickers, depth, funding and klines.

Field names and string/number types follow Binance's documented responses,
restricted to what ccxt 4.5's binanceusdm reads. Timestamps come from the clock.
"""

from typing import Any

from perps_emulator import history
from perps_emulator.errors import illegal
from perps_emulator.klines import DAY_MS, kline_rows, walk_started
from perps_emulator.markets import (
    FUNDING_INTERVAL_MS,
    PRICE_DOWN,
    PRICE_UP,
    QUOTE,
    PriceProcess,
)
from perps_emulator.params import int_param
from perps_emulator.render import Handlers, Params, plain

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


class MarketData(Handlers):
    """Handlers of the public market-data routes (also the websocket's event source)."""

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
                    "liquidationFee": f"{spec.liquidation_fee:.6f}",
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
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.max_algo_orders},
                        {"filterType": "MIN_NOTIONAL", "notional": plain(spec.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": str(PRICE_UP),
                            "multiplierDown": str(PRICE_DOWN),
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": ["LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"],
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
                "lastPrice": spec.fmt_price(self._last_trade(market)),
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

        return self.one_or_all(params, render)

    def _last_trade(self, market: PriceProcess) -> float:
        """With other participants, the last price is the last trade's, as on an exchange;
        without them the price process's last (the plain emulator's answers)."""
        flow = self.engine.flow
        tape = flow.trades[market.spec.symbol]
        return tape[-1].price if flow.active and tape else market.last

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

        return self.one_or_all(params, render)

    def ticker_price(self, params: Params) -> Any:
        def render(market: PriceProcess) -> dict[str, Any]:
            spec = market.spec
            return {
                "symbol": spec.symbol,
                "price": spec.fmt_price(market.last),
                "time": self.clock(),
            }

        return self.one_or_all(params, render)

    def depth(self, params: Params) -> Any:
        market = self.engine.market(params.get("symbol"))
        spec = market.spec
        try:
            limit = int(params.get("limit") or 500)
        except ValueError:
            raise illegal("limit") from None
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

    def trades(self, params: Params) -> Any:
        """Recent public trades (GET /fapi/v1/trades), oldest first."""
        market, limit = self._tape_request(params)
        spec = market.spec
        return [
            {
                "id": t.trade_id,
                "price": spec.fmt_price(t.price),
                "qty": spec.fmt_qty(t.qty),
                "quoteQty": f"{t.price * t.qty:.8f}",
                "time": t.time,
                "isBuyerMaker": t.buyer_maker,
            }
            for t in list(self.engine.flow.trades[spec.symbol])[-limit:]
        ]

    def agg_trades(self, params: Params) -> Any:
        """The same trades as aggregates of one (GET /fapi/v1/aggTrades, ccxt's default)."""
        market, limit = self._tape_request(params)
        spec = market.spec
        return [
            {
                "a": t.trade_id,
                "p": spec.fmt_price(t.price),
                "q": spec.fmt_qty(t.qty),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": t.time,
                "m": t.buyer_maker,
            }
            for t in list(self.engine.flow.trades[spec.symbol])[-limit:]
        ]

    def _tape_request(self, params: Params) -> tuple[PriceProcess, int]:
        market = self.engine.market(params.get("symbol"))
        try:
            limit = int(params.get("limit") or 500)
        except ValueError:
            raise illegal("limit") from None
        return market, max(1, min(limit, 1000))

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

        return self.one_or_all(params, render)

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
        """Settlements in [startTime, endTime], like Binance the first `limit` (default
        100, at most 1000) from startTime: the seeded history (history.py) before the
        emulator started, then the ones it made. Without startTime, the last `limit` of
        those it made (what a bot polling the latest rate reads)."""
        symbol = params.get("symbol")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = min(int_param(params, "limit") or 100, 1000)
        rows = [] if start is None else self._past_funding(symbol, start, end, limit)
        rows += [
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
        return rows[:limit] if start is not None else rows[-limit:]

    def _past_funding(
        self, symbol: str | None, start: int, end: int | None, limit: int
    ) -> list[dict[str, Any]]:
        markets = [self.engine.market(symbol)] if symbol else list(self.markets.values())
        rows = []
        for market in markets:
            started = walk_started(market, self.clock())
            step = FUNDING_INTERVAL_MS
            last = min(end if end is not None else started, started - 1) // step * step
            for t in range(max(-(-start // step) * step, 0), last + 1, step)[:limit]:
                rate, mark = history.funding(market.spec, market.seed, t)
                rows.append(
                    {
                        "symbol": market.spec.symbol,
                        "fundingRate": f"{rate:.8f}",
                        "fundingTime": t,
                        "markPrice": f"{mark:.8f}",
                    }
                )
        return sorted(rows, key=lambda r: int(r["fundingTime"]))

    def klines(self, params: Params) -> Any:
        return kline_rows(self.engine.market(params.get("symbol")), params, self.clock(),
                          mark=False)  # fmt: skip

    def mark_price_klines(self, params: Params) -> Any:
        """GET /fapi/v1/markPriceKlines: candles of the mark price (no volume)."""
        return kline_rows(self.engine.market(params.get("symbol")), params, self.clock(),
                          mark=True)  # fmt: skip
