"""Exchange-fed runs start warmed up: the last closed candles of the strategy's timeframe
are fetched from the exchange at start and shown to the strategy, which trades on none of
them. On main no candle was fetched: canary's sma_cross 10/30 on 1m bars was blind for
its first 30 bars (half an hour) after every start, while a backtest of the same time
was not.

Against the loopback emulator on a fake clock that the emulator and the bot's exchange
feed share (a poll moves it on by the poll interval): minutes of 1m bars pass in about a
second of wall time."""

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from perps_bot.exchange.runtime import wall_clock_ms
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer, Fault
from tests.durable.helpers import checkpointer_of
from tests.live.live_helpers import (
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    run_until,
)
from tests.live.warmup_helpers import (
    BOUNDARY,
    MINUTE,
    START,
    canary,
    closes_before,
    fake_feed,
    fill_rows,
    run_on,
    turning_price,
)

pytestmark = pytest.mark.integration

KLINES = "/fapi/v1/klines"


def klines_asked(server: EmulatorServer) -> int:
    return sum(1 for _, path, _ in server.calls if path == KLINES)


async def test_a_dry_run_acts_on_its_first_live_bar_and_its_replay_warms_up_the_same(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory, tmp_path: Path
) -> None:
    """The klines leave the averages on one side; the first live bar's close turns them:
    the run enters at that bar (on main: nothing for 30 bars). The capture holds the 30
    candles, and the replay of the capture, warmed up from them, makes the same trade."""
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        closes = await closes_before(server, make_client, START, 30)
        price, regime = turning_price(closes)
        server.set_price("ETHUSDT", price)  # where the market is when the bot starts
        settings = canary(server, run_dirs)

        def traded_or_late(run: Run) -> bool:
            return run.orchestrator.primary.rec.fills > 0 or clock.now > START + 3 * MINUTE

        result = await run_on(settings, fake_feed(server, make_client, clock), traded_or_late)
    assert result.status == "completed", result.detail
    fills = fill_rows(result.db_path, result.run_id)
    wanted = "sma_cross down 10/30" if regime > 0 else "sma_cross up 10/30"
    assert fills, "no trade in 3 minutes: the strategy was not warmed up"
    ts, side, reason = fills[0]
    assert reason == wanted
    assert BOUNDARY <= ts < BOUNDARY + 5_000, "not at the first live bar"
    assert side == ("sell" if regime > 0 else "buy")

    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    feed = ReplayFeed(folder)
    assert feed.meta["counts"]["warmup"] == 30
    warm = await feed.warmup_candles({"ETH-PERP": 30}, MINUTE)
    assert [c.close for c in warm["ETH-PERP"]] == closes
    db = str(tmp_path / "replays.sqlite")
    _, replayed = await asyncio.to_thread(run_replay, folder, FillChoice(), db=db)
    assert replayed.status == "completed"
    assert fill_rows(Path(db), replayed.run_id)[:1] == fills[:1]


