"""Criteria, CSV/JSON/HTML outputs (exact columns, byte-identical reruns), promotion API,
and a cross-check against freqtrade's backtest fixture."""

import base64
import csv
import gzip
import json
from pathlib import Path

import pytest

from perps_bot.metrics import (
    CRITERIA_DEFINITIONS,
    METRIC_DEFINITIONS,
    METRIC_NAMES,
    TRADE_COLUMNS,
    PromotionRefused,
    Report,
    ReportError,
    build_report,
    export_csv,
    has_promotion,
    headline,
    promote,
    render_html,
)
from perps_bot.storage import RunStore
from tests.metrics.metrics_builders import DAY, EASY_PROMOTION, HOUR, T0, RunBuilder, passing_run

FREQTRADE = (
    Path(__file__).resolve().parents[3]
    / "shared/data/freqtrade-testdata/backtest_results/backtest-result.json"
)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "o.sqlite")


def _criteria(report: Report) -> dict[str, tuple[float | None, float, bool]]:
    return {c.name: (c.value, c.threshold, c.passed) for c in report.criteria}


def test_every_metric_and_criterion_is_defined() -> None:
    assert list(METRIC_DEFINITIONS) == list(METRIC_NAMES)
    assert set(CRITERIA_DEFINITIONS) == {
        "trades", "days", "win_rate", "sharpe", "max_drawdown", "liquidations", "error_lines"
    }  # fmt: skip


def test_passing_run_passes_every_criterion(store: RunStore) -> None:
    report = build_report(store, passing_run(store))
    crit = _criteria(report)
    assert crit["trades"] == (3.0, 2, True)
    assert crit["days"] == (3.0, 1.0, True)
    assert crit["win_rate"][0] == pytest.approx(2 / 3) and crit["win_rate"][2]
    assert crit["max_drawdown"][0] == pytest.approx(50 / 10_100)
    assert report.passed


def test_each_criterion_fails_at_its_threshold(store: RunStore) -> None:
    b = RunBuilder(
        store,
        promotion={
            "min_trades": 3,
            "min_days": 2.0,
            "min_win_rate": 0.5,  # strictly greater: exactly 0.5 fails
            "min_sharpe": 1.0,
            "max_drawdown": 0.1,  # strictly less: exactly 0.1 fails
            "max_liquidations": 0,
            "max_error_lines": 1,
        },
        end_ts=T0 + 2 * DAY - 1,
        error_lines=2,
    )
    b.fill(T0, "buy", 1.0, 100.0)
    b.fill(T0 + HOUR, "sell", 1.0, 110.0)
    b.fill(T0 + 2 * HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 3 * HOUR, "sell", 1.0, 90.0, reason="liquidation", liquidation=True)
    b.curve([(T0, 100.0), (T0 + HOUR, 90.0), (T0 + DAY, 100.0)])
    report = build_report(store, b.done())
    crit = _criteria(report)
    assert crit["trades"] == (2.0, 3, False)
    assert crit["days"][2] is False and crit["days"][1] == 2.0
    assert crit["win_rate"] == (0.5, 0.5, False)
    assert crit["sharpe"] == (None, 1.0, False)  # null fails
    assert crit["max_drawdown"][0] == pytest.approx(0.1) and not crit["max_drawdown"][2]
    assert crit["liquidations"] == (1.0, 0, False)
    assert crit["error_lines"] == (2.0, 1, False)
    assert report.failed == report.criteria
    data = json.loads(report.to_json())
    assert data["validation"]["passed"] is False
    assert data["validation"]["passed_count"] == 0
    assert data["validation"]["criteria"][0] == {
        "name": "trades", "op": ">=", "threshold": 3, "value": 2, "passed": False
    }  # fmt: skip


def test_default_criteria_when_config_has_no_promotion_section(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)  # config_json is {}
    report = build_report(store, b.done())
    assert report.promotion.min_trades == 100 and report.promotion.sharpe_period == "1d"


def test_bad_stored_config_is_a_one_line_error(store: RunStore) -> None:
    RunBuilder(store, "bad", promotion={"min_trades": -1}, end_ts=T0 + DAY)
    with pytest.raises(ReportError, match=r"promotion\.min_trades") as info:
        build_report(store, "bad")
    assert "\n" not in str(info.value)


def test_json_layout_names_and_no_run_id(store: RunStore) -> None:
    run_id = passing_run(store)
    text = build_report(store, run_id).to_json()
    data = json.loads(text)
    assert set(data) == {
        "run", "metrics", "validation", "warnings", "monthly_returns", "portfolios", "account",
    }  # fmt: skip
    assert list(data["metrics"]) == sorted(METRIC_NAMES)
    # one portfolio: its metrics are the run's, and the account's
    [portfolio] = data["portfolios"]
    assert data["account"]["metrics"] == data["metrics"]
    assert data["account"]["portfolios"] == ["main"]
    assert portfolio["id"] == "main" and portfolio["strategy"] == "sma_cross"
    assert portfolio["metrics"] == data["metrics"]
    assert portfolio["validation"] == data["validation"]
    assert set(portfolio["breakdowns"]) == {"symbol", "side", "exit_reason"}
    assert data["metrics"]["denials"] == {"MAX_ORDER_NOTIONAL": 2, "STALE_MARKET_DATA": 1}
    assert run_id not in text and "created_at" not in text
    assert data["run"]["start"] == "2024-01-01T00:00:00.000Z"
    assert data["run"]["strategy_params"] == {"fast": 10, "slow": 30}


