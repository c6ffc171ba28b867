"""ExchangeFeed with `exchange.use_websocket: true` against the loopback emulator, through
the real ccxt.pro client: streamed books equal the exchange's book, a stream outage
falls back to REST at once (one warning line) and recovers to streaming, stop() leaves
nothing running, and the canary dry-run works end to end on streams.

Waits are bounded by WAIT_S but end as soon as the awaited event arrives."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import BookSnapshot, FundingRate, MarketEvent, MarkPrice
from perps_bot.feeds.exchange_stream import StreamingExchangeFeed, exchange_feed
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, exchange_cfg
from tests.live.test_canary_bot import logged_text, run_canary

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC-PERP", "ETH-PERP"]
BTC = "BTC/USDT:USDT"
#: bounds a wait that fails; a passing wait ends when its event arrives. 5 s was too
#: short for the streams' reconnection on a 2-core machine under other load, and 30 s
#: is short of what the product allows a reconnection: ccxt.pro dials a websocket URL
#: that refused it after a delay that doubles with each refusal, up to 30 s (a 3 s
#: outage here waited 3.4 s to reconnect), and a retried watch may take
#: exchange.stale_after (10 s) before it is retried
WAIT_S = 60.0
DEPTH, TICKER, PREMIUM = "/fapi/v1/depth", "/fapi/v1/ticker/24hr", "/fapi/v1/premiumIndex"

Batches = AsyncIterator[Sequence[MarketEvent]]


def streaming_feed(
    emulator: EmulatorServer, make_client: ClientFactory, **overrides: Any
) -> tuple[StreamingExchangeFeed, Any]:
    cfg = exchange_cfg(emulator, use_websocket=True, **overrides)
    client = make_client(cfg, private=False)
    feed = exchange_feed(client, cfg, SYMBOLS)
    assert isinstance(feed, StreamingExchangeFeed)  # the flag alone picks the streaming feed
    return feed, client


async def collect_until(
    batches: Batches,
    events: list[MarketEvent],
    done: Callable[[], bool],
    feed: StreamingExchangeFeed | None = None,
) -> None:
    """Collect batches until `done()`; a wait that runs out says, with `feed`, what
    each of its streams was doing (up, consecutive failed watches, last delivery)."""

    async def run() -> None:
        while not done():
            events.extend(await anext(batches))

    try:
        await asyncio.wait_for(run(), WAIT_S)
    except TimeoutError:
        if feed is None:
            raise
        raise AssertionError(f"not done within {WAIT_S:g}s; {stream_report(feed)}") from None


async def until_streaming(feed: StreamingExchangeFeed) -> None:
    """Wait until every stream of every symbol is up, by the feed's state: a stream
    that comes up need not produce a batch (a ticker only refreshes the next book's
    last price), so with an hour-long poll a wait that checks only when a batch
    arrives can miss it for good; undelivered batches stay queued in the feed."""

    async def poll() -> None:
        while not all(feed.streaming(s) for s in SYMBOLS):
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), WAIT_S)
    except TimeoutError:
        raise AssertionError(f"not streaming within {WAIT_S:g}s; {stream_report(feed)}") from None


def stream_report(feed: StreamingExchangeFeed) -> str:
    states = ", ".join(
        f"{symbol} {stream}: {'up' if state.up else 'down'} failures={state.failures} "
        f"last={state.last_message}"
        for (symbol, stream), state in feed.stream_states.items()
    )
    return f"streams ({feed.stream_errors} failed watches): {states}"


def all_streaming(feed: StreamingExchangeFeed) -> Callable[[], bool]:
    return lambda: all(feed.streaming(s) for s in SYMBOLS)


def books(events: Sequence[MarketEvent], symbol: str = "BTC-PERP") -> list[BookSnapshot]:
    return [e for e in events if isinstance(e, BookSnapshot) and e.symbol == symbol]


def feed_polls(emulator: EmulatorServer, path: str, since: int = 0) -> int:
    """REST requests the feed made to `path` (ccxt.pro's own book snapshot for the
    depth stream asks for 1000 levels; the feed asks for 20)."""
    return sum(
        1
        for r in emulator.requests[since:]
        if r.path == path and (path != DEPTH or r.params.get("limit") == "20")
    )


def feed_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("perps_bot.feeds") and r.levelno >= logging.WARNING
    ]


async def test_streamed_books_equal_the_exchange_book_in_rest_event_shape(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    # retries capped at 250 ms: recovery is prompt however long the outage lasted
    feed, client = streaming_feed(emulator, make_client, poll_interval="100ms", backoff_max="250ms")
    await feed.start()
    batches = feed.batches()
    events: list[MarketEvent] = []
    try:
        await collect_until(batches, events, all_streaming(feed), feed)
        settled = len(books(events)) + 2  # two more poll cycles: none started before streaming
        await collect_until(batches, events, lambda: len(books(events)) >= settled)
        since = len(emulator.requests)
        before = len(events)

        emulator.set_price("BTCUSDT", 61_000.0)
        market = emulator.markets["BTCUSDT"]

        def moved() -> list[BookSnapshot]:
            return [b for b in books(events[before:]) if b.bids[0][0] == market.best_bid]

        await collect_until(
            batches,
            events,
            lambda: (
                any(b.last == b.mark == 61_000.0 for b in moved())
                and len(books(events[before:])) >= 3
            ),  # the stream's book and two poll cycles
        )
        polled = {path: feed_polls(emulator, path, since) for path in (DEPTH, TICKER, PREMIUM)}
        rest = await client.fetch_order_book(BTC, 20)  # the same moment, by REST
        assert feed.healthy
    finally:
        await feed.stop()

    first = moved()[0]
    assert first.bids == [tuple(level) for level in rest["bids"]]
    assert first.asks == [tuple(level) for level in rest["asks"]]
    assert len(first.bids) == len(first.asks) == 20
    assert first.bids[0][0] == pytest.approx(market.best_bid)
    assert first.asks[0][0] == pytest.approx(market.best_ask)
    marks = [e for e in events[before:] if isinstance(e, MarkPrice) and e.symbol == "BTC-PERP"]
    assert marks and marks[-1].mark == 61_000.0
    # after the move only the premium index (funding) was polled: books came by stream
    assert polled[DEPTH] == polled[TICKER] == 0
    assert polled[PREMIUM] >= 2
    # same event types and ordering contract as the polling feed
    assert {type(e) for e in events} <= {BookSnapshot, MarkPrice, FundingRate}
    assert {BookSnapshot, MarkPrice} <= {type(e) for e in events}
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert books(events, "ETH-PERP")
    assert all(b.bids[0][0] < b.asks[0][0] for b in books(events) + books(events, "ETH-PERP"))
    last_btc = feed.last_update("BTC-PERP")
    assert last_btc is not None and last_btc >= books(events)[-1].ts
    assert emulator.private_calls() == [] and emulator.errors == []


async def test_stream_outage_falls_back_to_rest_with_one_warning_then_streams_again(
    emulator: EmulatorServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="perps_bot.feeds")
    # no REST request may fail: 10 s for each, which a loaded machine's emulator can need
    feed, _ = streaming_feed(
        emulator, make_client, poll_interval="200ms", backoff_max="250ms", timeout_ms=10_000
    )
    batches = feed.batches()
    events: list[MarketEvent] = []
    market = emulator.markets["BTCUSDT"]
    try:
        await collect_until(batches, events, all_streaming(feed), feed)
        assert feed_warnings(caplog) == []
        polled = feed_polls(emulator, DEPTH)

        assert await emulator.ws.drop_connections(refuse=True) > 0
        await collect_until(
            batches,
            events,
            lambda: (
                not any(feed.streaming(s) for s in SYMBOLS)
                and feed_polls(emulator, DEPTH) >= polled + 2
            ),
        )
        # the market moves during the outage: REST must deliver it (streams are refused)
        during = len(events)
        emulator.set_price("BTCUSDT", 59_000.0)
        await collect_until(
            batches,
            events,
            lambda: any(b.bids[0][0] == market.best_bid for b in books(events[during:])),
        )
        assert not feed.streaming("BTC-PERP")
        assert feed.healthy  # REST covers the outage: data keeps flowing
        outage_warnings = feed_warnings(caplog)

        emulator.ws.accept_connections()
        await collect_until(batches, events, all_streaming(feed), feed)
        settled = len(books(events)) + 2
        await collect_until(batches, events, lambda: len(books(events)) >= settled)
        since = len(emulator.requests)
        after = len(events)
        emulator.set_price("BTCUSDT", 62_000.0)
        await collect_until(
            batches,
            events,
            lambda: (
                any(b.bids[0][0] == market.best_bid for b in books(events[after:]))
                and len(books(events[after:])) >= 3
            ),
        )
    finally:
        await feed.stop()

    assert len(outage_warnings) == 1
    (warning,) = outage_warnings
    assert "\n" not in warning and "stream down for" in warning
    assert "NetworkError" in warning and "polling REST" in warning
    assert feed_warnings(caplog) == outage_warnings  # no more warnings while recovering
    assert "all streams are back" in caplog.text
    assert feed.stream_errors >= 6  # every stream (2 symbols x 3) failed at least once
    assert feed.errors == 0  # no REST request failed
    # streaming again: REST polling for books and tickers stopped, funding still polled
    assert feed_polls(emulator, DEPTH, since) == 0
    assert feed_polls(emulator, TICKER, since) == 0
    assert feed_polls(emulator, PREMIUM, since) >= 2
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert emulator.errors == []


async def test_fallback_does_not_wait_for_the_poll_interval(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """With an hour-long poll interval, only a stream loss can trigger a REST poll, and
    only a live stream can deliver a price move."""
    feed, _ = streaming_feed(emulator, make_client, poll_interval="1h", backoff_max="250ms")
    batches = feed.batches()
    events: list[MarketEvent] = []
    try:
        await collect_until(batches, events, all_streaming(feed), feed)
        assert feed_polls(emulator, DEPTH) == 2  # the first cycle, before streams were up
        await emulator.ws.drop_connections(refuse=True)
        dropped = len(events)
        # polled at once for both symbols (well within WAIT_S, not after the hour), and
        # the polled books reach the batches; books the streams delivered just before
        # the drop may come first, so they alone do not end the wait
        await collect_until(
            batches,
            events,
            lambda: (
                feed_polls(emulator, DEPTH) >= 4
                and len(books(events[dropped:])) >= 1
                and len(books(events[dropped:], "ETH-PERP")) >= 1
            ),
            feed,
        )
        emulator.ws.accept_connections()
        await until_streaming(feed)
        moved = len(events)
        emulator.set_price("ETHUSDT", 3_100.0)
        eth = emulator.markets["ETHUSDT"]
        await collect_until(
            batches,
            events,
            lambda: any(b.bids[0][0] == eth.best_bid for b in books(events[moved:], "ETH-PERP")),
            feed,
        )
    finally:
        await feed.stop()


@pytest.mark.parametrize("outage", [False, True], ids=["streaming", "during-outage"])
async def test_stop_is_prompt_cancels_every_task_and_closes_the_client(
    emulator: EmulatorServer, make_client: ClientFactory, outage: bool
) -> None:
    feed, client = streaming_feed(
        emulator, make_client, poll_interval="1h", backoff_base="5s", backoff_max="5s"
    )
    batches = feed.batches()
    events: list[MarketEvent] = []
    await collect_until(batches, events, all_streaming(feed), feed)
    assert len(client.clients) > 0  # open websocket connections
    if outage:  # watchers now sleep a 5 s backoff or dial a refusing server
        await emulator.ws.drop_connections(refuse=True)
        await collect_until(batches, events, lambda: not feed.streaming("BTC-PERP"))
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.05)
    if not outage:
        assert not waiting.done()  # quiet market, hour-long poll: nothing to yield

    started = time.perf_counter()
    await asyncio.wait_for(feed.stop(), WAIT_S)
    elapsed = time.perf_counter() - started
    if not outage or not waiting.done():  # (a straggling REST batch may have come)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 1)

    assert elapsed < 1.5  # ccxt's close itself sleeps 0.25 s
    assert len(feed.tasks) == 2 * 4 + 1  # a watch loop per symbol and stream, one poller
    assert all(task.done() for task in feed.tasks)
    assert client.clients == {} and client.session is None  # websockets and http closed
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task is not current and ("ccxt" in repr(task) or "perps_bot" in repr(task))
    ]
    assert leftovers == []
    with pytest.raises(StopAsyncIteration):
        await anext(batches)


async def test_canary_dry_run_on_websocket_streams(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    result = await run_canary(
        emulator, run_dirs, dry_run=True, exchange_overrides={"use_websocket": True}
    )
    assert result.status == "completed"
    assert result.fills == 2  # entry and exit, on books the feed got by stream and REST
    assert emulator.private_calls() == []
    assert emulator.state.orders == {}
    stream_paths = {path.split("/")[1] for _, path, _ in emulator.calls if "/ws/" in path}
    assert stream_paths == {"public", "market"}  # depth; ticker and mark price
    assert "via ccxt.pro" in logged_text(run_dirs)
