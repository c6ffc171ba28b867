"""The run modes as one table (SPEC 8): each mode is one row saying where its market data
and its fills come from and how the bot treats the account. The mode itself is decided
once (`Settings.mode`); nothing else in the bot asks which profile or flags were used.

Read the rows at the bottom as the table: feed, venue, whether instruments come from
the exchange, whether the ledger models liquidations (paper venues) or the exchange
does (live), whether the bot reconciles with the venue's account, whether real orders
are sent, the clock, whether the run takes checkpoints and can be resumed, whether
it trades the profile's account (st.: its trading state, a halt, carries over runs),
and whether a writer process stores its rows (behind).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from perps_bot.config import Settings
from perps_bot.domain import Instrument, PositionBook, RunMode, parse_duration
from perps_bot.feeds import Feed
from perps_bot.venues import Venue


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a row's builders may use."""

    settings: Settings
    instruments: Mapping[str, Instrument]
    positions: PositionBook
    start_ms: int
    end_ms: int | None
    public_client: Any  # ccxt client with markets loaded (exchange modes), else None
    #: each portfolio's position book, by portfolio id (paper venues match against it)
    books: Callable[[str], PositionBook]


FeedBuilder = Callable[[Wiring], Feed]
VenueBuilder = Callable[[Wiring], Venue]


@dataclass(frozen=True, slots=True)
class ModeSpec:
    mode: RunMode
    #: None: the command supplies the feed (backtest candles, a replayed capture)
    build_feed: FeedBuilder | None
    build_venue: VenueBuilder
    #: instruments from the exchange's markets (else from the profile)
    exchange_instruments: bool
    #: the ledger models liquidations (paper venues); live: the exchange liquidates
    models_liquidation: bool
    #: reconcile with the venue's account at start, after reconnects and periodically
    reconciles: bool
    #: real orders reach an exchange (client ids unique per run, the prod promotion gate)
    real_orders: bool
    #: simulated clock: always (True), never (False), or with --dev-fast (None)
    simulated: bool | None
    #: checkpoints every few seconds of wall time, `--resume` (SPEC 9)
    resumable: bool
    #: trades the profile's account: its trading state (a halt) carries over runs
    keeps_trading_state: bool
    #: processes store the rows (storage.writer_process) and write the run log's lines
    #: (monitoring.text_process), on the second core: only where nothing needs
    #: them on disk before the run ends (no live fill, no checkpoint), and a rerun
    #: writes them again exactly
    writes_behind: bool

    def simulated_clock(self, settings: Settings) -> bool:
        return settings.run.dev_fast if self.simulated is None else self.simulated


def _random_walk(w: Wiring) -> Feed:
    from perps_bot.feeds.random_walk import RandomWalkFeed

    s = w.settings
    return RandomWalkFeed(
        s.mock,
        list(w.instruments),
        s.run.seed,
        tick_sizes={name: i.tick_size for name, i in w.instruments.items()},
        start_ms=w.start_ms,
        end_ms=w.end_ms,
        realtime=not s.run.dev_fast,
        funding_interval_ms=parse_duration(s.account.funding_interval),
    )


def _exchange_feed(w: Wiring) -> Feed:
    from perps_bot.feeds.exchange_stream import exchange_feed

    return exchange_feed(
        w.public_client,
        w.settings.exchange,
        list(w.instruments),
        exchange_symbols={name: i.exchange_symbol for name, i in w.instruments.items()},
    )


def _paper_venue(w: Wiring) -> Venue:
    from perps_bot.venues.mock import MockVenue

    return MockVenue(
        w.settings.mock, w.instruments, w.settings.run.seed, w.positions, books=w.books
    )


def _live_venue(w: Wiring) -> Venue:
    from perps_bot.exchange.client import create_exchange
    from perps_bot.venues.live import LiveVenue

    s = w.settings
    private = create_exchange(s.exchange, private=True)
    return LiveVenue(private, s.exchange, s.account, w.instruments)


_M = RunMode
T, F = True, False
#            mode          feed            venue         exch liq rec. real simul resume st. behind
MODES: dict[RunMode, ModeSpec] = {
    row.mode: row
    for row in (
        ModeSpec(_M.DEV,      _random_walk,   _paper_venue, F,   T,  F,   F,   None, T,     T,   F),
        ModeSpec(_M.DRY_RUN,  _exchange_feed, _paper_venue, T,   T,  F,   F,   F,    T,     T,   F),
        ModeSpec(_M.LIVE,     _exchange_feed, _live_venue,  T,   F,  T,   T,   F,    F,     T,   F),
        ModeSpec(_M.BACKTEST, None,           _paper_venue, F,   T,  F,   F,   T,    F,     F,   T),
        ModeSpec(_M.REPLAY,   None,           _paper_venue, F,   T,  F,   F,   T,    T,     F,   F),
        ModeSpec(_M.WALKFORWARD, None,        _paper_venue, F,   T,  F,   F,   T,    F,     F,   F),
    )
}  # fmt: skip