def test_csv_columns_exact_and_values(store: RunStore, tmp_path: Path) -> None:
    run_id = passing_run(store)
    report = build_report(store, run_id)
    export_csv(store, run_id, report.trades, tmp_path / "out")
    with (tmp_path / "out" / "trades.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "trade_id", "symbol", "side", "open_time", "close_time", "size", "entry_price",
        "exit_price", "gross_pnl", "fees", "funding", "net_pnl", "exit_reason", "r_multiple",
        "mae", "mfe",
    ]  # fmt: skip
    assert rows[1] == [
        "1", "BTC-PERP", "long", "2024-01-01T01:00:00.000Z", "2024-01-01T05:00:00.000Z",
        "1", "100", "110", "10", "0.2", "0", "9.8", "take_profit", "1.96", "", "",
    ]  # fmt: skip
    assert [r[12] for r in rows[1:]] == ["take_profit", "stop", "end_of_run"]
    assert sum(float(r[11]) for r in rows[1:]) == pytest.approx(report.metrics["total_pnl"])
    equity = (tmp_path / "out" / "equity.csv").read_text().splitlines()
    assert equity[0] == "timestamp,equity,cash,unrealized_pnl"
    assert equity[1] == "2024-01-01T00:00:00.000Z,10000,10000,0"
    assert equity[3] == "2024-01-02T12:00:00.000Z,10050,10050,0"
    assert len(equity) == 6


def _same_content_run(store: RunStore, run_id: str, created_at: int) -> str:
    return passing_run(store, run_id, created_at=created_at)


def test_same_run_content_gives_byte_identical_outputs(tmp_path: Path) -> None:
    outputs = []
    for name, created in (("a", 1), ("b", 999_999)):
        store = RunStore(tmp_path / f"{name}.sqlite")
        run_id = _same_content_run(store, f"run-{name}", created)
        report = build_report(store, run_id)
        export_csv(store, run_id, report.trades, tmp_path / name)
        outputs.append(
            (
                report.to_json(),
                render_html(report),
                (tmp_path / name / "trades.csv").read_bytes(),
                (tmp_path / name / "equity.csv").read_bytes(),
            )
        )
        store.close()
    assert outputs[0] == outputs[1]


def _script(html: str, element_id: str) -> str:
    start = html.index(">", html.index(f'id="{element_id}"')) + 1
    return html[start : html.index("</script>", start)]


def test_html_is_self_contained_with_charts_and_trades(store: RunStore) -> None:
    html = render_html(build_report(store, passing_run(store)))
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert " src=" not in html and "<link" not in html
    assert html.count("<script") == 3  # data, compressed plotly.js, the page's own code
    plotly = gzip.decompress(base64.b64decode(_script(html, "plotly-gz")))
    assert plotly.startswith(b"/**\n* plotly.js v")
    data = json.loads(_script(html, "report-data"))
    [portfolio] = data["portfolios"]
    trades = portfolio["trades"]
    assert trades["cols"]["id"] == [1, 2, 3]
    assert trades["reasons"] == ["end_of_run", "stop", "take_profit"]
    assert len(data["equity"]["ts"]) == 5
    assert 'id="equity-chart"' in html and 'id="trades-main"' in html
    for name in METRIC_NAMES:
        assert f"<td>{name}</td>" in html
    assert "PASSED: 7/7 criteria passed" in html


def test_html_without_equity_rows_or_trades(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)
    html = render_html(build_report(store, b.done()))
    assert "No equity rows." in html and "No closed trades." in html


def test_headline(store: RunStore) -> None:
    text = headline(store, passing_run(store))
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("trades 3  win rate 66.67% (!)  total PnL 37.20")
    # the orders the strategy wanted and never sent, by reason (the run's denials)
    assert lines.pop(1) == "denied 3 orders: MAX_ORDER_NOTIONAL 2, STALE_MARKET_DATA 1"
    assert "sharpe" in lines[1] and "(!)" in lines[1] and "max drawdown 0.50%" in lines[1]
    assert lines[2] == "validation 7/7 criteria passed (failed: none)"
    assert lines[3] == (
        "(!) too little data: win_rate from 3 trades (fewer than 30);"
        " sharpe from 3 returns of 1d (fewer than 30)"
    )


