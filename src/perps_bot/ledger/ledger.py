"""The one account ledger: positions, cash, margin, funding and liquidation (SPEC 3).

The orchestrator, the risk gate (through `AccountView`) and the backtester all use
this one class, so a backtest and a live run book money the same way.

Numbers. Every cash flow (wallet, realized PnL, fees, funding, entry notional,
isolated margin) is a Decimal converted from the float's shortest repr. Floats
cannot hold 0.1 exactly and their sums depend on order, so after millions of fills
and funding events a float wallet drifts away from initial + realized - fees +
funding; Decimal sums of repr-converted values are exact (80-digit context, see
`position.DECIMAL_CONTEXT`), and the invariant can then be checked to the last
digit. Prices compared against market data (marks, liquidation prices) and derived
views (unrealized PnL, equity, available balance) are floats computed from the
Decimal state: they are never accumulated, so they cannot drift, and `update_mark`,
called for every market event, stays a few float operations.

Margin model (Binance USDM, one-way mode; documented in README):
- Cross: one wallet backs every position. A position is liquidated when the margin
  balance (wallet + unrealized PnL at mark) falls to the total maintenance margin.
  Then the whole account is liquidated: the position whose mark move triggered it
  closes at its cross liquidation price, the others at their marks.
- Isolated: each position has an isolated margin, notional / leverage posted at each
  opening fill (entry price, Decimal). Its funding is booked to that margin; fees and
  realized PnL go to the free wallet; a partial close releases the closed share of
  the margin, a full close all of it. It is liquidated when mark crosses its cached
  liquidation price (the formula with WB = its isolated margin) and its margin is not
  clearly above maintenance at that mark (a table whose margin jumps at a floor can put
  the liquidation price of a safe long above its mark).
- A liquidation closes at the liquidation price when the mark crossed it during this
  update (a gap past it is absorbed, as an insurance fund would), or at the mark when
  the position was already past it before the update (a fill opened it beyond its
  liquidation price, or funding moved the price past the mark). The liquidation fee is
  `liquidation_fee_bps` of the closed notional; with `liquidation_fee_capped` it is
  capped at the margin left after the close (then the wallet cannot go negative by
  the fee; by default it is not capped, so 50 bps over a 0.4% tier can).
- Maintenance tiers come from each symbol's instrument (perps_bot.instruments); the
  liquidation price uses the tier whose bracket contains the notional AT that price
  (see margin.tiers).
- Liquidations are modelled only where the ledger is the venue's account too: paper
  venues (dev, dry run, backtest, replay). On a live venue the exchange liquidates and
  the bot learns it by reconciliation (`models_liquidation=False`): marks still move
  unrealized PnL and the liquidation price is still reported, but nothing is booked.

Parts (one module each, mixed into `Ledger`): `state` (the fields), `fills` (fills
and funding), `liquidation` (when and how positions are force-closed), `restore`
(restore and checkpoints), `invariant` (the balance check). What every market event
runs (`update_mark`, the quiet-stretch methods, `unrealized_pnl`) stays here, as
direct methods.
"""

import math
from collections.abc import Collection, Sequence

from perps_bot.domain import Fill
from perps_bot.ledger.errors import LedgerError
from perps_bot.ledger.invariant import DRIFT_TOLERANCE, InvariantChecks
from perps_bot.ledger.liquidation import close_price as _close_price
from perps_bot.ledger.results import FillResult

__all__ = ["DRIFT_TOLERANCE", "Ledger"]

_INF = math.inf
_NO_LIQUIDATIONS: tuple[tuple[Fill, FillResult], ...] = ()


