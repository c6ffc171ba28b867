"""Reconciliation: the bot's books against the venue's account (SPEC 8, 9).

On a live venue the exchange is the truth: at start, after every reconnect and every
`exchange.reconcile_interval`, the orchestrator reads the exchange's balance,
positions and open orders. The fills of the bot's own orders that the account holds and
the venue had not handed out yet come with it and are booked first (each once: adopted
with the position, the next poll booked them again). When a position differs, the fills
the exchange made that no order of the bot explains (its liquidations, trades of orders
placed by hand) are fetched and booked like any fill, so realized PnL, fees and the
strategy follow what really happened; whatever still differs after that is adopted.
Each difference is logged as a warning and journaled.
"""

import logging
from collections.abc import Callable, Sequence

from perps_bot.domain import Fill
from perps_bot.ledger import AccountBooks, Ledger
from perps_bot.monitoring.logs import about
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.venues import (
    FillsOutOfReach,
    OrderRejected,
    Venue,
    VenueSnapshot,
    VenueUnavailable,
)

#: a position difference below this (base units) is rounding, not a difference
POSITION_TOLERANCE = 1e-9
#: a wallet difference below this share of the wallet is rounding
BALANCE_TOLERANCE = 1e-9

log = logging.getLogger("perps_bot.orchestrator")


class ReconcileFailed(Exception):
    """The venue's account could not be read (retries ran out): the books were not
    compared. Mid-run the next reconciliation tries again; at start-up the run stops,
    since trading on books never compared could double a position the exchange holds."""


def _differences(
    snap: VenueSnapshot, books: AccountBooks | Ledger
) -> dict[str, tuple[float, float]]:
    """symbol -> (the bot's position, the venue's) where they differ."""
    venue = {p.symbol: p.size for p in snap.positions}
    symbols = sorted(set(venue) | set(books.symbols()))
    pairs = {s: (books.position_size(s), venue.get(s, 0.0)) for s in symbols}
    return {s: p for s, p in pairs.items() if abs(p[0] - p[1]) > POSITION_TOLERANCE}


async def reconcile(
    why: str,
    ts: int,
    *,
    venue: Venue,
    portfolios: Sequence[Portfolio],
    recorder: Recorder,
    since_ms: int,
    adopt: bool,
    book: Callable[[Sequence[Fill]], None],
) -> list[str]:
    """Bring the books to the venue's account; returns the symbols that differed, or
    raises ReconcileFailed (warned) when the account cannot be read.
    `since_ms`: where to look for unexplained exchange fills; `adopt`: books never
    compared yet (a start) take the account at once, and the fills since `since_ms` it
    holds are never looked for again (a later reconciliation booked them twice).
    With several portfolios the account is their sum: a difference goes to the one
    portfolio that trades the symbol; when several do, it cannot be attributed, and
    they stop trading it (HALTED, with the reason) until an operator looks."""
    books: AccountBooks | Ledger = portfolios[0].ledger
    if len(portfolios) > 1:
        books = AccountBooks([p.ledger for p in portfolios])
    try:
        symbols = sorted(set().union(*(p.symbols for p in portfolios)))
        snap = await _snapshot(venue, book, (since_ms, symbols) if adopt else None)
        differences = _differences(snap, books)
        booked: Sequence[Fill] = ()
        if differences and not adopt:
            try:
                booked = await venue.exchange_fills(since_ms, sorted(differences))
            except FillsOutOfReach as exc:  # part of them booked would be wrong books
                reason = f"reconciliation: {exc}; the exchange's positions are adopted"
                # those trading the symbols (a halt never touches another portfolio)
                holders = [p for p in portfolios if p.symbols & differences.keys()]
                log.error("reconciliation (%s): %s; trading stops until resume-trading",
                          why, reason, extra=_about(holders or portfolios))  # fmt: skip
                _halt(holders or portfolios, reason, ts)
            if booked:
                book(booked)
                snap = await _snapshot(venue, book)
    except (VenueUnavailable, OrderRejected) as exc:
        log.warning("reconciliation (%s) failed: %s", why, exc)
        raise ReconcileFailed(str(exc)) from exc
    left = _differences(snap, books)
    positions = {p.symbol: (p.size, p.entry_price) for p in snap.positions}
    if booked:
        log.warning(
            "reconciliation (%s): booked %d exchange fills no order of the bot explains: %s",
            why,
            len(booked),
            ", ".join(f"{f.symbol} {f.side} {f.size:g} @ {f.price:g} ({f.reason})" for f in booked),
        )
        if len(portfolios) > 1:
            _halt_shared(portfolios, booked, why, ts)
    before = {(p.id, s): p.ledger.position_size(s) for p in portfolios for s in left}
    if len(portfolios) == 1:
        wallet_gap, attributed = _adopt_account(portfolios[0], snap, positions, left, why)
    else:
        wallet_gap = (snap.balance or 0.0) - books.equity() + books.unrealized_pnl()
        attributed = _attribute(portfolios, positions, left, why, ts)
    unknown = {symbol for symbol, owner in attributed.items() if owner is None}
    for p in portfolios:  # their protective orders stay until the books know it again
        p.protection.unknown = frozenset(unknown & p.symbols)
    recorder.journal.write(
        "reconcile",
        ts,
        {
            "why": why,
            "balance": snap.balance,
            "wallet_difference": wallet_gap,
            "positions": {s: list(v) for s, v in sorted(positions.items())},
            "open_orders": len(snap.open_orders),
            "booked_fills": len(booked),
            "mismatched": sorted(left),
            "before": {s: ours for s, (ours, _) in left.items()},
            "attributed": attributed,
        },
    )
    for symbol in left:
        for p in portfolios:
            if p.id == attributed.get(symbol):
                now, entry = p.ledger.position_size(symbol), p.ledger.entry_price(symbol)
                p.excursions.on_position(symbol, ts, before[(p.id, symbol)], now, entry)
                p.rec.position(symbol, now, entry, ts)
    return sorted(set(left) | {f.symbol for f in booked})


