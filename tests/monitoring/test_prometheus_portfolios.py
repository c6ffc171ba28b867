"""`/metrics` of a run with several portfolios (SPEC 10, 11): each portfolio's series
agree with its own report, and a portfolio with no open position still says so."""

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from perps_bot.config import load_settings
from perps_bot.monitoring.prometheus import exposition
from perps_bot.orchestrator.runner import run_bot_sync

BTC, ETH = "BTC-PERP", "ETH-PERP"


def test_each_portfolio_exports_its_own_books_and_a_flat_position_as_zero(
    tmp_path: Path,
) -> None:
    """A portfolio with no open position exported no `perps_bot_position_size` and no
    `perps_bot_mark_price` for its symbol: the dashboard's position and price panels
    said 'no data' whenever it was flat (and a rule on `position_size == 0` never
    matched). Each symbol a portfolio trades is exported: size 0 when flat, the last
    mark its books used."""
    run = {"dev_fast": True, "duration": "30h", "seed": 5, "symbols": [BTC, ETH],
           "log_dir": str(tmp_path / "logs"), "data_dir": str(tmp_path / "data"),
           "live_view": False}  # fmt: skip
    portfolios = [{"id": "a", "strategy": "sma_cross", "symbols": [BTC]},
                  {"id": "b", "strategy": "mean_reversion", "symbols": [ETH]}]  # fmt: skip
    result = run_bot_sync(load_settings("dev", {"run": run, "portfolios": portfolios}),
                          progress=False)  # fmt: skip
    samples: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(exposition()[0].decode()):
        for s in family.samples:
            if s.labels.get("run") == result.run_id and "le" not in s.labels:
                key = (s.name, s.labels["portfolio"], s.labels.get("symbol", ""))
                samples[key] = samples.get(key, 0.0) + s.value
    assert result.report is not None
    reports = {r.run.portfolio: r for r in result.report.portfolios}
    for pid, symbol in (("a", BTC), ("b", ETH)):
        report = reports[pid]
        assert samples[("perps_bot_trades_total", pid, symbol)] == len(report.trades) > 0
        assert samples[("perps_bot_equity", pid, "")] == report.final_equity
        held = sum(p.size if p.side == "long" else -p.size
                   for p in report.open_positions if p.symbol == symbol)  # fmt: skip
        assert samples[("perps_bot_position_size", pid, symbol)] == held
        assert samples[("perps_bot_mark_price", pid, symbol)] > 0
    assert ("perps_bot_position_size", "a", ETH) not in samples  # only its own symbols
    flat = [pid for pid, r in reports.items() if not r.open_positions]
    assert flat, "the run ends with a flat portfolio: the case under test"
