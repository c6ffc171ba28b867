"""Reconciliation: the bot's books against the venue's account (SPEC 8, 9).

On a live venue the exchange is the truth: at start, after every reconnect and every
`exchange.reconcile_interval`, the orchestrator reads the exchange's balance,
positions and open orders. A difference (a fill the bot never saw, an order placed by
hand, or a liquidation, which on a live venue only the exchange makes) is adopted by
the ledger, logged as a warning and journaled with what differed, so the strategy and
the risk gate trade from what the exchange really holds.
"""

import logging

from perps_bot.ledger import Ledger
from perps_bot.orchestrator.excursions import ExcursionTracker
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.venues import OrderRejected, Venue, VenueUnavailable

#: a position difference below this (base units) is rounding, not a difference
POSITION_TOLERANCE = 1e-9

log = logging.getLogger("perps_bot.orchestrator")


async def reconcile(
    why: str,
    ts: int,
    *,
    venue: Venue,
    ledger: Ledger,
    recorder: Recorder,
    excursions: ExcursionTracker,
) -> list[str]:
    """Adopt the venue's positions and balance; returns the symbols that differed."""
    try:
        snap = await venue.snapshot()
    except (VenueUnavailable, OrderRejected) as exc:
        log.warning("reconciliation (%s) failed: %s", why, exc)
        return []
    venue_positions = {p.symbol: (p.size, p.entry_price) for p in snap.positions}
    differences = {
        s: (ledger.position_size(s), venue_positions.get(s, (0.0, 0.0))[0])
        for s in sorted(set(venue_positions) | set(ledger.symbols()))
    }
    mismatched = [
        s for s, (ours, theirs) in differences.items() if abs(ours - theirs) > POSITION_TOLERANCE
    ]
    balance = snap.balance if snap.balance is not None else ledger.wallet_balance()
    if mismatched:
        detail = ", ".join(f"{s} {differences[s][0]:+g} -> {differences[s][1]:+g}"
                           for s in mismatched)  # fmt: skip
        log.warning("reconciliation (%s): adopting the venue's positions: %s", why, detail)
    if mismatched or snap.balance is not None:
        ledger.restore(balance, venue_positions)
    recorder.journal.write(
        "reconcile",
        ts,
        {
            "why": why,
            "balance": balance,
            "positions": {s: list(v) for s, v in sorted(venue_positions.items())},
            "open_orders": len(snap.open_orders),
            "mismatched": mismatched,
            "before": {s: differences[s][0] for s in mismatched},
        },
    )
    for symbol in mismatched:
        size, entry = venue_positions.get(symbol, (0.0, 0.0))
        excursions.on_position(symbol, ts, differences[symbol][0], size, entry)
        recorder.position(symbol, size, entry, ts)
    return mismatched
