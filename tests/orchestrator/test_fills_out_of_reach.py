"""Exchange fills that cannot all be read (older than the exchange keeps, or more than
one reconciliation books) stop trading with the reason, and the books take the
exchange's positions (SPEC 9: nothing lost silently).

Before, there was no such answer: a venue that read part of the gap booked that part
and adopted the rest, and trading went on as if nothing was lost."""

from pathlib import Path

from perps_bot.venues import FillsOutOfReach, VenuePosition, VenueSnapshot
from tests.harness.scripted import RecordingTargets
from tests.harness.settings import scripted_settings
from tests.harness.venue import ScriptedVenue
from tests.harness.wired import wired

SYMBOL = "BTC-PERP"


async def test_fills_out_of_reach_halt_trading_and_adopt_the_exchange(tmp_path: Path) -> None:
    calls: list[str] = []
    RecordingTargets.log = calls
    venue = ScriptedVenue(calls)
    held = VenueSnapshot(1_000.0, [VenuePosition(SYMBOL, 1.0, 100.0)])
    venue.snapshots = [held, VenueSnapshot(900.0, [])]
    venue.foreign = FillsOutOfReach("BTC-PERP: the exchange fills since ... go back too far")
    cfg = scripted_settings(tmp_path, "RecordingTargets", "", SYMBOL)
    async with wired(cfg, venue) as run_:
        engine, ledger = run_.orchestrator, run_.ledger
        await engine.start(reconcile=True)
        assert await engine.reconcile("periodic") == [SYMBOL]
        assert ledger.position_size(SYMBOL) == 0.0  # the exchange's, adopted
        (portfolio,) = engine.portfolios
        assert str(portfolio.risk.state) == "HALTED"
        assert "go back too far" in portfolio.risk.state_detail