class Ledger(InvariantChecks):
    """Exact books for one USDT-margined perpetual account; implements `AccountView`.

    Built with `Ledger(account, instruments, models_liquidation=..., debug_invariants=...)`
    (see `state.LedgerState`)."""

    # ------------------------------------------------------------------ AccountView
    def position_size(self, symbol: str) -> float:
        pos = self._positions.get(symbol)
        return pos.size_f if pos is not None else 0.0

    def entry_price(self, symbol: str) -> float:
        pos = self._positions.get(symbol)
        return pos.entry_f if pos is not None else 0.0

    def mark_price(self, symbol: str) -> float:
        return self._marks.get(symbol, 0.0)

    def equity(self) -> float:
        """Wallet balance plus unrealized PnL on mark."""
        return self._wallet_f + self.unrealized_pnl()

    def available_balance(self) -> float:
        """What a new order may use as initial margin.

        Cross: equity - sum(|Q| * mark / leverage). Isolated: wallet - isolated margins
        (isolated positions' unrealized PnL does not back new orders, as on Binance).
        """
        if self._isolated:
            return self._wallet_f - sum(p.margin_f for p in self._positions.values())
        return self.equity() - self.initial_margin()

    # ------------------------------------------------------------------ reads
    def wallet_balance(self) -> float:
        """Initial balance + realized PnL - fees + funding (the cash)."""
        return self._wallet_f

    def initial_balance(self) -> float:
        """The starting balance the invariant counts from (re-based by `restore`)."""
        return float(self._initial)

    def unrealized_pnl(self) -> float:
        total = 0.0
        for pos in self._positions.values():
            total += pos.size_f * (pos.mark - pos.entry_f)
        return total

    def unrealized_line(self, symbols: Collection[str]) -> tuple[float, dict[str, float]]:
        """(base, slopes): the unrealized PnL is `base + sum(slopes[s] * mark[s])` when
        each of `symbols` held is marked at `mark[s]` and every other position keeps its
        own (equity rows on candles' price paths, orchestrator.candle_minutes)."""
        base = 0.0
        slopes: dict[str, float] = {}
        for held, pos in self._positions.items():
            if held in symbols:
                slopes[held] = pos.size_f
                base -= pos.size_f * pos.entry_f
            else:
                base += pos.size_f * (pos.mark - pos.entry_f)
        return base, slopes

    def realized_pnl(self) -> float:
        return self._realized_f

    def fees_paid(self) -> float:
        return self._fees_f

    def funding_total(self) -> float:
        return self._funding_f

    def symbols(self) -> list[str]:
        """Symbols with an open position, sorted."""
        return sorted(self._positions)

    def isolated_margin(self, symbol: str) -> float:
        """The position's isolated margin (0.0 when flat or in cross mode)."""
        pos = self._positions.get(symbol)
        return pos.margin_f if pos is not None else 0.0

    def initial_margin(self) -> float:
        """Initial margin in use: isolated margins, or mark notional / leverage in cross."""
        if self._isolated:
            return sum(p.margin_f for p in self._positions.values())
        return sum(p.abs_f * p.mark / p.leverage for p in self._positions.values())

    def maintenance_margin(self) -> float:
        """Total maintenance margin of the open positions at their marks."""
        return sum(p.maintenance(p.abs_f * p.mark) for p in self._positions.values())

    def margin_required(self, symbol: str, new_size: float, price: float) -> float:
        """Initial margin a position of signed `new_size` at `price` would need."""
        if not (0.0 < price < _INF) or not math.isfinite(new_size):
            raise LedgerError(
                f"margin_required needs a finite size and a positive price, "
                f"got size={new_size!r} price={price!r}"
            )
        return abs(new_size) * price / self.leverage(symbol)

    def liquidation_price(self, symbol: str) -> float | None:
        """Price at which the position is liquidated (None when flat; 0.0 = a long that
        cannot be). Cross mode: with the other positions held at their current marks."""
        pos = self._positions.get(symbol)
        if pos is None:
            return None
        if self._isolated:
            return pos.liq
        return self._cross_liquidation_price(pos)

    # ------------------------------------------------------------------ mutations
    def update_mark(self, symbol: str, mark: float, ts: int) -> Sequence[tuple[Fill, FillResult]]:
        """Record a mark price; return the liquidations it triggers (already booked).

        Hot path (every market event): float comparisons against cached values only.
        """
        if not 0.0 < mark < _INF:
            raise LedgerError(f"mark price for {symbol} at {ts} must be positive, got {mark!r}")
        self._marks[symbol] = mark
        pos = self._positions.get(symbol)
        if pos is None:
            return _NO_LIQUIDATIONS
        previous = pos.mark
        pos.mark = mark
        if not self._models_liquidation:
            return _NO_LIQUIDATIONS  # live: the exchange liquidates; reconciliation tells us
        if self._isolated:
            if ((mark > pos.liq) if pos.sign > 0 else (mark < pos.liq)) or (
                self._isolated_clear_at(pos, mark)
            ):
                if self._debug:
                    self.check_invariant()
                return _NO_LIQUIDATIONS
            price = _close_price(pos.sign, previous, pos.liq, mark)
            fills = self._liquidate([(pos, price)], pos.margin_f, ts)
        else:
            if (symbol == self._band_symbol and self._band_low < mark < self._band_high) or (
                self._bands and pos.band_low < mark < pos.band_high
            ):
                if self._debug:
                    self.check_invariant()
                return _NO_LIQUIDATIONS
            if self._bands:  # marks inside the bands were not summed: recount
                self._bands = False
                safe = self._cross_margin_safe()
            else:
                safe = self._cross_safe_after(pos, mark)
            if safe:
                if len(self._positions) == 1:
                    self._cache_safe_band(pos)
                else:
                    self._cache_cross_bands()
                if self._debug:
                    self.check_invariant()
                return _NO_LIQUIDATIONS
            fills = self._liquidate_cross(pos, previous, ts)
        if self._debug:
            self.check_invariant()
        return fills

    # ------------------------------------------------------- quiet stretches
    def quiet_mark_band(self, symbol: str) -> tuple[float, float] | None:
        """The marks of `symbol` that `update_mark` would only record: those strictly
        between the two bounds (valid, inside the cached safe band of a sole cross
        position or of each of several, or on the safe side of an isolated liquidation
        price). None when every mark takes `update_mark` (invariant checks on, no band
        cached yet). The orchestrator walks candles or quotes inside it and records the
        last (`mark_quietly`)."""
        if self._debug:
            return None
        low, high = 0.0, _INF
        pos = self._positions.get(symbol)
        if pos is not None and self._models_liquidation:
            if self._isolated:
                if pos.sign > 0:
                    low = max(low, pos.liq)
                else:
                    high = min(high, pos.liq)
            elif symbol == self._band_symbol:
                low, high = max(low, self._band_low), min(high, self._band_high)
            elif self._bands:
                low, high = max(low, pos.band_low), min(high, pos.band_high)
            else:
                return None
        return low, high

    def mark_quietly(self, symbol: str, mark: float) -> None:
        """The last of a stretch of marks inside `quiet_mark_band`."""
        self._marks[symbol] = mark
        pos = self._positions.get(symbol)
        if pos is not None:
            pos.mark = mark

    def unrealized_terms(self, symbol: str) -> tuple[float, float] | None:
        """(size, entry) such that `0.0 + size * (mark - entry)` is `unrealized_pnl()`
        at `symbol`'s mark `mark`, float for float: the books hold nothing but `symbol`
        (a flat book gives (0.0, 0.0)). None when other symbols are held."""
        if not self._positions:
            return 0.0, 0.0
        pos = self._positions.get(symbol)
        if pos is None or len(self._positions) > 1:
            return None
        return pos.size_f, pos.entry_f
