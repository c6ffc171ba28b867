"""The `plan` strategy through `perps-bot backtest`: market and limit entries, stop and
take-profit exits simulated on the candle path by the one matching engine, a `flat`
row, and a bad row reported and skipped."""

import csv
import json
from pathlib import Path

import pytest

from tests.plans.fake_llm import fake_llm
from tests.plans.helpers import backtest, exported, hour, run_main, write_candles, write_plan
from tests.plans.llm_runs import llm_backtest, llm_profile, llm_workdir

__all__ = ["llm_workdir"]  # the fixture, used by name

# a candle's event time is its close: a row valid from hour(n) acts at the close of bar
# n-1 and its market order fills at bar n's open
BARS = [
    (100, 101, 99, 100),  # 0: long entry (market) at the next bar's open
    (100, 101, 99, 100),  # 1
    (100, 112, 99, 111),  # 2: high 112 -> take-profit at 110
    (111, 111, 104, 104),  # 3: short limit at 106 rests ...
    (104, 107, 103, 106),  # 4: ... and fills when the high reaches 106
    (106, 106, 101, 102),  # 5
    (102, 110, 101, 109),  # 6: high 110 -> the short's stop at 108
    (109, 109, 108, 109),  # 7: long again, no protection
    (109, 110, 108, 109),  # 8: flat row -> exit "plan"
    (109, 110, 108, 109),  # 9: long, open at the end
    (109, 110, 108, 109),  # 10
]


