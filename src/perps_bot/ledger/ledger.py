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
  liquidation price (the formula with WB = its isolated margin).
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
"""

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any, NoReturn

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Instrument, Liquidity, MarginMode, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger.errors import LedgerError, LedgerInvariantError
from perps_bot.ledger.position import (
    DECIMAL_CONTEXT,
    QUANTUM,
    ZERO,
    Position,
    SymbolBook,
    to_decimal,
)
from perps_bot.ledger.results import FillResult, FundingResult
from perps_bot.margin import liquidation_price_tiered

_INF = math.inf
#: cross margin: the cached sum of the positions' parts is recounted this often, and a
#: slack above this share of the wallet is trusted without the exact test (the sum's
#: float drift over _RECOUNT updates is orders of magnitude smaller)
_RECOUNT = 4096
_SAFE_MARGIN = 1e-9
_NO_LIQUIDATIONS: tuple[tuple[Fill, FillResult], ...] = ()
_DIRECTIONS = {Side.BUY: 1, Side.SELL: -1}
DRIFT_TOLERANCE = 1e-9  # max |equity - invariant| relative to equity (or to 1.0)


class Ledger:
    """Exact books for one USDT-margined perpetual account; implements `AccountView`."""

    def __init__(
        self,
        account: AccountConfig,
        instruments: Mapping[str, Instrument] | None = None,
        *,
        models_liquidation: bool = True,
        debug_invariants: bool = False,
    ) -> None:
        self._account = account
        self._instruments = dict(instruments if instruments is not None else builtin_instruments())
        self._models_liquidation = models_liquidation
        self._isolated = account.margin_mode is MarginMode.ISOLATED
        self._liq_fee_rate = account.liquidation_fee_bps / 10_000.0
        self._cap_liq_fee = account.liquidation_fee_capped
        self._debug = debug_invariants
        self._positions: dict[str, Position] = {}
        self._marks: dict[str, float] = {}
        self._books: dict[str, SymbolBook] = {}
        self._liquidations = 0
        self._initial = to_decimal(account.initial_balance)
        self._wallet = self._initial
        self._realized = ZERO
        self._fees = ZERO
        self._funding = ZERO
        # Totals carried in by restore(), not attributable to any SymbolBook.
        self._base = (ZERO, ZERO, ZERO)
        self._wallet_f = self._realized_f = self._fees_f = self._funding_f = 0.0
        self._sync_floats()

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

    def leverage(self, symbol: str) -> float:
        return self._account.leverage_for(symbol)

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
        return abs(new_size) * price / self._account.leverage_for(symbol)

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
    def apply_fill(self, fill: Fill) -> FillResult:
        """Book one execution: realize the closed part, open the rest, pay the fee."""
        if not (0.0 < fill.size < _INF and 0.0 < fill.price < _INF):
            raise LedgerError(
                f"fill {fill.client_id!r} on {fill.symbol}: size and price must be positive "
                f"and finite, got size={fill.size!r} price={fill.price!r}"
            )
        if not math.isfinite(fill.fee):
            raise LedgerError(f"fill {fill.client_id!r} on {fill.symbol}: fee is {fill.fee!r}")
        direction = _DIRECTIONS.get(fill.side)
        if direction is None:
            raise LedgerError(f"fill {fill.client_id!r} on {fill.symbol}: side {fill.side!r}")
        with localcontext(DECIMAL_CONTEXT):
            result = self._book_fill(
                fill.symbol,
                direction,
                to_decimal(fill.size),
                fill.price,
                to_decimal(fill.fee),
            )
        if self._debug:
            self.check_invariant()
        return result

    def apply_funding(self, ts: int, symbol: str, rate: float, mark: float) -> FundingResult | None:
        """Settle funding on the position held now: cash flow -s * Q * mark * rate.

        None when flat. It does not move the mark (call `update_mark` for that, which
        is where a liquidation caused by the payment is detected).
        """
        if not (0.0 < mark < _INF) or not math.isfinite(rate):
            raise LedgerError(
                f"funding on {symbol} at {ts}: need a positive mark and a finite rate, "
                f"got mark={mark!r} rate={rate!r}"
            )
        pos = self._positions.get(symbol)
        if pos is None:
            return None
        with localcontext(DECIMAL_CONTEXT):
            payment = -pos.size * to_decimal(mark) * to_decimal(rate)
            self._wallet += payment
            self._funding += payment
            self._books[symbol].funding += payment
            if self._isolated:
                pos.margin += payment
            self._sync_floats()
            pos.refresh(self._isolated)
        if self._debug:
            self.check_invariant()
        return FundingResult(float(payment), pos.size_f, mark, rate)

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
            if (mark > pos.liq) if pos.sign > 0 else (mark < pos.liq):
                if self._debug:
                    self.check_invariant()
                return _NO_LIQUIDATIONS
            price = _close_price(pos.sign, previous, pos.liq, mark)
            fills = self._liquidate([(pos, price)], pos.margin_f, ts)
        else:
            if symbol == self._band_symbol and self._band_low < mark < self._band_high:
                if self._debug:
                    self.check_invariant()
                return _NO_LIQUIDATIONS
            if self._cross_safe_after(pos, mark):
                if len(self._positions) == 1:
                    self._cache_safe_band(pos)
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
        position or on the safe side of an isolated liquidation price). None when every
        mark takes `update_mark` (invariant checks on, no band cached yet). The
        orchestrator walks candles inside it and records the last (`mark_quietly`)."""
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

    def restore(
        self,
        wallet_balance: float,
        positions: Mapping[str, tuple[float, float]],
        *,
        realized_pnl: float | None = None,
        fees_paid: float | None = None,
        funding_total: float | None = None,
    ) -> None:
        """Resume from stored state (or adopt a venue's): symbol -> (signed size, entry).

        Replaces wallet and positions (marks seen so far are kept; a position without one
        is marked at its entry; isolated margins are re-posted as entry notional /
        leverage). The realized PnL, fees and funding totals are kept as they are unless
        given, so a mid-run reconciliation does not reset reports or loss limits; the
        invariant's starting balance is re-based to wallet - realized + fees - funding,
        which absorbs any difference between the ledger's wallet and the one adopted.
        """
        numbers = [wallet_balance, realized_pnl, fees_paid, funding_total]
        if not all(x is None or math.isfinite(x) for x in numbers):
            raise LedgerError(f"restore: balance and totals must be finite, got {numbers!r}")
        for symbol, (size, entry) in positions.items():
            if not math.isfinite(size) or (size != 0 and not 0.0 < entry < _INF):
                raise LedgerError(
                    f"restore: position {symbol} needs a finite size and a positive entry, "
                    f"got size={size!r} entry={entry!r}"
                )
        with localcontext(DECIMAL_CONTEXT):
            self._wallet = to_decimal(wallet_balance)
            self._realized = _given_or(realized_pnl, self._realized)
            self._fees = _given_or(fees_paid, self._fees)
            self._funding = _given_or(funding_total, self._funding)
            self._base = (self._realized, self._fees, self._funding)
            self._initial = self._wallet - self._realized + self._fees - self._funding
            self._sync_floats()
            self._positions = {}
            self._books = {}
            for symbol in sorted(positions):
                size, entry = positions[symbol]
                if size == 0:
                    continue
                mark = self._marks.setdefault(symbol, float(entry))
                pos = self._positions[symbol] = self._new_position(symbol, mark)
                pos.size = to_decimal(size)
                pos.cost = abs(pos.size) * to_decimal(entry)
                if self._isolated:
                    pos.margin = (pos.cost / to_decimal(pos.leverage)).quantize(QUANTUM)
                book = self._books.setdefault(symbol, SymbolBook())
                book.cash = -pos.cost if size > 0 else pos.cost
                pos.refresh(self._isolated)
        if self._debug:
            self.check_invariant()

    _STATE = ("_positions", "_marks", "_books", "_liquidations", "_initial", "_wallet",
              "_realized", "_fees", "_funding", "_base")  # fmt: skip

    def state(self) -> tuple[object, ...]:
        """The exact books (Decimals, positions, marks, per-symbol totals), for a
        checkpoint: unlike restore(), nothing is rounded through floats, so a resumed
        paper run books every later fill exactly as an uninterrupted one. Live objects:
        the caller pickles them at once."""
        return tuple(getattr(self, name) for name in self._STATE)

    def restore_state(self, state: Any) -> None:
        for name, value in zip(self._STATE, state, strict=True):
            setattr(self, name, value)
        self._sync_floats()

    # ------------------------------------------------------------------ invariant
    def check_invariant(self) -> None:
        """Raise LedgerInvariantError unless the books balance.

        Exact (Decimal): wallet == initial + realized - fees + funding; per-symbol
        totals add up to the account totals; per symbol, realized PnL == trade cash
        flow + signed cost basis of the open position (no PnL created or lost by
        averaging, partial closes or flips). Float: caches equal the Decimal state,
        and equity matches initial + realized - fees + funding + unrealized within
        DRIFT_TOLERANCE of equity.
        """
        with localcontext(DECIMAL_CONTEXT):
            expected_wallet = self._initial + self._realized - self._fees + self._funding
            exact_totals = (self._wallet, self._realized, self._fees, self._funding)
            if self._wallet != expected_wallet:
                _fail(f"wallet {self._wallet} != initial+realized-fees+funding {expected_wallet}")
            cached = (self._wallet_f, self._realized_f, self._fees_f, self._funding_f)
            if cached != tuple(float(x) for x in exact_totals):
                _fail("float caches of the account totals are stale")
            books = self._books.values()
            sums = (
                self._base[0] + sum((b.realized for b in books), ZERO),
                self._base[1] + sum((b.fees for b in books), ZERO),
                self._base[2] + sum((b.funding for b in books), ZERO),
            )
            if sums != (self._realized, self._fees, self._funding):
                _fail(f"per-symbol totals {sums} != account totals")
            for symbol, book in self._books.items():
                pos = self._positions.get(symbol)
                signed_cost = ZERO if pos is None else (pos.cost if pos.size > 0 else -pos.cost)
                if book.realized != book.cash + signed_cost:
                    _fail(f"{symbol}: realized {book.realized} != trade cash + cost basis")
            exact_upnl = ZERO
            for symbol, pos in self._positions.items():
                self._check_position(symbol, pos)
                exact_upnl += pos.size * to_decimal(pos.mark) - (
                    pos.cost if pos.size > 0 else -pos.cost
                )
            expected_equity = float(expected_wallet + exact_upnl)
        equity = self.equity()
        if abs(equity - expected_equity) > DRIFT_TOLERANCE * max(1.0, abs(expected_equity)):
            _fail(f"equity {equity!r} drifted from the invariant {expected_equity!r}")

    def _check_position(self, symbol: str, pos: Position) -> None:
        if pos.size == 0 or pos.cost <= 0 or symbol not in self._books:
            _fail(f"{symbol}: open position with size {pos.size} and cost {pos.cost}")
        if (pos.size_f, pos.entry_f, pos.margin_f) != (
            float(pos.size),
            float(pos.cost / abs(pos.size)),
            float(pos.margin),
        ):
            _fail(f"{symbol}: float caches are stale")
        if not self._isolated and pos.margin != 0:
            _fail(f"{symbol}: isolated margin booked in cross mode")
        if pos.mark != self._marks.get(symbol):
            _fail(f"{symbol}: position mark {pos.mark!r} != mark {self._marks.get(symbol)!r}")

    # ------------------------------------------------------------------ internals
    def _sync_floats(self) -> None:
        """Refresh the float copies of the Decimal totals (read per event by metrics);
        forget the cross safe band, which depended on them (see _cache_safe_band)."""
        self._band_symbol: str | None = None
        self._band_low, self._band_high = _INF, -_INF
        self._parts: float | None = None  # cross: the parts' sum is recounted
        self._parts_updates = 0
        self._wallet_f = float(self._wallet)
        self._realized_f = float(self._realized)
        self._fees_f = float(self._fees)
        self._funding_f = float(self._funding)

    def _new_position(self, symbol: str, mark: float) -> Position:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise LedgerError(f"no instrument for {symbol}: the ledger cannot margin it")
        return Position(symbol, self._account.leverage_for(symbol), instrument.tiers, mark)

    def _book_fill(
        self, symbol: str, direction: int, qty: Decimal, price_f: float, fee: Decimal
    ) -> FillResult:
        """Apply a fill in Decimal (caller holds the Decimal context)."""
        price = to_decimal(price_f)
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook()
        book.cash -= direction * qty * price
        pos = self._positions.get(symbol)
        closed = ZERO
        realized = ZERO
        if pos is not None and (pos.size > 0) != (direction > 0):
            held = abs(pos.size)
            closed = min(qty, held)
            if closed == held:
                removed, pos.margin = pos.cost, ZERO
            else:
                removed = (pos.cost * closed / held).quantize(QUANTUM)
                pos.margin -= (pos.margin * closed / held).quantize(QUANTUM)
            realized = (closed * price - removed) if pos.size > 0 else (removed - closed * price)
            pos.cost -= removed
            pos.size += direction * closed
            if pos.size == 0:
                del self._positions[symbol]
                pos = None
        opened = qty - closed
        if opened > 0:
            if pos is None:
                mark = self._marks.setdefault(symbol, price_f)
                pos = self._positions[symbol] = self._new_position(symbol, mark)
            pos.size += direction * opened
            pos.cost += opened * price
            if self._isolated:
                pos.margin += (opened * price / to_decimal(pos.leverage)).quantize(QUANTUM)
        self._wallet += realized - fee
        self._realized += realized
        self._fees += fee
        book.realized += realized
        book.fees += fee
        self._sync_floats()
        if pos is not None:
            pos.refresh(self._isolated)
        return FillResult(
            realized_pnl=float(realized),
            fee=float(fee),
            position_after=pos.size_f if pos is not None else 0.0,
            entry_after=pos.entry_f if pos is not None else 0.0,
            closed_size=float(closed),
            opened_size=float(opened),
        )

    def _liquidate(
        self, closes: list[tuple[Position, float]], backing: float, ts: int
    ) -> list[tuple[Fill, FillResult]]:
        """Force-close `closes` (position, price) in order, charging the liquidation fee.

        `backing` is the margin behind them (the isolated margin, or the cross wallet);
        with `liquidation_fee_capped` the fees never exceed what is left of it after
        closing at these prices, so the fee alone cannot push it below zero.
        """
        left = backing + sum(p.size_f * (price - p.entry_f) for p, price in closes)
        booked = []
        for pos, price in closes:
            fee = pos.abs_f * price * self._liq_fee_rate
            if self._cap_liq_fee:
                fee = min(fee, max(0.0, left))
                left -= fee
            booked.append(self._force_close(pos, price, fee, ts))
        return booked

    def _force_close(
        self, pos: Position, price: float, fee: float, ts: int
    ) -> tuple[Fill, FillResult]:
        """Close the whole position at `price` as a liquidation and book it."""
        self._liquidations += 1
        client_id = f"liq-{pos.symbol}-{self._liquidations}"
        fill = Fill(
            ts=ts,
            symbol=pos.symbol,
            side=Side.SELL if pos.sign > 0 else Side.BUY,
            size=pos.abs_f,
            price=price,
            fee=fee,
            liquidity=Liquidity.TAKER,
            client_id=client_id,
            correlation_id=client_id,
            reason="liquidation",
            is_liquidation=True,
        )
        with localcontext(DECIMAL_CONTEXT):
            # Close the exact Decimal size (the float in the Fill may differ by an ulp).
            direction = -1 if pos.size > 0 else 1
            result = self._book_fill(pos.symbol, direction, abs(pos.size), price, to_decimal(fee))
        return fill, result

    def _cross_margin_safe(self) -> bool:
        """Cross: margin balance (wallet + unrealized) above total maintenance margin.
        Also caches each position's part (unrealized less maintenance) and their sum,
        which `_cross_safe_after` then updates one position at a time."""
        balance = self._wallet_f
        maintenance = 0.0
        parts = 0.0
        for pos in self._positions.values():
            notional = pos.abs_f * pos.mark
            unrealized = pos.size_f * (pos.mark - pos.entry_f)
            kept = pos.maintenance(notional)
            pos.part = unrealized - kept
            parts += pos.part
            balance += unrealized
            maintenance += kept
        self._parts, self._parts_updates = parts, 0
        return balance > maintenance

    def _cross_safe_after(self, pos: Position, mark: float) -> bool:
        """The exact `_cross_margin_safe` verdict after `pos` was marked at `mark`, in O(1)
        per event when the account is clearly safe: the cached sum of the parts moves by
        this position's change only. The sum drifts by float rounding (bounded by a full
        recount every `_RECOUNT` updates), so only a slack above `_SAFE_MARGIN` of the
        wallet is trusted; anything closer takes the exact test, whose verdict is the
        one a full recount gives: liquidations happen at exactly the same marks."""
        parts = self._parts
        if parts is None or self._parts_updates >= _RECOUNT:
            return self._cross_margin_safe()
        notional = pos.abs_f * mark
        if pos.mm_low <= notional < pos.mm_high:  # Position.maintenance, inlined: per tick
            kept = notional * pos.mmr - pos.amount
        else:
            kept = pos.maintenance(notional)
        new = pos.size_f * (mark - pos.entry_f) - kept
        parts += new - pos.part
        pos.part = new
        self._parts, self._parts_updates = parts, self._parts_updates + 1
        wallet = self._wallet_f
        if wallet + parts > _SAFE_MARGIN * max(1.0, abs(wallet)):
            return True
        return self._cross_margin_safe()

    def _cache_safe_band(self, pos: Position) -> None:
        """Cross mode with one position: remember the marks that keep it safe, so that
        `update_mark` compares one float instead of summing margins per event.

        The margin balance minus the maintenance margin is monotone in the mark
        (increasing for a long, decreasing for a short: the tiered maintenance is
        continuous and grows slower than the notional), so once it is positive at a
        bound it is positive on the whole side of the bound away from liquidation.
        The bound is the zero of that (linear) difference in the current maintenance
        tier, clamped to the tier's bracket and pulled 1e-9 inside, and it is checked
        with the exact test before it is used; marks past it take the exact test
        (which caches a new band in the next tier). Every change of the wallet or of a
        position (a fill on any symbol, which is also how a second position opens,
        funding, restore) goes through `_sync_floats`, which forgets the band.
        Called right after `_cross_margin_safe`, so `pos` holds the current tier."""
        qty = pos.abs_f
        base = self._wallet_f + pos.amount
        if pos.sign > 0:
            root = (qty * pos.entry_f - base) / (qty * (1.0 - pos.mmr))
            bound = max(root, pos.mm_low / qty, 0.0)
            bound += bound * 1e-9
            if self._sole_position_safe_at(pos, bound):
                self._band_symbol, self._band_low, self._band_high = pos.symbol, bound, _INF
        else:
            root = (base + qty * pos.entry_f) / (qty * (1.0 + pos.mmr))
            bound = min(root, pos.mm_high / qty)
            bound -= bound * 1e-9
            if 0.0 < bound < _INF and self._sole_position_safe_at(pos, bound):
                self._band_symbol, self._band_low, self._band_high = pos.symbol, 0.0, bound

    def _sole_position_safe_at(self, pos: Position, mark: float) -> bool:
        """The exact cross test of `_cross_margin_safe`, for `pos` alone at `mark`."""
        balance = self._wallet_f + pos.size_f * (mark - pos.entry_f)
        return balance > pos.maintenance(pos.abs_f * mark)

    def _cross_others(self, pos: Position) -> tuple[float, float]:
        """(maintenance margin, unrealized PnL) of every position but `pos`, at marks."""
        maintenance = 0.0
        unrealized = 0.0
        for other in self._positions.values():
            if other is not pos:
                notional = other.abs_f * other.mark
                maintenance += other.maintenance(notional)
                unrealized += other.size_f * (other.mark - other.entry_f)
        return maintenance, unrealized

    def _cross_liquidation_price(self, pos: Position) -> float:
        other_mm, other_upnl = self._cross_others(pos)
        return liquidation_price_tiered(
            pos.side,
            pos.abs_f,
            pos.entry_f,
            self._wallet_f,
            pos.tiers,
            other_maintenance_margin=other_mm,
            other_unrealized_pnl=other_upnl,
        )

    def _liquidate_cross(
        self, trigger: Position, previous: float, ts: int
    ) -> list[tuple[Fill, FillResult]]:
        """Liquidate the whole cross account: the trigger at its liquidation price (see
        module doc), the other positions at their marks, in symbol order."""
        lp = self._cross_liquidation_price(trigger)
        closes = [(trigger, _close_price(trigger.sign, previous, lp, trigger.mark))]
        closes.extend(
            (self._positions[s], self._positions[s].mark)
            for s in sorted(self._positions)
            if s != trigger.symbol
        )
        return self._liquidate(closes, self._wallet_f, ts)


def _close_price(sign: float, previous: float, lp: float, mark: float) -> float:
    """Liquidation fill price: `lp` if the mark crossed it in this update, else `mark`
    (the position was already past it: opened beyond it, or funding moved it)."""
    crossed_now = previous >= lp if sign > 0 else previous <= lp
    return lp if crossed_now and lp > 0 else mark


def _given_or(value: float | None, current: Decimal) -> Decimal:
    return current if value is None else to_decimal(value)


def _fail(message: str) -> NoReturn:
    raise LedgerInvariantError(f"ledger invariant broken: {message}")
