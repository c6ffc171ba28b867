"""One truth on the exchange path (issue 10 findings, each failing on the old main): a dry
run rounds sizes exactly as live does, and a live run never invents a liquidation (the
exchange liquidates; the bot learns it by reconciliation)."""

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.instruments import InstrumentError, UnknownInstrument
from perps_bot.orchestrator.runner import RunResult, run_bot
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, until_long_opened

pytestmark = pytest.mark.integration

STRATEGY = "tests.live.canary_strategy:FlipOnce"


def _settings(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    *,
    dry_run: bool,
    duration: str = "3s",
    instruments: dict[str, Any] | None = None,
    name: str = STRATEGY,
    **strategy: Any,
) -> Any:
    exchange: dict[str, Any] = {
        "base_url": server.base_url,
        "poll_interval": "100ms",
        "reconcile_interval": "300ms",
    }
    if not dry_run:
        exchange |= {"api_key": API_KEY, "api_secret": API_SECRET}
    return load_settings(
        "canary",
        {
            "run": {"duration": duration, "dry_run": dry_run, "live_view": False, **run_dirs},
            "exchange": exchange,
            "strategy": {"name": name, **strategy},
            "instruments": instruments or {},
        },
    )


def _fills(result: RunResult) -> list[tuple[float, int]]:
    with sqlite3.connect(result.db_path) as conn:
        return conn.execute(
            "SELECT size, is_liquidation FROM fills WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()


async def test_dry_run_fills_only_sizes_live_would_accept(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The same signal filled 0.0166243 ETH in the dry run and 0.016 ETH live."""
    settings = _settings(
        emulator,
        run_dirs,
        dry_run=True,
        params={"hold": 3},
        order_size={"ETH-PERP": 0.0166243},
    )
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    sizes = [size for size, _ in _fills(result)]
    assert sizes == [0.016, 0.016], sizes


@pytest.mark.parametrize(
    ("mark", "size", "filled"),
    [(2_700.0, 0.007, []), (3_400.0, 0.006, [0.006, 0.006])],
    ids=["below-at-the-mark", "above-at-the-mark"],
)
async def test_a_market_orders_minimum_notional_is_counted_at_the_mark(
    in_repo: Path,
    run_dirs: dict[str, str],
    emulator: EmulatorServer,
    mark: float,
    size: float,
    filled: list[float],
) -> None:
    """Binance counts a market order's notional at the mark price (and so does the
    emulator): with ETH's last price at 3000 and its mark at 2700, a buy of 0.007 ETH is
    18.9 USDT, below the minimum 20, and live refuses it, while the dry run counted it at
    the last price (21) and filled it; at a mark of 3400 a buy of 0.006 ETH (20.4) is
    taken live, while the dry run refused it (18 at the last price)."""
    emulator.set_mark("ETHUSDT", mark)
    settings = _settings(
        emulator, run_dirs, dry_run=True, params={"hold": 3}, order_size={"ETH-PERP": size}
    )
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    assert [s for s, _ in _fills(result)] == filled
    assert result.report is not None
    denials = {} if filled else {"BELOW_MIN_NOTIONAL": 1}
    assert result.report.metrics["denials"] == denials


async def test_a_limit_price_outside_the_exchanges_band_is_refused_before_it_exists(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """Binance refuses a limit buy above mark * 1.05 (PERCENT_PRICE, -4016): with ETH's
    mark at 2500 and its last price 3000, a bid at 0.9 of the best bid (2700) is refused
    live, while the dry run took it and let it rest. It is now refused before it exists."""
    emulator.set_mark("ETHUSDT", 2_500.0)
    bid = "tests.live.canary_strategy:RestingBid"
    settings = _settings(
        emulator, run_dirs, dry_run=True, duration="2s", name=bid, params={"below": 0.9}
    )
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    assert result.report is not None
    assert result.report.metrics["denials"] == {"PRICE_OUTSIDE_BAND": 1}


async def _crash_once_long(emulator: EmulatorServer, task: "asyncio.Task[RunResult]") -> None:
    await until_long_opened(emulator, task)
    entry = emulator.price("ETHUSDT")
    emulator.set_price("ETHUSDT", entry * 0.3)  # far below a 2x long's liquidation price


async def test_live_run_leaves_liquidation_to_the_exchange(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """A crash past the bot's modelled liquidation price: the exchange (which here does
    not liquidate) still holds the position, so the bot must not book a liquidation."""
    settings = _settings(emulator, run_dirs, dry_run=False, params={"hold": 10_000})
    task = asyncio.create_task(run_bot(settings, progress=False))
    await _crash_once_long(emulator, task)
    result = await task
    assert result.status == "completed"
    fills = _fills(result)
    assert [liq for _, liq in fills] == [0], fills
    held = emulator.state.positions["ETHUSDT"].amount
    with sqlite3.connect(result.db_path) as conn:
        (position_after,) = conn.execute(
            "SELECT position_after FROM fills WHERE run_id=? ORDER BY seq DESC LIMIT 1",
            (result.run_id,),
        ).fetchone()
    assert position_after == pytest.approx(held)


async def test_live_run_books_the_exchanges_liquidation_found_by_reconciliation(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The exchange liquidates; the bot's periodic reconciliation finds the position gone,
    books the exchange's own liquidation fill (price and fee as the exchange made it),
    tells the strategy, and ends flat like the exchange."""
    emulator.liquidation = True
    settings = _settings(emulator, run_dirs, dry_run=False, params={"hold": 10_000})
    task = asyncio.create_task(run_bot(settings, progress=False))
    await _crash_once_long(emulator, task)
    result = await task
    assert result.status == "completed"
    assert emulator.state.positions["ETHUSDT"].amount == 0
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT side, size, price, is_liquidation, client_id, position_after FROM fills"
            " WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
    assert [(f[0], f[3]) for f in fills] == [("buy", 0), ("sell", 1)], fills
    _, size, price, _, client_id, position_after = fills[1]
    assert client_id.startswith("autoclose-") and position_after == 0.0
    assert size == fills[0][1]
    (trade,) = [t for t in emulator.state.trades if t.side == "SELL"]
    assert price == pytest.approx(trade.price)
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text()
    assert '"booked_fills":1' in journal.replace(" ", "")