@pytest.fixture
def workdir(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_plan_entries_and_exits_carry_their_exit_reasons(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candles = write_candles(workdir / "btc.csv", [tuple(map(float, b)) for b in BARS])  # type: ignore[misc]
    plan = write_plan(
        workdir / "trade_plan.csv",
        [
            {"id": "a", "side": "long", "size": 2, "stop": 95, "take_profit": 110,
             "valid_from": hour(1)},
            {"id": "b", "side": "short", "size": 2, "entry": "limit", "limit_price": 106,
             "stop": 108, "take_profit": 98, "valid_from": hour(4), "valid_until": hour(6)},
            {"id": "c", "side": "long", "notional": 218, "valid_from": hour(8)},
            {"id": "d", "side": "flat", "valid_from": hour(9)},
            {"id": "e", "side": "long", "size": "lots", "valid_from": hour(9)},
            {"id": "f", "side": "long", "size": 1, "valid_from": hour(10)},
        ],
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    log = (workdir / "logs" / "perps_bot.backtest.log").read_text()
    bad = [line for line in log.splitlines() if "row 5" in line]
    assert len(bad) == 1 and "trade_plan.csv row 5, column size: " in bad[0]

    trades = exported(workdir, capsys, "trades.csv")
    summary = [(t["side"], float(t["size"]), t["exit_reason"]) for t in trades]
    assert summary == [
        ("long", 2.0, "take_profit"),
        ("short", 2.0, "stop"),
        ("long", 2.0, "plan"),
    ]  # row f's long is still open at the end: not a trade
    # SPEC 16's `end_of_run`: a backtest does not close what is open at its end (no
    # forced fill, so no trade and no exit reason); the report lists it as open
    report = run_main(["report", "--db", str(workdir / "bt.sqlite"), "--format", "json"], capsys)
    (open_position,) = json.loads(report.out)["portfolios"][0]["open_positions"]
    assert (open_position["side"], open_position["size"]) == ("long", 1.0)
    assert open_position["open_time"] == "2024-03-01T11:00:00.000Z"  # bar 10, at its event
    assert float(trades[0]["exit_price"]) == pytest.approx(110, rel=2e-3)  # at the trigger
    assert float(trades[1]["entry_price"]) == pytest.approx(106)  # the limit, as a maker
    assert float(trades[1]["exit_price"]) == pytest.approx(108, rel=2e-3)

    orders = exported(workdir, capsys, "orders.csv")
    protective = [(o["type"], o["status"]) for o in orders if o["type"] != "market"
                  and o["type"] != "limit"]  # fmt: skip
    # each entry's sibling was cancelled when the other one filled (one-cancels-other)
    assert sorted(protective) == sorted(
        [("take_profit_market", "filled"), ("stop_market", "canceled"),
         ("stop_market", "filled"), ("take_profit_market", "canceled")]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("bar", "fired"),
    [
        ((100.0, 112.0, 94.0, 100.0), "stop"),  # the low is nearer the open: first
        ((100.0, 111.0, 88.0, 100.0), "take_profit"),  # the high is nearer
        ((100.0, 120.0, 80.0, 100.0), "take_profit"),  # a tie: the high comes first
    ],
)
def test_a_candle_through_both_levels_fires_the_one_its_path_meets_first(
    workdir: Path, capsys: pytest.CaptureFixture[str], bar: tuple[float, ...], fired: str
) -> None:
    """Long 2 with its stop at 95 and take-profit at 110, then a candle through both: the
    documented path (open, the nearer extreme, the other, close; the high first on a
    tie) decides which one fills; the other is cancelled, nothing is sold twice."""
    calm = (100.0, 101.0, 99.0, 100.0)
    candles = write_candles(workdir / "btc.csv", [calm] * 3 + [bar] + [calm] * 2)  # type: ignore[list-item]
    plan = write_plan(workdir / "trade_plan.csv", [
        {"id": "a", "side": "long", "size": 2, "stop": 95, "take_profit": 110,
         "valid_from": hour(1)}])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert (trade["side"], float(trade["size"]), trade["exit_reason"]) == ("long", 2.0, fired)
    orders = exported(workdir, capsys, "orders.csv")
    statuses = {o["type"]: o["status"] for o in orders if o["type"] not in ("market", "limit")}
    other = "stop_market" if fired == "take_profit" else "take_profit_market"
    assert statuses == {f"{fired}_market": "filled", other: "canceled"}


def test_an_order_against_the_position_leaves_the_rest_protected(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short row of 1 while long 2 sells 1; its own stop and take-profit are for a
    short that does not come to be, so the long 1 left keeps the long's stop (at 95),
    which the drop to 90 triggers. Before, the row's levels replaced the long's and were
    dropped as the wrong side: the stop was cancelled and the long rode the drop."""
    bars = [(100.0, 101.0, 99.0, 100.0)] * 5 + [(100.0, 100.0, 90.0, 91.0)] * 2
    candles = write_candles(workdir / "btc.csv", bars)
    plan = write_plan(
        workdir / "trade_plan.csv",
        [
            {"id": "a", "side": "long", "size": 2, "stop": 95, "take_profit": 120,
             "valid_from": hour(1)},
            {"id": "b", "side": "short", "size": 1, "stop": 130, "take_profit": 80,
             "valid_from": hour(3)},
        ],
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    orders = exported(workdir, capsys, "orders.csv")
    stops = [(o["size"], o["status"]) for o in orders if o["type"] == "stop_market"]
    assert stops == [("1", "filled")]  # the long's stop, clipped to the long 1 left
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert (trade["side"], trade["exit_reason"]) == ("long", "stop")
    report = run_main(["report", "--db", str(workdir / "bt.sqlite"), "--format", "json"], capsys)
    assert json.loads(report.out)["portfolios"][0]["open_positions"] == []


def test_a_flat_row_closes_what_is_held_and_opens_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Long 2 (stop 95) and a limit to add 2 at 90 resting when a `flat` row comes: the
    long 2 is sold, reduce-only, and nothing more. Before, the flat row's target netted
    the resting limit as if it had filled: it sold 4 at market and left a short 2 (the
    limit never filled)."""
    candles = write_candles(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0)] * 6)
    plan = write_plan(
        workdir / "trade_plan.csv",
        [
            {"id": "a", "side": "long", "size": 2, "stop": 95, "valid_from": hour(1)},
            {"id": "b", "side": "long", "size": 2, "entry": "limit", "limit_price": 90,
             "stop": 85, "valid_from": hour(2)},
            {"id": "c", "side": "flat", "valid_from": hour(3)},
        ],
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    orders = exported(workdir, capsys, "orders.csv")
    sells = [(o["type"], o["size"], o["status"]) for o in orders
             if o["side"] == "sell" and o["type"] == "market"]  # fmt: skip
    assert sells == [("market", "2", "filled")]
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert (trade["side"], float(trade["size"]), trade["exit_reason"]) == ("long", 2.0, "plan")
    report = run_main(["report", "--db", str(workdir / "bt.sqlite"), "--format", "json"], capsys)
    assert json.loads(report.out)["portfolios"][0]["open_positions"] == []


def test_a_target_cut_with_its_stop_keeps_the_rest_protected(
    llm_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planner's target cut from 2 to 1 with stop 95 (a reduce-only sell): the stop
    protects the long 1 left and the drop to 90 triggers it. Before, the sell's side
    was taken for the position's: the levels were dropped and every protective order
    of the long cancelled."""
    bars = [(100.0, 101.0, 99.0, 100.0)] * 6 + [(100.0, 100.0, 90.0, 91.0)] * 2
    write_candles(llm_workdir / "btc.csv", bars)
    orders, (trade,) = _planned_backtest(llm_workdir, [stop_plan(2.0), stop_plan(1.0)], capsys)
    stops = [(o["size"], o["status"]) for o in orders if o["type"] == "stop_market"]
    assert stops[-1] == ("1", "filled")
    assert (trade["side"], trade["exit_reason"]) == ("long", "stop")


def _planned_backtest(
    workdir: Path, plans: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A backtest of the planner answering `plans` in turn: its orders.csv and
    trades.csv rows."""
    with fake_llm() as server:
        server.script = plans
        result = llm_backtest(workdir, llm_profile(workdir, server), "a.sqlite", capsys)
    assert result.code == 0, result.err
    out = workdir / "export"
    report = run_main(["report", "--db", str(workdir / "a.sqlite"), "--export", str(out),
                       "--out", "/dev/null"], capsys)  # fmt: skip
    assert report.code == 0, report.err
    with (out / "orders.csv").open() as fh, (out / "trades.csv").open() as trades:
        return list(csv.DictReader(fh)), list(csv.DictReader(trades))


def stop_plan(target: float, stop: float = 95.0) -> str:
    """A plan whose one trigger always holds: BTC long `target`, `stop`, take-profit 120."""
    return json.dumps({
        "rationale": "hold", "triggers": [{
            "symbol": "BTC-PERP", "condition": {"kind": "always"}, "target_position": target,
            "stop": stop, "take_profit": 120.0, "rationale": f"long {target:g}"}],
    })  # fmt: skip


def test_a_target_already_held_moves_its_stop(
    llm_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planner that keeps its target (long 1) and raises the stop from 95 to 97: the
    position held is protected at 97 from then on, and the dip to 96 stops it out.
    Before, a target already met made no order and the new levels were dropped: the
    stop stayed at 95 and the dip went through."""
    bars = [(100.0, 101.0, 99.0, 100.0)] * 6 + [(100.0, 100.0, 96.0, 96.5)] * 2
    write_candles(llm_workdir / "btc.csv", bars)
    plans = [stop_plan(1.0), stop_plan(1.0, stop=97.0)]
    orders, (trade,) = _planned_backtest(llm_workdir, plans, capsys)
    stops = [o["status"] for o in orders if o["type"] == "stop_market"]
    assert stops == ["canceled", "filled"], stops  # the stop at 95, then the one at 97
    assert (trade["side"], trade["exit_reason"]) == ("long", "stop")
    assert 96.0 < float(trade["exit_price"]) <= 97.0


def test_two_plan_portfolios_each_run_their_own_rows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two portfolios, each with its plan, both with a row `r1`: each runs its own (and the
    report lists each one's executed rows under it). Before, the executed rows of a
    backtest were kept for the whole run: the second portfolio took the first one's `r1`
    for its own and never traded."""
    candles = write_candles(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0)] * 4)
    plans = [write_plan(workdir / f"{side}.csv", [{"id": "r1", "side": side, "size": size,
                                                   "valid_from": hour(1)}])
             for side, size in (("long", 1), ("short", 2))]  # fmt: skip
    db = workdir / "bt.sqlite"
    result = run_main(["backtest", "--data", str(candles), "--symbol", "BTC-PERP", "--strategy",
                       "plan", "--strategy", "plan", "--param", f"plan.file={plans[0]}",
                       "--param", f"plan-2.file={plans[1]}", "--seed", "1", "--db", str(db),
                       "--no-progress"], capsys)  # fmt: skip
    assert result.code == 0, result.err
    report = json.loads(run_main(["report", "--db", str(db), "--format", "json"], capsys).out)
    held = {p["id"]: [(o["side"], o["size"]) for o in p["open_positions"]]
            for p in report["portfolios"]}  # fmt: skip
    assert held == {"plan": [("long", 1.0)], "plan-2": [("short", 2.0)]}
    for pid in ("plan", "plan-2"):
        one = run_main(["report", "--db", str(db), "--portfolio", pid, "--format", "json"], capsys)
        assert json.loads(one.out)["plans"]["executed_rows"] == ["r1"]


def test_a_halt_withdraws_a_resting_entry(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long 100 at 100, and a limit buy of 50 at 60 resting; the fall to 80 halts the
    portfolio (drawdown past 5%). HALTED lets nothing pass, yet the resting entry filled
    when the price reached 60 and added exposure to a halted account; it is now
    cancelled when the portfolio halts."""
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_DRAWDOWN", "0.05")
    monkeypatch.setenv("PERPS_BOT__RISK__REDUCING_DRAWDOWN", "0.05")
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__INITIAL_BALANCE", "10000")
    for cap in ("MAX_ORDER_NOTIONAL", "MAX_POSITION_NOTIONAL"):
        monkeypatch.setenv(f"PERPS_BOT__RISK__{cap}", "1000000")
    bars = [(100, 101, 99, 100), (100, 101, 99, 100), (100, 100, 80, 80),
            (80, 80, 79, 79), (79, 79, 55, 58), (58, 59, 57, 58)]  # fmt: skip
    candles = write_candles(workdir / "btc.csv", [tuple(map(float, b)) for b in bars])  # type: ignore[misc]
    plan = write_plan(workdir / "trade_plan.csv", [
        {"id": "a", "side": "long", "size": 100, "valid_from": hour(1)},
        {"id": "b", "side": "long", "size": 50, "entry": "limit", "limit_price": 60,
         "valid_from": hour(1)},
    ])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    orders = {o["client_id"]: o for o in exported(workdir, capsys, "orders.csv")}
    statuses = sorted((o["type"], float(o["size"]), o["status"]) for o in orders.values())
    assert statuses == [("limit", 50.0, "canceled"), ("market", 100.0, "filled")], statuses