def test_promote_records_and_has_promotion(store: RunStore, tmp_path: Path) -> None:
    run_id = passing_run(store)
    other = RunStore(tmp_path / "target.sqlite")
    assert not has_promotion(store, "fp-sma-1", "canary")
    outcome = promote(store, "canary", run_id, also_record_in=[other])
    assert outcome.record.stage == "canary" and outcome.record.run_id == run_id
    assert outcome.recorded_in == 2
    assert has_promotion(store, "fp-sma-1", "canary")
    assert has_promotion(other, "fp-sma-1", "canary")
    assert not has_promotion(store, "fp-sma-1", "prod")
    assert not has_promotion(store, "other-fp", "canary")
    criteria = json.loads(outcome.record.criteria)
    assert [c["name"] for c in criteria] == list(CRITERIA_DEFINITIONS)
    assert all(c["passed"] for c in criteria)


def test_promote_refuses_wrong_kind_and_failed_criteria(store: RunStore) -> None:
    passing_run(store, "live-dev", kind="live", profile="dev")
    with pytest.raises(PromotionRefused, match="needs a dev, backtest or walkforward run"):
        promote(store, "canary", "live-dev")
    with pytest.raises(PromotionRefused, match="live run of the canary profile"):
        promote(store, "prod", "live-dev")
    passing_run(store, "dry", kind="dry_run", profile="canary")
    with pytest.raises(PromotionRefused, match="dry_run run of profile canary"):
        promote(store, "prod", "dry")
    strict = dict(EASY_PROMOTION, min_trades=10, min_sharpe=1000.0)
    passing_run(store, "weak", promotion=strict)
    with pytest.raises(PromotionRefused) as info:
        promote(store, "canary", "weak")
    assert [c.name for c in info.value.failed] == ["trades", "sharpe"]
    assert "trades = 3 (needs >= 10)" in str(info.value) and "sharpe" in str(info.value)
    assert not has_promotion(store, "fp-sma-1", "canary")
    RunBuilder(store, "running", status="running", promotion=EASY_PROMOTION)
    with pytest.raises(PromotionRefused, match="is running"):
        promote(store, "canary", "running")


def test_freqtrade_fixture_profit_factor_and_expectancy(store: RunStore) -> None:
    if not FREQTRADE.exists():
        pytest.skip("freqtrade fixture not available")
    trades = json.loads(FREQTRADE.read_text())["strategy"]["StrategyTestV3"]["trades"]
    # The fixture's profit_abs is not reproducible from its rates and fees (freqtrade's
    # stake/fee model), so each trade is replayed fee-free with the exit price that
    # realizes exactly its profit_abs: what is compared is the aggregation.
    events = []
    for i, t in enumerate(trades):
        exit_price = t["open_rate"] + t["profit_abs"] / t["amount"]
        symbol = f"{t['pair']}#{i}"  # trades on one pair may overlap in time; keep them apart
        events.append((int(t["open_timestamp"]), 0, i, symbol, "buy", t["open_rate"], 0.0))
        events.append((int(t["close_timestamp"]), 1, i, symbol, "sell", exit_price, 0.0))
    b = RunBuilder(store, initial_balance=0.01, end_ts=T0)
    for ts, _, i, symbol, side, price, fee in sorted(events):
        b.fill(ts, side, trades[i]["amount"], price, fee=fee, symbol=symbol)
    m = build_report(store, b.done()).metrics
    assert m["trades"] == 179
    assert m["profit_factor"] == pytest.approx(2.4223288739520954, rel=1e-7)
    assert m["expectancy"] == pytest.approx(5.820687070932315e-06, rel=1e-7)


def test_csv_float_and_time_format(store: RunStore, tmp_path: Path) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)
    b.equity(T0 + 123, 1 / 3, cash=2 / 3, upnl=-0.0)
    b.equity(T0 + DAY + 7, 12345678.123456789, cash=-1e-20, upnl=0.0)
    export_csv(store, b.done(), [], tmp_path)
    assert (tmp_path / "equity.csv").read_text().splitlines()[1:] == [
        "2024-01-01T00:00:00.123Z,0.333333333333,0.666666666667,0",
        "2024-01-02T00:00:00.007Z,12345678.1235,-1e-20,0",
    ]
    assert (tmp_path / "trades.csv").read_text() == ",".join(TRADE_COLUMNS) + "\n"


def test_headline_sees_rows_the_writer_still_buffers(store: RunStore) -> None:
    b = RunBuilder(store, promotion=EASY_PROMOTION, end_ts=T0 + DAY)
    b.fill(T0, "buy", 1.0, 100.0)
    b.fill(T0 + HOUR, "sell", 1.0, 105.0)  # not flushed: fewer rows than a batch
    assert headline(store, b.run_id).startswith("trades 1  win rate 100.00% (!)  total PnL 5.00")


def test_readme_report_section_is_the_generated_one() -> None:
    from perps_bot.metrics import readme_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert readme_markdown() in readme
