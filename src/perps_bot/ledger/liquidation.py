"""Liquidation (SPEC 3; rules in the `ledger` module doc): when an account is
liquidated, at which price, with which fee, and the cached tests that let
`update_mark` decide "safe" in a few float operations per market event.

The exact test (margin balance above maintenance margin) sums over every position;
the caches here (the running sum of the positions' parts, the safe band of a sole
cross position) give the same verdict at the same marks, only cheaper.
"""

import math
from decimal import localcontext

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.ledger.fills import FillBooking
from perps_bot.ledger.position import DECIMAL_CONTEXT, Position
from perps_bot.ledger.results import FillResult
from perps_bot.margin import liquidation_price_tiered

_INF = math.inf
#: cross margin: the cached sum of the positions' parts is recounted this often, and a
#: slack above this share of the wallet is trusted without the exact test (the sum's
#: float drift over _RECOUNT updates is orders of magnitude smaller)
_RECOUNT = 4096
_SAFE_MARGIN = 1e-9


class LiquidationRules(FillBooking):
    """Cross and isolated liquidation: detection caches, prices and forced closes."""

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
            result = self._book_fill(pos.symbol, direction, abs(pos.size), pos.abs_f, price, fee)
        return fill, result

    def liquidates_at(self, symbol: str, mark: float) -> bool:
        """Whether `update_mark(symbol, mark, ...)` would liquidate now: the same exact
        verdict, with nothing recorded or cached (a candle walked point by point asks
        this at each extreme of the mark's path: orchestrator.long_candles)."""
        pos = self._positions.get(symbol)
        if pos is None or not self._models_liquidation:
            return False
        if self._isolated:
            past = (mark <= pos.liq) if pos.sign > 0 else (mark >= pos.liq)
            return past and not self._isolated_clear_at(pos, mark)
        balance = self._wallet_f
        maintenance = 0.0
        for held in self._positions.values():
            at = mark if held is pos else held.mark
            balance += held.size_f * (at - held.entry_f)
            maintenance += held.maintenance(held.abs_f * at)
        return not balance > maintenance

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

        Inside the current maintenance tier's bracket the margin balance minus the
        maintenance margin is linear in the mark (increasing for a long, decreasing for
        a short), so once it is positive at a bound it is positive on the bracket's side
        of the bound away from liquidation. The band ends at the bracket: a user's table
        without maintenance amounts makes the margin jump at a floor, and a long rising
        into the next tier can be below maintenance there. The bound is the zero of that
        difference in the current tier, clamped to the bracket and pulled 1e-9 inside,
        and it is checked with the exact test before it is used; marks past the band
        take the exact test (which caches a new band). Every change of the wallet or of
        a position (a fill on any symbol, which is also how a second position opens,
        funding, restore) goes through `_sync_floats`, which forgets the band.
        Called right after `_cross_margin_safe`, so `pos` holds the current tier."""
        qty = pos.abs_f
        base = self._wallet_f + pos.amount
        bottom, top = _bracket_marks(pos)
        if pos.sign > 0:
            root = (qty * pos.entry_f - base) / (qty * (1.0 - pos.mmr))
            bound = max(root, pos.mm_low / qty, 0.0)
            bound += bound * 1e-9
            if bound < top and self._sole_position_safe_at(pos, bound):
                self._band_symbol, self._band_low, self._band_high = pos.symbol, bound, top
        else:
            root = (base + qty * pos.entry_f) / (qty * (1.0 + pos.mmr))
            bound = min(root, pos.mm_high / qty)
            bound -= bound * 1e-9
            if bottom < bound < _INF and self._sole_position_safe_at(pos, bound):
                self._band_symbol, self._band_low, self._band_high = pos.symbol, bottom, bound

    def _cache_cross_bands(self) -> None:
        """Cross mode with several positions: give each position a band of marks around
        its current one inside which the account cannot reach maintenance, so that
        `update_mark` compares one float per event instead of summing margins (the dev
        profile's two symbols, every tick).

        With the parts recounted, the margin over maintenance is S = wallet + sum of
        (unrealized - maintenance). A mark move d on a position changes its part by at
        most |size| * |d| * (1 + mmr_max) while its notional stays in its tier's bracket
        (unrealized is linear in the mark, the maintenance too, with a slope up to
        mmr_max); each band ends at that bracket (a table may jump at a floor). Each of
        the N positions may use S / 2N of it, so while every mark stays inside its band
        S stays above S / 2 > 0: exactly the verdict the full test would give. A mark
        outside its band takes the full recount and new bands; `_sync_floats` (fills,
        funding, restore) forgets them. Only a clear margin is shared out, so float
        rounding cannot turn a verdict. The parts are recounted first unless they were
        just recounted (no incremental update since)."""
        if self._parts_updates and not self._cross_margin_safe():
            return
        parts = self._parts
        assert parts is not None
        slack = self._wallet_f + parts
        if not slack > 4.0 * _SAFE_MARGIN * max(1.0, abs(self._wallet_f)):
            return
        share = slack / (2.0 * len(self._positions))
        for pos in self._positions.values():
            width = share / (pos.abs_f * (1.0 + pos.mmr_max))
            bottom, top = _bracket_marks(pos)
            pos.band_low, pos.band_high = max(pos.mark - width, bottom), min(pos.mark + width, top)
        self._bands = True

    def _isolated_clear_at(self, pos: Position, mark: float) -> bool:
        """An isolated position past its liquidation price whose margin is still clearly
        above maintenance at `mark`: a table without maintenance amounts jumps at its
        floors, so a long can sit safe just below a tier where it would not be, and the
        liquidation price (the highest unsafe price) is then above its mark."""
        notional = pos.abs_f * mark
        balance = pos.margin_f + pos.size_f * (mark - pos.entry_f)
        return balance - pos.maintenance(notional) > _SAFE_MARGIN * max(1.0, notional)

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
        closes = [(trigger, close_price(trigger.sign, previous, lp, trigger.mark))]
        closes.extend(
            (self._positions[s], self._positions[s].mark)
            for s in sorted(self._positions)
            if s != trigger.symbol
        )
        return self._liquidate(closes, self._wallet_f, ts)


def _bracket_marks(pos: Position) -> tuple[float, float]:
    """The marks that keep `pos`'s notional inside its cached maintenance bracket, pulled
    1e-9 inside (0.0 and inf at the table's ends)."""
    return pos.mm_low / pos.abs_f * (1.0 + 1e-9), pos.mm_high / pos.abs_f * (1.0 - 1e-9)


def close_price(sign: float, previous: float, lp: float, mark: float) -> float:
    """Liquidation fill price: `lp` if the mark crossed it in this update, else `mark`
    (the position was already past it: opened beyond it, or funding moved it)."""
    crossed_now = previous >= lp if sign > 0 else previous <= lp
    return lp if crossed_now and lp > 0 else mark