async def _snapshot(
    venue: Venue,
    book: Callable[[Sequence[Fill]], None],
    adopted: tuple[int, Sequence[str]] | None = None,
) -> VenueSnapshot:
    """The venue's account, the fills of the bot's own orders it holds that the books
    did not have yet booked first (they are handed out once: adopted with the position,
    the venue's next poll would have booked them again). `adopted`: (since_ms, symbols)
    of an account taken whole (Venue.snapshot_to_adopt)."""
    snap = await (venue.snapshot() if adopted is None else venue.snapshot_to_adopt(*adopted))
    if snap.fills:
        book(snap.fills)
    return snap


def _adopt_account(
    portfolio: Portfolio,
    snap: VenueSnapshot,
    positions: dict[str, tuple[float, float]],
    left: dict[str, tuple[float, float]],
    why: str,
) -> tuple[float, dict[str, str | None]]:
    """One portfolio is the account: it adopts the venue's positions and balance."""
    ledger = portfolio.ledger
    balance = snap.balance if snap.balance is not None else ledger.wallet_balance()
    wallet_gap = balance - ledger.wallet_balance()
    if left:
        detail = ", ".join(f"{s} {ours:+g} -> {theirs:+g}" for s, (ours, theirs) in left.items())
        log.warning("reconciliation (%s): adopting the venue's positions: %s", why, detail)
    if left or abs(wallet_gap) > BALANCE_TOLERANCE * max(1.0, abs(balance)):
        ledger.restore(balance, positions)
    return wallet_gap, {s: portfolio.id for s in left}


def _attribute(
    portfolios: Sequence[Portfolio],
    positions: dict[str, tuple[float, float]],
    left: dict[str, tuple[float, float]],
    why: str,
    ts: int,
) -> dict[str, str | None]:
    """Each remaining difference to the one portfolio trading the symbol (it adopts the
    account's position less the others'), or to none (they halt: a state change like
    any, journaled and stored at once, so a crash does not forget it)."""
    attributed: dict[str, str | None] = {}
    for symbol, (ours, theirs) in left.items():
        holders = [p for p in portfolios if symbol in p.symbols]
        if len(holders) != 1:
            attributed[symbol] = None
            names = ", ".join(p.id for p in holders) or "none"
            reason = (f"reconciliation: {symbol} {ours:+g} here, {theirs:+g} on the exchange,"
                      f" cannot be attributed (portfolios {names})")  # fmt: skip
            log.error("reconciliation (%s): %s; those portfolios stop trading", why, reason,
                      extra=_about(holders))  # fmt: skip
            _halt(holders, reason, ts)
            continue
        owner = holders[0]
        others = sum(p.ledger.position_size(symbol) for p in portfolios if p is not owner)
        size, entry = positions.get(symbol, (0.0, 0.0))
        held = {s: (owner.ledger.position_size(s), owner.ledger.entry_price(s))
                for s in owner.ledger.symbols()}  # fmt: skip
        held[symbol] = (size - others, entry)
        held = {s: v for s, v in held.items() if abs(v[0]) > POSITION_TOLERANCE}
        owner.ledger.restore(owner.ledger.wallet_balance(), held)
        attributed[symbol] = owner.id
        log.warning("reconciliation (%s): %s %+g -> %+g adopted by portfolio %s", why, symbol,
                    ours, theirs, owner.id, extra=_about([owner]))  # fmt: skip
    return attributed


def _halt_shared(
    portfolios: Sequence[Portfolio], booked: Sequence[Fill], why: str, ts: int
) -> None:
    """Exchange fills no order of the bot explains (a liquidation of the account's net
    position, a trade by hand) of a symbol several portfolios trade cannot be told to be
    one's or another's: booked to one of them (routing), the sum matches the exchange but
    that portfolio holds what it never asked for. Those portfolios halt, as for a
    difference that cannot be attributed, until an operator looks."""
    for symbol in sorted({f.symbol for f in booked}):
        holders = [p for p in portfolios if symbol in p.symbols]
        if len(holders) > 1:
            names = ", ".join(p.id for p in holders)
            reason = (f"reconciliation: exchange fills of {symbol} no order of the bot explains"
                      f" cannot be attributed (portfolios {names})")  # fmt: skip
            log.error("reconciliation (%s): %s; those portfolios stop trading", why, reason,
                      extra=_about(holders))  # fmt: skip
            _halt(holders, reason, ts)


def _about(portfolios: Sequence[Portfolio]) -> dict[str, tuple[str, ...]]:
    """A log line about these portfolios (their promotions count it, not the others')."""
    return about(*(p.id for p in portfolios))


def _halt(portfolios: Sequence[Portfolio], reason: str, ts: int) -> None:
    """HALTED with `reason`: a state change like any, journaled and stored at once (a
    crash does not forget it); only resume-trading lifts it."""
    for p in portfolios:
        was = p.risk.state
        p.risk.halt(reason)
        if p.risk.state is not was:
            p.rec.state_change(ts, str(p.risk.state), reason)
