"""A gap between the warm-up and the first live bar is said. The warm-up ends at the bar
the bot's clock is in (feeds.exchange_warmup); when the feed's first prices come a bar or
more later (on_start's orders, an exchange failing the first polls), the bars in between
are in neither the warm-up nor the live bars, and the strategies' series jumps over them.
On main that passed in silence."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from perps_bot.domain import MarketEvent, iso_utc
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, FakeClock, FakeSleep, exchange_cfg
from tests.live.warmup_helpers import BOUNDARY, MINUTE, START, canary, run_on

pytestmark = pytest.mark.integration


class LateFeed(ExchangeFeed):
    """The exchange feed whose first poll comes `late_ms` after the warm-up."""

    late_ms = 0

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        clock = self._clock
        assert isinstance(clock, FakeClock)
        clock.now += self.late_ms
        async for batch in super().batches():
            yield batch


async def run_late(late_ms: int, run_dirs: dict[str, str], make_client: ClientFactory) -> list[str]:
    """The warm-up lines of a dry run whose first prices come `late_ms` after its start."""
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        cfg = exchange_cfg(server, poll_interval="1s", public_trades=False)
        feed = LateFeed(make_client(cfg, private=False), cfg, ["ETH-PERP"], clock=clock,
                        sleep=FakeSleep(clock))  # fmt: skip
        feed.late_ms = late_ms
        first_bar_closed = START + late_ms + 2 * MINUTE

        def past_first_bar(run: Run) -> bool:
            return clock.now > first_bar_closed

        result = await run_on(canary(server, run_dirs), feed, past_first_bar)
    assert result.status == "completed", result.detail
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    return [line for line in log.splitlines() if "warm-up" in line]


async def test_live_bars_that_start_bars_after_the_warm_up_are_said_to(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory
) -> None:
    said = await run_late(70_000, run_dirs, make_client)  # first prices 2 bars later
    gap = [line for line in said if "gap" in line]
    assert len(gap) == 1, said
    assert "WARNING" in gap[0] and "ETH-PERP" in gap[0] and "2 bars" in gap[0]
    # the warm-up's last bar closed at BOUNDARY - 1m; the first live one opens at BOUNDARY + 1m
    assert iso_utc(BOUNDARY - MINUTE) in gap[0] and iso_utc(BOUNDARY + MINUTE) in gap[0]


async def test_live_bars_that_follow_the_warm_up_say_nothing(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory
) -> None:
    said = await run_late(0, run_dirs, make_client)
    assert [line for line in said if "gap" in line] == []
    assert any("learnt from 30 closed bars" in line for line in said)