async def test_an_exchange_run_refuses_a_symbol_key_the_exchange_does_not_list(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """On an exchange the symbols a run knows are the exchange's markets: a typo'd
    per-symbol key is refused before the run exists (it traded the default size), and a
    key for a listed symbol the run does not trade is fine."""
    typo = _settings(emulator, run_dirs, dry_run=True, order_size={"ETH-PREP": 0.02})
    with pytest.raises(UnknownInstrument, match=r"strategy\.order_size: unknown symbol 'ETH-PREP'"):
        await run_bot(typo, progress=False)
    assert not (Path(run_dirs["data_dir"]) / "perps_bot.canary.sqlite").exists()
    listed = _settings(emulator, run_dirs, dry_run=True, duration="1s",
                       order_size={"ETH-PERP": 0.02, "BTC-PERP": 0.001})  # fmt: skip
    assert (await run_bot(listed, progress=False)).status == "completed"


async def test_an_exchange_run_refuses_a_profile_instrument_the_exchange_contradicts(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """A profile whose ETH-PERP has a contract of 10 ETH: the exchange's market (one ETH)
    silently replaced it, and the run traded another contract than the profile said.
    It is refused in one line before the run exists; a value it agrees with is fine."""
    wrong = _settings(emulator, run_dirs, dry_run=True,
                      instruments={"ETH-PERP": {"contract_size": 10}})  # fmt: skip
    said = r"instruments\.ETH-PERP\.contract_size: the profile says 10, the exchange's"
    with pytest.raises(InstrumentError, match=said):
        await run_bot(wrong, progress=False)
    assert not (Path(run_dirs["data_dir"]) / "perps_bot.canary.sqlite").exists()
    agreed = {"ETH-PERP": {"contract_size": 1, "tick_size": 0.01, "min_notional": 20}}
    right = _settings(emulator, run_dirs, dry_run=True, duration="1s", instruments=agreed)
    assert (await run_bot(right, progress=False)).status == "completed"


async def test_a_dry_run_refuses_an_order_above_the_exchanges_maximum(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The emulator, as Binance, refuses a market order above MARKET_LOT_SIZE's maxQty
    (2000 ETH); the dry run filled it. It is now refused before it exists, as live."""
    big = 1e12
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "2s", "dry_run": True, "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms"},
            "account": {"initial_balance": 1e9},
            "risk": {"max_order_notional": big, "max_position_notional": big},
            "strategy": {"name": STRATEGY, "params": {"hold": 3},
                         "order_size": {"ETH-PERP": 2500.0}},
        },
    )  # fmt: skip
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    assert _fills(result) == []
    assert result.report is not None
    assert result.report.metrics["denials"] == {"ABOVE_MAX_QUANTITY": 1}


async def test_a_fill_the_venue_holds_when_the_run_ends_is_booked(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The entry fills at once on the exchange, and its reply tells so; the venue hands
    that fill out at its next poll, which a run ending first never made: the order was
    stored filled, its fill nowhere, and the ledger flat while the account held 0.01 ETH."""
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "2s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "30s",
                         "api_key": API_KEY, "api_secret": API_SECRET},
            "strategy": {"name": STRATEGY, "params": {"hold": 10_000}},
        },
    )  # fmt: skip
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    held = emulator.state.positions["ETHUSDT"].amount
    assert held > 0, "the entry did not fill on the exchange"
    assert [size for size, _ in _fills(result)] == [held]
