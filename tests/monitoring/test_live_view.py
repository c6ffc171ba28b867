"""The console live view: equity from the first event, unrealized PnL following every
price, positions with mark / unrealized / liquidation price at the instrument's
precision, a bar at 100% when the run completes, wall-clock progress on real-time
runs; and a real dev run drawn on a terminal console."""

import io
import json
from pathlib import Path

from rich.console import Console

from perps_bot.config import load_settings
from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import Ledger
from perps_bot.monitoring import LiveView
from perps_bot.orchestrator.runner import run_bot_sync

BTC, XRP = "BTC-PERP", "XRP-PERP"
CATALOG = builtin_instruments()


def _view() -> tuple[LiveView, Ledger, Console, list[float]]:
    console = Console(file=io.StringIO(), width=160, record=True)
    now = [0.0]
    view = LiveView(console, title="t", enabled=False, watched=True, clock=lambda: now[0])
    ledger = Ledger(AccountConfig(initial_balance=10_000.0, default_leverage=10.0), CATALOG)
    view.watch(ledger, {"main": ledger}, CATALOG.get, lambda: 1_704_067_200_000)
    return view, ledger, console, now


def _text(view: LiveView, console: Console) -> str:
    console.print(view.render())
    return console.export_text(clear=True)


def _fill(side: Side, size: float, price: float, symbol: str = BTC) -> Fill:
    return Fill(1_704_067_200_000, symbol, side, size, price, 0.0, Liquidity.TAKER, "c", "k")


def test_equity_shows_from_the_first_event_not_zero() -> None:
    view, _, console, _ = _view()
    assert view.state.equity == 10_000.0
    assert "10,000.00" in _text(view, console)


def test_unrealized_pnl_follows_every_price_without_a_fill() -> None:
    view, ledger, console, now = _view()
    ledger.apply_fill(_fill(Side.BUY, 0.5, 60_000.0))
    ledger.update_mark(BTC, 60_400.0, 1)
    now[0] += 1.0
    view.tick(0, None)
    assert view.state.unrealized == 200.0 and view.state.equity == 10_200.0
    ledger.update_mark(BTC, 59_900.0, 2)
    view.tick(0, None)  # within REFRESH_S of the last: not yet
    assert view.state.unrealized == 200.0
    now[0] += 1.0
    view.tick(0, None)
    assert view.state.unrealized == -50.0
    assert "-50.00" in _text(view, console)


def test_positions_show_mark_unrealized_and_liquidation_at_instrument_precision() -> None:
    view, ledger, console, now = _view()
    ledger.apply_fill(_fill(Side.BUY, 0.5, 60_000.0))
    ledger.update_mark(BTC, 60_400.0, 1)
    ledger.apply_fill(_fill(Side.SELL, 1_000.0, 0.5123, symbol=XRP))
    ledger.update_mark(XRP, 0.5100, 1)
    now[0] += 1.0
    view.tick(0, None)
    rows = {r.symbol: r for r in view.state.rows}
    assert rows[BTC].mark == 60_400.0 and rows[BTC].unrealized == 200.0
    assert rows[BTC].liquidation == ledger.liquidation_price(BTC)
    text = _text(view, console)
    btc = next(line for line in text.splitlines() if line.lstrip("│ ").startswith(BTC))
    xrp = next(line for line in text.splitlines() if line.lstrip("│ ").startswith(XRP))
    liq = ledger.liquidation_price(BTC)
    assert liq is not None
    # BTC: tick 0.1, step 0.001; XRP: tick 0.0001, step 0.1
    for cell in ("+0.500", "60,000.0", "60,400.0", "+200.00", f"{liq:,.1f}"):
        assert cell in btc, (cell, btc)
    for cell in ("-1,000.0", "0.5123", "0.5100", "+2.30"):
        assert cell in xrp, (cell, xrp)


def test_the_bar_is_full_when_the_run_completes() -> None:
    now = [0.0]
    view = LiveView(Console(file=io.StringIO(), force_terminal=True), title="t",
                    enabled=True, clock=lambda: now[0])  # fmt: skip
    with view:
        now[0] += 1.0
        view.tick(970, 1_000)
        assert view.percentage == 97.0
        view.complete()
    assert view.percentage == 100.0


def test_real_time_runs_show_wall_clock_progress() -> None:
    now = [100.0]
    view = LiveView(Console(file=io.StringIO(), force_terminal=True), title="t", enabled=True,
                    wall_duration_s=60.0, clock=lambda: now[0])  # fmt: skip
    with view:
        now[0] += 15.0
        view.tick(3, None)  # a real-time feed has no total: the wall clock gives one
        assert view.percentage == 25.0
        now[0] += 100.0
        view.tick(9, None)
        assert view.percentage == 100.0


def test_a_dev_run_draws_its_view_to_the_end(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    settings = load_settings("dev", {"run": {"dev_fast": True, "duration": "6h", "seed": 3,
                                             "log_dir": str(tmp_path / "logs"),
                                             "data_dir": str(tmp_path / "data")}})  # fmt: skip
    result = run_bot_sync(settings, console=console)
    text = out.getvalue()
    assert "100.0%" in text
    assert f"{result.final_equity:,.2f}" in text
    assert "liq. price" in text and "tick→order" in text


def test_the_risk_state_is_the_runs_with_several_portfolios(tmp_path: Path) -> None:
    """The view shows the run's trading state, the most restrictive of its portfolios
    (the dashboard's and the orchestrator's), not the last state change of any one: a
    halted portfolio beside one that goes on between ACTIVE and REDUCING is a halt."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    halting = {"max_drawdown": 0.00005, "reducing_drawdown": 0.00005}
    settings = load_settings("dev", {
        "run": {"dev_fast": True, "duration": "3d", "seed": 5, "log_dir": str(tmp_path / "logs"),
                "data_dir": str(tmp_path / "data")},
        "portfolios": [{"id": "a", "strategy": "sma_cross", "risk": halting},
                       {"id": "b", "strategy": "mean_reversion",
                        "risk": {"reducing_drawdown": 0.0003}}],
    })  # fmt: skip
    run_bot_sync(settings, console=console)
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    changes = [(e["portfolio"], e["state"]) for e in events if e["type"] == "state_change"]
    assert ("a", "HALTED") in changes and changes[-1] == ("b", "REDUCING"), changes
    last = out.getvalue().rsplit("tick→order", 1)[1].split("\n")[2]  # the last frame's row
    assert "HALTED" in last and "REDUCING" not in last, last
