"""Reconciliation: the bot's books against the venue's account (SPEC 8, 9).

On a live venue the exchange is the truth: at start, after every reconnect and every
`exchange.reconcile_interval`, the orchestrator reads the exchange's balance,
positions and open orders. When a position differs, the fills the exchange made that
no order of the bot explains (its liquidations, trades of orders placed by hand) are
fetched and booked like any fill, so realized PnL, fees and the strategy follow what
really happened; whatever still differs after that is adopted. Each difference is
logged as a warning and journaled.
"""

import logging
from collections.abc import Callable, Sequence

from perps_bot.domain import Fill
from perps_bot.ledger import Ledger
from perps_bot.orchestrator.excursions import ExcursionTracker
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.venues import OrderRejected, Venue, VenueSnapshot, VenueUnavailable

#: a position difference below this (base units) is rounding, not a difference
POSITION_TOLERANCE = 1e-9
#: a wallet difference below this share of the wallet is rounding
BALANCE_TOLERANCE = 1e-9

log = logging.getLogger("perps_bot.orchestrator")


def _differences(snap: VenueSnapshot, ledger: Ledger) -> dict[str, tuple[float, float]]:
    """symbol -> (the bot's position, the venue's) where they differ."""
    venue = {p.symbol: p.size for p in snap.positions}
    symbols = sorted(set(venue) | set(ledger.symbols()))
    pairs = {s: (ledger.position_size(s), venue.get(s, 0.0)) for s in symbols}
    return {s: p for s, p in pairs.items() if abs(p[0] - p[1]) > POSITION_TOLERANCE}


async def reconcile(
    why: str,
    ts: int,
    *,
    venue: Venue,
    ledger: Ledger,
    recorder: Recorder,
    excursions: ExcursionTracker,
    since_ms: int | None,
    book: Callable[[Sequence[Fill]], None],
) -> list[str]:
    """Bring the books to the venue's account; returns the symbols that differed.
    `since_ms`: where to look for unexplained exchange fills (None: adopt at once)."""
    try:
        snap = await venue.snapshot()
        differences = _differences(snap, ledger)
        booked: Sequence[Fill] = ()
        if differences and since_ms is not None:
            booked = await venue.exchange_fills(since_ms, sorted(differences))
            if booked:
                book(booked)
                snap = await venue.snapshot()
    except (VenueUnavailable, OrderRejected) as exc:
        log.warning("reconciliation (%s) failed: %s", why, exc)
        return []
    left = _differences(snap, ledger)
    positions = {p.symbol: (p.size, p.entry_price) for p in snap.positions}
    balance = snap.balance if snap.balance is not None else ledger.wallet_balance()
    wallet_gap = balance - ledger.wallet_balance()
    if booked:
        log.warning(
            "reconciliation (%s): booked %d exchange fills no order of the bot explains: %s",
            why,
            len(booked),
            ", ".join(f"{f.symbol} {f.side} {f.size:g} @ {f.price:g} ({f.reason})" for f in booked),
        )
    if left:
        detail = ", ".join(f"{s} {ours:+g} -> {theirs:+g}" for s, (ours, theirs) in left.items())
        log.warning("reconciliation (%s): adopting the venue's positions: %s", why, detail)
    if left or abs(wallet_gap) > BALANCE_TOLERANCE * max(1.0, abs(balance)):
        ledger.restore(balance, positions)
    recorder.journal.write(
        "reconcile",
        ts,
        {
            "why": why,
            "balance": balance,
            "wallet_difference": wallet_gap,
            "positions": {s: list(v) for s, v in sorted(positions.items())},
            "open_orders": len(snap.open_orders),
            "booked_fills": len(booked),
            "mismatched": sorted(left),
            "before": {s: ours for s, (ours, _) in left.items()},
        },
    )
    for symbol, (ours, _) in left.items():
        size, entry = positions.get(symbol, (0.0, 0.0))
        excursions.on_position(symbol, ts, ours, size, entry)
        recorder.position(symbol, size, entry, ts)
    return sorted(set(left) | {f.symbol for f in booked})
