"""The `plan` strategy on its own: the file is read again when it changes, a row runs
once (also in a new instance that shares the run store: a restart), bad rows and bad
files are one line each."""

import json
import logging
import os
from pathlib import Path

import pytest

from perps_bot.domain import Candle, OrderIntent, OrderType, Side
from perps_bot.storage import RunStore
from perps_bot.storage.strategy_memory import StoredMemory
from perps_bot.strategies import StrategyContext, StrategyError, load_strategy
from tests.plans.helpers import HOUR, run_main, write_plan
from tests.strategies.test_builtin_strategies import FakeAccount

START = 1_709_251_200_000  # 2024-03-01T00:00:00Z


def strategy(plan: Path, store: RunStore | None = None) -> object:
    ctx = StrategyContext(
        symbols=["BTC-PERP", "ETH-PERP"],
        account=FakeAccount(),
        order_size=lambda _s: 1.0,
        logger=logging.getLogger("perps_bot.strategy.plan"),
        memory=StoredMemory(store, "dev/main") if store is not None else None,
    )
    return load_strategy("plan")({"file": str(plan), "reload_interval": 0}, ctx)


def bar(n: int, price: float = 100.0, symbol: str = "BTC-PERP") -> Candle:
    open_time = START + n * HOUR
    return Candle(open_time + HOUR, symbol, open_time, price, price, price, price, 1.0)


