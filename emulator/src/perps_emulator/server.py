"""The loopback Binance USDM emulator as an aiohttp server.

One catch-all route dispatches on (method, path) to the BinanceApi table so that an
unknown route answers like Binance would to a bad request (HTTP 400 with
{"code": -1000}) instead of a bare 404, which ccxt would report as
ExchangeNotAvailable and hide the real mistake. Every exchange request is recorded in
``calls`` (method, path, is_private) before any fault fires, so tests can assert that
a dry-run never made a private call.

The server only binds loopback addresses: it is a test double, and refusing anything
else keeps it from being exposed by a typo.

Timestamps come from ``clock`` (default: wall-clock ms, because clients compare
exchange timestamps with their own clock for staleness). Prices, funding, fills and
ids depend only on the seed and the sequence of step()/set_price()/order calls, so a
test that passes a fixed ``clock`` and steps manually gets byte-identical answers.
"""

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from aiohttp import web

from perps_emulator.api import BinanceApi
from perps_emulator.control import handle_control
from perps_emulator.engine import Engine
from perps_emulator.errors import BinanceError, EmulatorError
from perps_emulator.faults import PROCESSED_KINDS, Fault, FaultBook
from perps_emulator.flow import FlowParams, Microstructure
from perps_emulator.liquidation import Liquidator
from perps_emulator.markets import PriceProcess, make_spec
from perps_emulator.params import check_recv_window
from perps_emulator.responses import faulted, json_response, reshaped, status_unknown
from perps_emulator.state import EmulatorState
from perps_emulator.ws import WsHub

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_emulator/"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    is_private: bool
    params: dict[str, str]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _markets(
    symbols: Sequence[str], prices: dict[str, float], seed: int, volatility: float | None
) -> dict[str, PriceProcess]:
    """The price process of each symbol; EmulatorError for what cannot be emulated."""
    if not symbols:
        raise EmulatorError("emulator needs at least one symbol")
    unknown = set(prices) - set(symbols)
    if unknown:
        raise EmulatorError(f"prices given for symbols not emulated: {sorted(unknown)}")
    try:
        specs = {s: make_spec(s, prices.get(s)) for s in dict.fromkeys(symbols)}
        if volatility is not None:
            specs = {s: replace(spec, volatility=volatility) for s, spec in specs.items()}
        return {s: PriceProcess(spec, seed) for s, spec in specs.items()}
    except ValueError as exc:
        raise EmulatorError(str(exc)) from None


