"""Binance USDM REST routes over the engine: request params in, Binance-shaped JSON out.

Each handler takes the merged request parameters (query string, plus the form body
for POST/PUT) and returns a JSON-able value or raises BinanceError. The handlers are
grouped by job: public market data (api_market.py), orders and trades
(api_orders.py), account and settings (api_account.py); this module is only the
route table the server dispatches on.
"""

from collections.abc import Callable
from dataclasses import dataclass

from perps_emulator.api_account import AccountApi
from perps_emulator.api_algo import AlgoApi
from perps_emulator.api_market import MarketData
from perps_emulator.api_orders import Trading
from perps_emulator.engine import Engine
from perps_emulator.render import Handler

LISTEN_KEY = "emulatorListenKey0000000000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    private: bool
    handler: Handler


class BinanceApi:
    """The route table of the emulated exchange."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.market = market = MarketData(engine, clock)
        self.trading = trading = Trading(engine, clock)
        self.account = account = AccountApi(engine, clock)
        self.algo = algo = AlgoApi(engine, clock)
        public: list[tuple[str, str, Handler]] = [
            ("GET", "/fapi/v1/ping", lambda p: {}),
            ("GET", "/fapi/v1/time", lambda p: {"serverTime": clock()}),
            ("GET", "/fapi/v1/exchangeInfo", market.exchange_info),
            ("GET", "/fapi/v1/ticker/24hr", market.ticker_24hr),
            ("GET", "/fapi/v1/ticker/bookTicker", market.book_ticker),
            ("GET", "/fapi/v1/ticker/price", market.ticker_price),
            ("GET", "/fapi/v2/ticker/price", market.ticker_price),
            ("GET", "/fapi/v1/depth", market.depth),
            ("GET", "/fapi/v1/premiumIndex", market.premium_index),
            ("GET", "/fapi/v1/fundingRate", market.funding_rate_history),
            ("GET", "/fapi/v1/fundingInfo", market.funding_info),
            ("GET", "/fapi/v1/klines", market.klines),
            ("GET", "/fapi/v1/markPriceKlines", market.mark_price_klines),
            ("GET", "/fapi/v1/trades", market.trades),
            ("GET", "/fapi/v1/aggTrades", market.agg_trades),
        ]
        private: list[tuple[str, str, Handler]] = [
            ("POST", "/fapi/v1/order", trading.new_order),
            ("GET", "/fapi/v1/order", trading.query_order),
            ("DELETE", "/fapi/v1/order", trading.cancel_order),
            ("GET", "/fapi/v1/openOrder", trading.query_open_order),
            ("GET", "/fapi/v1/openOrders", trading.open_orders),
            ("GET", "/fapi/v1/allOrders", trading.all_orders),
            ("DELETE", "/fapi/v1/allOpenOrders", trading.cancel_all),
            ("POST", "/fapi/v1/algoOrder", algo.new_order),
            ("GET", "/fapi/v1/algoOrder", algo.query_order),
            ("DELETE", "/fapi/v1/algoOrder", algo.cancel_order),
            ("GET", "/fapi/v1/openAlgoOrders", algo.open_orders),
            ("GET", "/fapi/v1/allAlgoOrders", algo.all_orders),
            ("DELETE", "/fapi/v1/algoOpenOrders", algo.cancel_all),
            ("GET", "/fapi/v1/userTrades", trading.user_trades),
            ("GET", "/fapi/v1/income", trading.income),
            ("GET", "/fapi/v1/forceOrders", trading.force_orders),
            ("GET", "/fapi/v2/positionRisk", account.position_risk_v2),
            ("GET", "/fapi/v3/positionRisk", account.position_risk_v3),
            ("GET", "/fapi/v1/leverageBracket", account.leverage_bracket),
            ("GET", "/fapi/v1/symbolConfig", account.symbol_config),
            ("GET", "/fapi/v2/account", lambda p: account.account(v3=False)),
            ("GET", "/fapi/v3/account", lambda p: account.account(v3=True)),
            ("GET", "/fapi/v2/balance", account.balance),
            ("GET", "/fapi/v3/balance", account.balance),
            ("POST", "/fapi/v1/leverage", account.set_leverage),
            ("POST", "/fapi/v1/marginType", account.set_margin_type),
            ("GET", "/fapi/v1/positionSide/dual", lambda p: {"dualSidePosition": False}),
            ("POST", "/fapi/v1/positionSide/dual", account.set_position_mode),
            ("GET", "/fapi/v1/commissionRate", account.commission_rate),
            ("POST", "/fapi/v1/listenKey", lambda p: {"listenKey": LISTEN_KEY}),
            ("PUT", "/fapi/v1/listenKey", lambda p: {"listenKey": LISTEN_KEY}),
            ("DELETE", "/fapi/v1/listenKey", lambda p: {}),
        ]
        self.routes: dict[tuple[str, str], Route] = {}
        for method, path, handler in public:
            self.routes[(method, path)] = Route(method, path, False, handler)
        for method, path, handler in private:
            self.routes[(method, path)] = Route(method, path, True, handler)