def touch(path: Path) -> None:
    """A change the file's stamp shows even within one clock tick."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_rows_run_once_and_a_changed_file_is_read_again(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p.csv", [
        {"id": "1", "side": "long", "size": 0.5, "stop": 90, "take_profit": 120},
        {"id": "2", "side": "short", "notional": 1000, "entry": "limit", "limit_price": 101,
         "symbol": "ETH-PERP"},
    ])  # fmt: skip
    s = strategy(plan)
    first = list(s.on_event(bar(0)))  # type: ignore[attr-defined]
    assert first == [OrderIntent("BTC-PERP", Side.BUY, 0.5, OrderType.MARKET, None,
                                 reason="plan 1", stop_loss=90.0, take_profit=120.0)]  # fmt: skip
    eth = list(s.on_event(bar(0, 200.0, "ETH-PERP")))  # type: ignore[attr-defined]
    assert [(i.side, i.size, i.order_type, i.limit_price) for i in eth] == [
        (Side.SELL, 5.0, OrderType.LIMIT, 101.0)
    ]
    assert list(s.on_event(bar(1))) == []  # type: ignore[attr-defined]

    write_plan(plan, [
        {"id": "1", "side": "long", "size": 0.5, "stop": 90, "take_profit": 120},
        {"id": "3", "side": "flat"},
    ])  # fmt: skip
    touch(plan)
    s.ctx.account.positions["BTC-PERP"] = 0.5  # type: ignore[attr-defined]  # the entry filled
    assert list(s.on_event(bar(2))) == [OrderIntent("BTC-PERP", Side.SELL, 0.5,  # type: ignore[attr-defined]
                                                    reduce_only=True, reason="plan")]  # fmt: skip
    assert list(s.on_event(bar(3))) == []  # type: ignore[attr-defined]


def test_a_restart_does_not_execute_a_row_again(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p.csv", [{"id": "x", "side": "long", "size": 1}])
    store = RunStore(tmp_path / "db.sqlite")
    assert len(strategy(plan, store).on_event(bar(0))) == 1  # type: ignore[attr-defined]
    again = strategy(plan, store)  # the bot restarted: same store, a new strategy
    assert list(again.on_event(bar(1))) == []  # type: ignore[attr-defined]
    store.close()


def test_a_notional_limit_entry_is_sized_at_the_price_it_fills_at(tmp_path: Path) -> None:
    """A notional of 900 for a long limit at 90 while the market is at 100 buys 10 (900 at
    90, the price it rests at and fills at), and a short limit at 90 with the market at
    100 (marketable: it fills at the market) sells 9. Before, both were sized at the
    market price: the resting long bought 9, a notional of 810 once filled."""
    plan = write_plan(tmp_path / "p.csv", [
        {"id": "a", "side": "long", "notional": 900, "entry": "limit", "limit_price": 90},
        {"id": "b", "side": "short", "notional": 900, "entry": "limit", "limit_price": 90,
         "symbol": "ETH-PERP"},
    ])  # fmt: skip
    s = strategy(plan)
    sizes = [i.size for n in ("BTC-PERP", "ETH-PERP") for i in s.on_event(bar(0, 100.0, n))]  # type: ignore[attr-defined]
    assert sizes == [pytest.approx(10.0), pytest.approx(9.0)]


def test_rows_wait_for_their_window(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "p.json", [])
    plan.write_text(json.dumps([
        {"id": "late", "symbol": "BTC-PERP", "side": "long", "size": 1,
         "valid_from": "2024-03-01T03:00:00Z"},
        {"id": "gone", "symbol": "BTC-PERP", "side": "short", "size": 1,
         "valid_until": "2024-03-01T00:30:00Z"},
    ]))  # fmt: skip
    s = strategy(plan)
    assert list(s.on_event(bar(1))) == []  # type: ignore[attr-defined]
    assert [i.reason for i in s.on_event(bar(2))] == ["plan late"]  # type: ignore[attr-defined]


def test_bad_rows_are_one_line_each_and_the_rest_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plan = tmp_path / "p.csv"
    plan.write_text(
        "id,symbol,side,size,stop,take_profit,entry,valid_from\n"
        "1,BTC-PERP,long,1,,,,\n"
        "2,DOGE-PERP,long,1,,,,\n"
        "3,BTC-PERP,sideways,1,,,,\n"
        "4,BTC-PERP,long,1,110,100,,\n"
        "5,BTC-PERP,long,1,,,limit,\n"
        "6,BTC-PERP,long,1,,,,yesterday\n"
        "1,BTC-PERP,short,1,,,,\n"
        "8,BTC-PERP,long,-1,,,,\n"
    )
    with caplog.at_level(logging.WARNING):
        s = strategy(plan)
    lines = [r.getMessage() for r in caplog.records]
    columns = [line.split(", column ")[1].split(":")[0] for line in lines]
    assert columns == ["symbol", "side", "stop", "limit_price", "valid_from", "id", "size"]
    assert all("\n" not in line for line in lines)
    assert [line.split(",")[0] for line in lines] == [
        f"plan p.csv row {n}" for n in (2, 3, 4, 5, 6, 7, 8)
    ]
    assert [i.reason for i in s.on_event(bar(0))] == ["plan 1"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("long,1,limit,100,100,", "stop", "a long stop must be below its limit_price"),
        ("long,1,limit,100,,99", "take_profit", "a long take_profit must be above its limit_price"),
        ("short,1,limit,100,95,", "stop", "a short stop must be above its limit_price"),
        ("short,1,limit,100,,100", "take_profit",
         "a short take_profit must be below its limit_price"),
    ],
)  # fmt: skip
def test_a_limit_entry_with_a_level_on_the_wrong_side_is_a_bad_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: str, column: str, message: str
) -> None:
    """A long limit at 100 with its stop at 100 or above would be stopped out as soon as it
    fills (refused by the exchange: a halt); before, such rows were taken silently."""
    plan = tmp_path / "p.csv"
    plan.write_text("id,symbol,side,size,entry,limit_price,stop,take_profit\n"
                    f"bad,BTC-PERP,{row}\n"
                    "good,BTC-PERP,long,1,limit,100,95,110\n")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        s = strategy(plan)
    assert [r.getMessage() for r in caplog.records] == [
        f"plan p.csv row 1, column {column}: {message} (row skipped)"
    ]
    assert [i.reason for i in s.on_event(bar(0))] == ["plan good"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("id,symbol,side,size,colour\n", ".csv", "unknown column 'colour'"),
        ("", ".csv", "empty file"),
        ("{not json", ".json", "not valid JSON"),
        ('{"id": 1}', ".json", "a JSON plan is a list of objects"),
    ],
)
def test_a_bad_file_is_refused_in_one_line(
    tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    plan = tmp_path / f"p{suffix}"
    plan.write_text(content)
    with pytest.raises(StrategyError) as refused:
        strategy(plan)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(StrategyError, match="no such file"):
        strategy(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".csv", "id,symbol,side,size\r\nx,BTC-PERP,long,1\r\n"),
        (".json", '[{"id": "x", "symbol": "BTC-PERP", "side": "long", "size": 1}]'),
    ],
)
def test_a_plan_saved_with_a_byte_order_mark_is_read(
    tmp_path: Path, suffix: str, text: str
) -> None:
    """A plan saved as "CSV UTF-8" by a spreadsheet (or JSON by a Windows editor) starts
    with a byte order mark: its rows run. Before, the CSV was refused for an "unknown
    column 'id'" (the mark, unseen, was part of the first column's name) and the JSON
    was "not valid JSON"."""
    plan = tmp_path / f"p{suffix}"
    plan.write_bytes(text.encode("utf-8-sig"))
    s = strategy(plan)
    assert [i.reason for i in s.on_event(bar(0))] == ["plan x"]  # type: ignore[attr-defined]


def test_a_plan_row_runs_once_across_runs_of_one_portfolio_whatever_its_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of one portfolio trades the whole account (its trading state is the
    account's, `main`): a profile's `portfolios:` list of one (id trend) executed row r1,
    and a later `--strategy plan` run of the same profile on the same database executed
    r1 again, doubling the entry."""
    plan = write_plan(tmp_path / "plan.csv", [{"id": "r1", "side": "long", "size": 0.001,
                                               "entry": "market"}])  # fmt: skip
    one = tmp_path / "one.yaml"
    one.write_text(
        "profile: dev\nportfolios:\n"
        f"  - {{id: trend, strategy: plan, params: {{file: '{plan}'}}}}\n"
    )
    db = str(tmp_path / "db.sqlite")
    common = ["--dev-fast", "--duration", "2h", "--db", db]
    first = run_main(["--profile", str(one), *common], capsys)
    assert first.code == 0, first.err
    assert "1 fills" in first.out, first.out
    again = run_main(
        ["--profile", "dev", "--strategy", "plan", "--param", f"file={plan}", *common],
        capsys,
    )
    assert again.code == 0, again.err
    assert "0 fills" in again.out, again.out


def test_a_json_plan_may_number_its_ids(tmp_path: Path) -> None:
    """`"id": 7` in a JSON plan was a bad row ("Input should be a valid string"): the row
    never ran. A whole number is the id "7" (as the same row of a CSV plan), once."""
    plan = tmp_path / "p.json"
    plan.write_text(
        json.dumps(
            [
                {"id": 7, "symbol": "BTC-PERP", "side": "long", "size": 1},
                {"id": 7.5, "symbol": "BTC-PERP", "side": "long", "size": 1},
            ]
        )
    )
    s = strategy(plan)
    assert [i.reason for i in s.on_event(bar(0))] == ["plan 7"]  # type: ignore[attr-defined]
    assert s.on_event(bar(1)) == ()  # type: ignore[attr-defined]