class EmulatorServer:
    """Binance USDM look-alike on loopback for the real, unmodified ccxt client."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 1,
        initial_balance: float = 10_000.0,
        prices: Mapping[str, float] | None = None,
        *,
        clock: Callable[[], int] | None = None,
        tick_interval_s: float | None = None,
        liquidation: bool = False,
        microstructure: bool = False,
        flow: FlowParams | None = None,
        order_latency_s: float = 0.0,
        volatility: float | None = None,
    ) -> None:
        """`microstructure`: other participants add, cancel and trade, and our resting
        orders queue behind displayed quantity (flow.py). `order_latency_s`: every new
        order reaches the matching engine that much later (the answer comes after it).
        `volatility`: the log-return standard deviation per step of every symbol
        (default: each symbol's own, 2e-4)."""
        if not is_loopback_host(host):
            raise EmulatorError(
                f"emulator host {host!r} is not loopback (127.0.0.0/8, ::1, localhost)"
            )
        if initial_balance < 0:
            raise EmulatorError(f"initial balance must be >= 0, got {initial_balance}")
        self.host = host
        self.port = port
        self.seed = seed
        self.clock: Callable[[], int] = clock or wall_clock_ms
        # Binance refuses a signed request processed more than recvWindow after its
        # timestamp (-1021). Checked against the wall clock only: a test that drives the
        # emulator's own clock would put every client timestamp out of window.
        self.enforce_recv_window = clock is None
        self.tick_interval_s = tick_interval_s
        self.markets = _markets(symbols, dict(prices or {}), seed, volatility)
        now = self.clock()
        for market in self.markets.values():
            market.touch(now)
        self.engine = Engine(self.markets, initial_balance, self.clock)
        if microstructure:
            self.engine.flow = Microstructure(self.markets, seed, flow)
        self.order_latency_s = order_latency_s
        self.api = BinanceApi(self.engine, self.clock)
        self.ws = WsHub(self.markets, self.api.market, self.clock)
        self.liquidator = Liquidator(self.engine, self.clock, enabled=liquidation)
        self.faults = FaultBook()
        self.calls: list[tuple[str, str, bool]] = []
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # internal emulator errors (a test should assert none)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._later: set[asyncio.Task[None]] = set()  # -1007 requests still to process

    # --- public control API ------------------------------------------------------------

    @property
    def state(self) -> EmulatorState:
        return self.engine.state

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Websocket base (ccxt derives it from base_url: /public/ws/<n>, /market/ws/<n>)."""
        return "ws" + self.base_url[len("http") :] + "/ws"

    def inject(self, fault: Fault) -> None:
        """Queue a fault (a copy: the caller's object is not consumed)."""
        self.faults.add(replace(fault))

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def liquidation(self) -> bool:
        """Whether the liquidation engine runs (liquidation.py); off by default."""
        return self.liquidator.enabled

    @liquidation.setter
    def liquidation(self, enabled: bool) -> None:
        self.liquidator.enabled = enabled

    def set_price(self, symbol: str, price: float) -> None:
        """Move ``symbol`` to ``price`` (snapped to tick, mark = last); fills crossed limits,
        then liquidates what the new mark pushed past its liquidation price (if on)."""
        market = self._market(symbol)
        before = self.liquidator.marks()
        market.set_price(price, self.clock())
        self._moved(symbol)
        self.liquidator.check(before)
        self.ws.publish()

    def set_mark(self, symbol: str, mark: float) -> None:
        """Move ``symbol``'s mark alone (last price and book stay), then liquidate (if on)."""
        market = self._market(symbol)
        before = self.liquidator.marks()
        market.set_mark(mark, self.clock())
        self.api.algo.algos.check(symbol)
        self.liquidator.check(before)
        self.ws.publish()

    def step(self, n: int = 1) -> None:
        """Advance every symbol's seeded random walk ``n`` times, filling crossed limits
        and liquidating (if on) after each step."""
        for _ in range(n):
            now = self.clock()
            before = self.liquidator.marks()
            for symbol, market in self.markets.items():
                market.step(now)
                self.engine.others_trade(symbol, now)
                self._moved(symbol)
            self.liquidator.check(before)
            self.ws.publish()

    def _moved(self, symbol: str) -> None:
        """The price of `symbol` moved: fill the limits and trigger the conditional
        orders it reached."""
        self.engine.match_resting(symbol)
        self.api.algo.algos.check(symbol)

    def settle_funding(self) -> None:
        """Apply one funding settlement to open positions at the current rates; a position
        it leaves past its liquidation price is liquidated at the mark (if on)."""
        self.engine.settle_funding()
        self.liquidator.check()
        self.ws.publish()

    def price(self, symbol: str) -> float:
        return self._market(symbol).last

    def private_calls(self) -> list[tuple[str, str, bool]]:
        return [call for call in self.calls if call[2]]

    async def start(self) -> None:
        if self._runner is not None:
            raise EmulatorError("emulator already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise EmulatorError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        self._stopping.clear()
        if self.tick_interval_s:
            self._ticker = asyncio.create_task(self._tick_forever(self.tick_interval_s))
        log.info("emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        self._stopping.set()  # releases every delayed fault answer at once
        if self._later:  # -1007 orders still waiting: dropped (they return at once)
            await asyncio.gather(*self._later, return_exceptions=True)
        await self.ws.close_all()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "EmulatorServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view of state and prices (GET /_emulator/state)."""
        state = self.engine.state
        return {
            "prices": {
                s: {
                    "last": m.last,
                    "mark": m.mark,
                    "bid": m.best_bid,
                    "ask": m.best_ask,
                    "funding_rate": m.funding_rate,
                }
                for s, m in self.markets.items()
            },
            "balances": dict(state.balances),
            "available_balance": self.engine.account.available_balance(),
            "positions": {s: asdict(p) for s, p in state.positions.items()},
            "liquidation_prices": {
                s: self.engine.account.liquidation_price(s) for s in state.positions
            },
            "liquidation": self.liquidation,
            "leverage": dict(state.leverage),
            "margin_type": dict(state.margin_type),
            "open_orders": [asdict(o) for o in state.open_orders.values()],
            "algo_orders": [asdict(o) for o in state.algo_orders.values()],
            "orders": len(state.orders),
            "trades": [asdict(t) for t in state.trades],
            "pending_faults": [f.to_json() for f in self.faults.pending],
        }

    # --- internals --------------------------------------------------------------------

    def _market(self, symbol: str) -> PriceProcess:
        market = self.markets.get(symbol)
        if market is None:
            raise EmulatorError(f"symbol {symbol!r} is not emulated; have {sorted(self.markets)}")
        return market

    async def _tick_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.step()

    async def _delay(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method.upper(), request.path
        if path.startswith(CONTROL_PREFIX):
            return await handle_control(self, request, method, path[len(CONTROL_PREFIX) :])
        if "ws" in path.split("/") and request.headers.get("Upgrade", "").lower() == "websocket":
            self.calls.append((method, path, False))
            return await self.ws.handle(request)
        params: dict[str, str] = dict(request.query)
        if method in ("POST", "PUT"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        route = self.api.routes.get((method, path))
        signed = "signature" in params or "X-MBX-APIKEY" in request.headers
        private = route.private if route is not None else signed
        self.calls.append((method, path, private))
        self.requests.append(RecordedRequest(method, path, private, params))
        fault = self.faults.take(method, path)
        if fault is not None and fault.kind not in PROCESSED_KINDS:
            return await faulted(fault, self._delay)
        if fault is not None and fault.kind == "unknown_then_execute":
            task = asyncio.create_task(self._answer_later(fault.delay_s, request, params))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return status_unknown()
        if fault is not None and fault.kind == "late":
            await self._delay(fault.delay_s)  # reaches the matching engine only now
        if self.order_latency_s and (method, path) == ("POST", "/fapi/v1/order"):
            await self._delay(self.order_latency_s)
        response = self._answer(request, method, path, params)
        self.ws.publish()  # fills move update ids: stream them
        if fault is not None and fault.kind == "accept_then_timeout":
            await self._delay(fault.delay_s)  # processed, answer held back
        return reshaped(fault, response) if fault is not None else response

    async def _answer_later(
        self, delay_s: float, request: web.Request, params: dict[str, str]
    ) -> None:
        """Process a request the client was told has an unknown outcome (-1007)."""
        await self._delay(delay_s)
        if self._stopping.is_set():
            return
        self._answer(request, request.method.upper(), request.path, params)
        self.ws.publish()

    def _answer(
        self, request: web.Request, method: str, path: str, params: dict[str, str]
    ) -> web.Response:
        route = self.api.routes.get((method, path))
        try:
            if route is None:
                raise BinanceError(-1000, f"Emulator has no route {method} {path}.")
            if route.private:
                if not request.headers.get("X-MBX-APIKEY"):
                    raise BinanceError(-2014, "API-key format invalid.", status=401)
                if "signature" not in params:
                    raise BinanceError(
                        -1102,
                        "Mandatory parameter 'signature' was not sent, was empty/null, "
                        "or malformed.",
                    )
                if self.enforce_recv_window:
                    check_recv_window(params, self.clock())
            body = route.handler(params)
        except BinanceError as err:
            return json_response({"code": err.code, "msg": err.msg}, err.status)
        except Exception as exc:  # an emulator bug: answer like an exchange-side failure
            log.exception("emulator error on %s %s", method, path)
            self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return json_response({"code": -1000, "msg": f"Emulator internal error: {exc}"}, 500)
        return json_response(body, 200)