async def test_klines_the_exchange_keeps_failing_are_retried_then_the_run_starts_cold(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """exchange.max_retries (here 2) retries, then one warning line, and the run goes on
    (on main: the klines were never asked for)."""
    emulator.inject(Fault("status", method="GET", path=KLINES, count=100))
    settings = canary(emulator, run_dirs, poll="100ms")
    settings = settings.model_copy(
        update={"exchange": settings.exchange.model_copy(update={"max_retries": 2})}
    )
    result = await run_until(settings, lambda run: run.orchestrator.last_ts is not None)
    assert result.status == "completed", result.detail
    assert klines_asked(emulator) == 3
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    said = [line for line in log.splitlines() if "warm-up" in line]
    assert len(said) == 1, said
    assert "cannot fetch the 1m candles of ETH-PERP from binanceusdm" in said[0]
    assert "ExchangeNotAvailable" in said[0] and "WARNING" in said[0]
    assert "Traceback" not in log


async def test_klines_that_fail_twice_are_retried_and_the_run_starts_warm(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    emulator.inject(Fault("status", method="GET", path=KLINES, count=2))
    settings = canary(emulator, run_dirs, poll="100ms")
    seen: list[tuple[float, ...]] = []

    def started(run: Run) -> bool:
        if run.orchestrator.last_ts is None:
            return False
        seen.append(tuple(run.orchestrator.strategy.plot_values("ETH-PERP") or ()))
        return True

    result = await run_until(settings, started)
    assert result.status == "completed", result.detail
    assert klines_asked(emulator) == 3
    fast, slow = seen[0]
    assert fast > 0 and slow > 0, "the averages are not ready at the first event"
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    assert "warm-up: sma_cross learnt from 30 closed bars of ETH-PERP" in log


async def test_a_timeframe_the_exchange_has_no_candles_of_is_asked_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """Binance futures have no 1s klines (-1120): refused, not retried, one line."""
    settings = canary(emulator, run_dirs, poll="100ms")
    strategy = settings.strategy.model_copy(update={"timeframe": "1s"})
    settings = settings.model_copy(update={"strategy": strategy})
    result = await run_until(settings, lambda run: run.orchestrator.last_ts is not None)
    assert result.status == "completed", result.detail
    assert klines_asked(emulator) == 1
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    assert "warm-up: cannot fetch the 1s candles of ETH-PERP" in log
    assert "BadRequest" in log and "Traceback" not in log


async def test_a_resumed_dry_run_warms_up_on_the_candles_of_while_it_was_down(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory
) -> None:
    """Interrupted after its first live bar, resumed 40 minutes later: its averages are
    those of the 30 candles that closed while it was down, not the bar it was building
    when it stopped (on main: it went on with the averages of before, not even full)."""
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        settings = canary(server, run_dirs, poll="100ms")

        def checkpointed_after_a_bar(run: Run) -> bool:
            checkpointer = checkpointer_of(run)
            if checkpointer.saved:
                run.orchestrator.request_stop("killed", interrupt=True)
                return True
            if clock.now > BOUNDARY + 1_000:  # the first live bar closed: the bar of
                checkpointer.soon()  # BOUNDARY is being built at the checkpoint
            return False

        feed = fake_feed(server, make_client, clock, "100ms")
        first = await run_on(settings, feed, checkpointed_after_a_bar)
        assert first.status == "interrupted"
        price = server.price("ETHUSDT")
        for minute in range(40):  # the market moves on while the bot is down
            clock.now = BOUNDARY + minute * MINUTE + 30_000
            server.set_price("ETHUSDT", price * (1 + 0.002 * minute))
        clock.now = BOUNDARY + 40 * MINUTE + 5_000
        closes = await closes_before(server, make_client, clock.now, 30)
        seen: list[tuple[float, ...]] = []

        def started(run: Run) -> bool:
            if run.orchestrator.last_ts is None or run.orchestrator.last_ts < clock.now - 5_000:
                return False
            seen.append(tuple(run.orchestrator.strategy.plot_values("ETH-PERP") or ()))
            return True

        second = await run_on(settings, fake_feed(server, make_client, clock, "100ms"), started,
                              resume="latest")  # fmt: skip
    assert second.status == "completed", second.detail
    assert second.run_id == first.run_id
    fast, slow = seen[0]
    assert slow == pytest.approx(sum(closes) / 30)
    assert fast == pytest.approx(sum(closes[-10:]) / 10)


async def test_a_restarted_live_bot_flips_a_position_against_the_warmed_regime_at_once(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory
) -> None:
    """A live restart is a new run: it adopts the exchange's position, warms up, and its
    first live bar (the regime unchanged) flips the adopted position the averages turned
    against while it was down (on main: blind for 30 bars, it held it)."""
    clock = FakeClock(START)
    # ETH at 2300: the flip (0.02 ETH, about 46 USDT) is within the canary's 50 USDT
    cheaper = {"ETHUSDT": 2_300.0}
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock, prices=cheaper) as server:
        closes = await closes_before(server, make_client, START, 30)
        root, regime = turning_price(closes)
        server.set_price("ETHUSDT", root * (1 + 0.05 * regime))  # keeps the regime
        server.engine.set_margin_type("ETHUSDT", "ISOLATED")  # as the earlier run left it
        server.engine.set_leverage("ETHUSDT", 2)
        server.engine.place_order({"symbol": "ETHUSDT", "side": "SELL" if regime > 0 else "BUY",
                                   "type": "MARKET", "quantity": "0.01"})  # fmt: skip
        settings = canary(server, run_dirs, live=True)

        def flipped_or_late(run: Run) -> bool:
            held = server.state.positions["ETHUSDT"].amount
            return held * regime > 0 or clock.now > START + 3 * MINUTE

        result = await run_on(settings, fake_feed(server, make_client, clock), flipped_or_late)
        held = server.state.positions["ETHUSDT"].amount
    assert result.status == "completed", result.detail
    assert held == pytest.approx(0.01 * regime), "the adopted position was never flipped"
    word = "up" if regime > 0 else "down"
    with sqlite3.connect(result.db_path) as conn:  # a live fill is stamped on the wall clock
        orders = conn.execute("SELECT ts, reason FROM orders WHERE run_id=?",
                              (result.run_id,)).fetchall()  # fmt: skip
    ((ts, reason),) = orders
    assert reason == f"sma_cross {word} 10/30 (against the position held at start)"
    assert BOUNDARY <= ts < BOUNDARY + 5_000, "not at the first live bar"


async def test_an_unusable_klines_answer_is_asked_again_and_only_closed_candles_count(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    emulator.inject(Fault("malformed", method="GET", path=KLINES))  # 200, not JSON
    cfg = exchange_cfg(emulator)
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, ["ETH-PERP"], sleep=FakeSleep())
    got = await feed.warmup_candles({"ETH-PERP": 5}, MINUTE)
    now = wall_clock_ms()
    assert klines_asked(emulator) == 2
    candles = got["ETH-PERP"]
    assert len(candles) == 5
    assert [c.open_time + MINUTE for c in candles] == [c.ts for c in candles]
    assert [b.open_time - a.open_time for a, b in itertools.pairwise(candles)] == [MINUTE] * 4
    assert now - MINUTE < candles[-1].ts <= now  # the open one is left out
