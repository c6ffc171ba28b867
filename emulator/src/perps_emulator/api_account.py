"""Account endpoints (signed): positions, balances, brackets, leverage, margin type.

Isolated positions report their own wallet (``isolatedWallet``) and margin
(``isolatedMargin`` = wallet + unrealized PnL); ``liquidationPrice`` is the
emulator's own (account.py), whether or not its liquidation mode is on.
"""

from typing import Any

from perps_emulator.errors import BinanceError, mandatory
from perps_emulator.markets import QUOTE, PriceProcess
from perps_emulator.params import int_param
from perps_emulator.render import Handlers, Params, f8
from perps_emulator.state import MAKER_FEE, TAKER_FEE, EmuPosition


class AccountApi(Handlers):
    """Handlers of the account, position and settings routes."""

    def _isolated(self, pos: EmuPosition) -> tuple[str, str]:
        """(isolatedMargin, isolatedWallet): wallet plus unrealized PnL, and wallet."""
        if not self.engine.state.isolated(pos.symbol):
            return "0.00000000", "0"
        wallet = pos.isolated_margin
        return f8(wallet + self.engine.account.unrealized(pos.symbol)), f8(wallet)

    def _liquidation_price(self, symbol: str) -> str:
        price = self.engine.account.liquidation_price(symbol)
        return f8(price) if price > 0 else "0"

    def _position_common(self, pos: EmuPosition) -> dict[str, Any]:
        market = self.markets[pos.symbol]
        spec = market.spec
        mark = market.mark
        isolated_margin, isolated_wallet = self._isolated(pos)
        return {
            "symbol": pos.symbol,
            "positionSide": "BOTH",
            "positionAmt": spec.fmt_qty(pos.amount),
            "entryPrice": f8(pos.entry_price),
            "breakEvenPrice": f8(pos.entry_price),
            "markPrice": f8(mark),
            "unRealizedProfit": f8(self.engine.account.unrealized(pos.symbol)),
            "liquidationPrice": self._liquidation_price(pos.symbol),
            "notional": f8(pos.amount * mark),
            "marginAsset": QUOTE,
            "isolatedMargin": isolated_margin,
            "isolatedWallet": isolated_wallet,
            "adl": 0,
            "updateTime": pos.update_time,
        }

    def position_risk_v2(self, params: Params) -> Any:
        rows = []
        for market in self.selected(params):
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
        for market in self.selected(params):
            symbol = market.spec.symbol
            pos = self.engine.state.positions[symbol]
            if pos.amount == 0:
                continue
            row = self._position_common(pos)
            im = self.engine.account.position_initial_margin(symbol)
            row.update(
                {
                    "initialMargin": f8(im),
                    "maintMargin": f8(self.engine.account.maint_margin(symbol)),
                    "positionInitialMargin": f8(im),
                    "openOrderInitialMargin": f8(self.engine.account.order_initial_margin(symbol)),
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

        return self.one_or_all(params, render)

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
            for market in self.selected(params)
        ]

    def account(self, *, v3: bool) -> Any:
        engine = self.engine
        now = self.clock()
        wallet = engine.account.wallet
        unrealized = engine.account.total_unrealized()
        position_im = engine.account.total_position_margin()
        order_im = engine.account.order_initial_margin()
        maint = sum(engine.account.maint_margin(s) for s in self.markets)
        cross_wallet = engine.account.cross_wallet
        cross_unrealized = engine.account.cross_unrealized()
        available = engine.account.available_balance()
        asset = {
            "asset": QUOTE,
            "walletBalance": f8(wallet),
            "unrealizedProfit": f8(unrealized),
            "marginBalance": f8(wallet + unrealized),
            "maintMargin": f8(maint),
            "initialMargin": f8(position_im + order_im),
            "positionInitialMargin": f8(position_im),
            "openOrderInitialMargin": f8(order_im),
            "crossWalletBalance": f8(cross_wallet),
            "crossUnPnl": f8(cross_unrealized),
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
                "unrealizedProfit": f8(engine.account.unrealized(symbol)),
                "isolatedMargin": self._isolated(pos)[0],
                "notional": f8(pos.amount * self.markets[symbol].mark),
                "isolatedWallet": self._isolated(pos)[1],
                "initialMargin": f8(engine.account.position_initial_margin(symbol)),
                "maintMargin": f8(engine.account.maint_margin(symbol)),
                "updateTime": pos.update_time,
            }
            if not v3:
                row.update(
                    {
                        "positionInitialMargin": f8(engine.account.position_initial_margin(symbol)),
                        "openOrderInitialMargin": f8(engine.account.order_initial_margin(symbol)),
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
            "totalCrossWalletBalance": f8(cross_wallet),
            "totalCrossUnPnl": f8(cross_unrealized),
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
        available = engine.account.available_balance()
        return [
            {
                "accountAlias": "emulator",
                "asset": QUOTE,
                "balance": f8(engine.account.wallet),
                "crossWalletBalance": f8(engine.account.cross_wallet),
                "crossUnPnl": f8(engine.account.cross_unrealized()),
                "availableBalance": f8(available),
                "maxWithdrawAmount": f8(max(0.0, available)),
                "marginAvailable": True,
                "updateTime": self.clock(),
            }
        ]

    def set_leverage(self, params: Params) -> Any:
        symbol = self.engine.market(params.get("symbol")).spec.symbol
        leverage = int_param(params, "leverage")
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
