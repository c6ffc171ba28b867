"""Several strategies in one bot (SPEC 10): each portfolio its own books, risk state and
run; fills routed by client id; the account is their sum and its caps apply to the sum;
reconciliation attributes a difference or halts who cannot be told apart."""

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import ConfigError, Settings, load_settings
from perps_bot.domain import TradingState
from perps_bot.metrics.report import build_report
from perps_bot.orchestrator.runner import RunResult, run_bot, run_bot_sync
from perps_bot.storage import RunStore
from perps_bot.venues import FillsOutOfReach, VenuePosition, VenueSnapshot
from tests.badinput.harness import assert_bad_input, run_main
from tests.harness.scripted import RecordingTargets, ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue
from tests.harness.wired import wired

START_MS = 1_704_067_200_000
BTC, ETH = "BTC-PERP", "ETH-PERP"
SCRIPTED = "tests.harness.scripted:ScriptedTargets"


def _run_section(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "dev_fast": True,
        "log_dir": str(tmp_path / "logs"),
        "data_dir": str(tmp_path / "data"),
        "live_view": False,
        "log_level": "INFO",
    } | more


def scripted(pid: str, script: str, symbol: str = BTC, **more: Any) -> dict[str, Any]:
    return {"id": pid, "strategy": SCRIPTED, "symbols": [symbol],
            "params": {"symbol": symbol, "script": script}} | more  # fmt: skip


def harness_settings(tmp_path: Path, *portfolios: dict[str, Any], **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "run": _run_section(tmp_path, symbols=[BTC, ETH]),
        "account": {"initial_balance": 10_000.0},
        "portfolios": list(portfolios),
    } | sections
    return load_settings("dev", overrides)


def table(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def run_scripted(cfg: Settings, prices: list[float]) -> tuple[RunResult, ScriptedVenue]:
    venue = ScriptedVenue([])
    RecordingTargets.log = venue.calls
    feed = ScriptedFeed(quotes(BTC, prices, start_ms=START_MS))
    return await run_bot(cfg, feed=feed, venue=venue, progress=False), venue


async def test_fills_belong_to_the_portfolio_whose_order_they_filled(tmp_path: Path) -> None:
    cfg = harness_settings(tmp_path, scripted("long", "2:3"), scripted("short", "3:-1"))
    result, venue = await run_scripted(cfg, [100.0] * 5)
    assert result.status == "completed"
    run_id = result.run_id
    orders = {o.client_id: o.portfolio for o in venue.submitted}
    assert sorted(orders.values()) == ["long", "short"]
    assert all(cid.startswith(f"pb-{pid}-") for cid, pid in orders.items())
    positions = {
        pid: table(
            result.db_path,
            "SELECT size FROM positions WHERE run_id=? AND symbol=?",
            f"{run_id}.{pid}",
            BTC,
        )
        for pid in ("long", "short")
    }
    assert positions == {"long": [(3.0,)], "short": [(-1.0,)]}
    fills = table(result.db_path, "SELECT run_id, client_id FROM fills ORDER BY run_id")
    assert fills == sorted((f"{run_id}.{orders[cid]}", cid) for cid in orders)
    with RunStore(result.db_path, read_only=True) as store:
        account = store.run(run_id)
        children = store.children(run_id)
    assert account.strategy == f"{SCRIPTED} + {SCRIPTED}"
    assert [(c.portfolio, c.initial_balance) for c in children] == [
        ("long", 5_000.0),
        ("short", 5_000.0),
    ]


async def test_account_caps_apply_to_the_sum_of_the_portfolios(tmp_path: Path) -> None:
    """Each portfolio stays within its own cap (400 USDT here) but the second would take
    the account past the profile's 500: it is cut to what is left of the account cap."""
    own = {"risk": {"max_position_notional": 400.0}}
    cfg = harness_settings(
        tmp_path,
        scripted("a", "2:3", **own),
        scripted("b", "3:3", **own),
        risk={"max_position_notional": 500.0, "max_order_notional": 10_000.0},
    )
    _, venue = await run_scripted(cfg, [100.0] * 5)
    sizes = {o.portfolio: o.size for o in venue.submitted}
    assert sizes == {"a": 3.0, "b": 2.0}


async def test_the_account_caps_hold_for_a_profile_of_one_portfolio(tmp_path: Path) -> None:
    """A `portfolios:` list of one is the whole account: its `risk` keys over the
    profile's are its own limits, but the profile's caps (the canary's hard caps) still
    hold for the account, as they do for the sum of several."""
    cfg = harness_settings(
        tmp_path,
        scripted("a", "2:3", risk={"max_position_notional": 400.0}),
        risk={"max_position_notional": 100.0, "max_order_notional": 10_000.0},
    )
    _, venue = await run_scripted(cfg, [100.0] * 5)
    assert [o.size for o in venue.submitted] == [1.0], "past the profile's 100 USDT cap"


async def test_the_account_order_rate_is_the_sum_of_the_portfolios_orders(
    tmp_path: Path,
) -> None:
    """max_orders_per_minute of the profile is the account's (SPEC 10: account-level caps
    apply to the sum): two portfolios each within their own one a minute sent two orders
    in the same minute."""
    cfg = harness_settings(
        tmp_path, scripted("a", "1:1"), scripted("b", "2:1"), risk={"max_orders_per_minute": 1}
    )
    result, venue = await run_scripted(cfg, [100.0] * 5)
    assert [o.portfolio for o in venue.submitted] == ["a"]
    denied = table(result.db_path, "SELECT run_id, reason_code FROM denials")
    assert denied == [(f"{result.run_id}.b", "ORDER_RATE_LIMIT")]


async def test_a_portfolio_cannot_lift_the_accounts_order_notional_cap(tmp_path: Path) -> None:
    """A portfolio's own max_order_notional over the profile's (the canary's 50 USDT per
    order) is its limit, but not the account's: the order is cut to the profile's cap."""
    cfg = harness_settings(
        tmp_path,
        scripted("a", "1:2", risk={"max_order_notional": 1_000.0}),
        scripted("b", ""),
        risk={"max_order_notional": 50.0, "max_position_notional": 10_000.0},
    )
    _, venue = await run_scripted(cfg, [100.0] * 5)
    assert [o.size for o in venue.submitted] == [0.5]


async def test_reconciliation_attributes_a_difference_or_halts_who_share_the_symbol(
    tmp_path: Path,
) -> None:
    cfg = harness_settings(
        tmp_path,
        scripted("btc", "", BTC),
        scripted("eth-1", "", ETH),
        scripted("eth-2", "", ETH),
    )
    venue = ScriptedVenue([])
    venue.snapshots = [
        VenueSnapshot(10_000.0, [VenuePosition(BTC, 0.5, 100.0), VenuePosition(ETH, 2.0, 10.0)])
    ]
    async with wired(cfg, venue) as run:
        engine = run.orchestrator
        assert await engine.reconcile("start") == [BTC, ETH]
        by_id = {p.id: p for p in engine.portfolios}
        assert by_id["btc"].ledger.position_size(BTC) == 0.5  # the one trading BTC adopts
        assert by_id["btc"].risk.state is TradingState.ACTIVE
        for pid in ("eth-1", "eth-2"):  # ETH is theirs together: who holds it is unknown
            assert by_id[pid].ledger.position_size(ETH) == 0.0
            assert by_id[pid].risk.state is TradingState.HALTED
            assert "cannot be attributed" in by_id[pid].risk.state_detail
        assert engine.trading_state is TradingState.HALTED


async def test_fills_out_of_reach_halt_only_the_portfolios_of_the_symbol(tmp_path: Path) -> None:
    """The exchange's BTC fills since the last reconciliation cannot all be read: the
    portfolio trading BTC halts and adopts the exchange's position. The one trading only
    ETH halted with it, though nothing of its own differed (SPEC 10: one portfolio's halt
    never touches another)."""
    cfg = harness_settings(tmp_path, scripted("btc", "", BTC), scripted("eth", "", ETH))
    venue = ScriptedVenue([])
    venue.snapshots = [
        VenueSnapshot(10_000.0),
        VenueSnapshot(10_000.0, [VenuePosition(BTC, 0.5, 100.0)]),
    ]
    venue.foreign = FillsOutOfReach("BTC-PERP: the exchange fills since ... go back too far")
    async with wired(cfg, venue) as run:
        engine = run.orchestrator
        await engine.start(reconcile=True)
        assert await engine.reconcile("periodic") == [BTC]
        by_id = {p.id: p for p in engine.portfolios}
        assert by_id["btc"].ledger.position_size(BTC) == 0.5
        assert by_id["btc"].risk.state is TradingState.HALTED
        assert "go back too far" in by_id["btc"].risk.state_detail
        assert by_id["eth"].risk.state is TradingState.ACTIVE


def test_bad_portfolio_plans_are_one_line_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="used twice"):
        harness_settings(tmp_path, scripted("a", ""), scripted("a", ""))
    with pytest.raises(ConfigError, match=r"more than account\.initial_balance"):
        harness_settings(tmp_path, scripted("a", "", capital=8_000.0),
                         scripted("b", "", capital=4_000.0))  # fmt: skip
    with pytest.raises(ConfigError, match=r"portfolios\.a\.risk\.max_leverag: unknown key"):
        harness_settings(tmp_path, scripted("a", "", risk={"max_leverag": 3}))


def test_main_is_no_portfolio_id_of_a_run_with_several(tmp_path: Path) -> None:
    """`main` is what the trading state of a run of one strategy (the whole account) is
    stored as, and its halt holds for every portfolio: a portfolio of that name among
    several would halt all of them with its own drawdown halt."""
    with pytest.raises(ConfigError, match="portfolio id 'main' is taken"):
        harness_settings(tmp_path, scripted("main", ""), scripted("b", ""))
    one = harness_settings(tmp_path, scripted("main", ""))  # alone it is the account
    assert [p.id for p in one.portfolio_plans()] == ["main"]


# -- the mock venue, several strategies over days ------------------------------------
def dev_settings(tmp_path: Path, portfolios: list[dict[str, Any]], **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "run": _run_section(tmp_path, duration="1d", seed=3, symbols=[BTC, ETH]),
        "portfolios": portfolios,
    } | sections
    return load_settings("dev", overrides)


EIGHT = [
    {"id": f"p{i}", "strategy": strategy, "symbols": symbols}
    for i, (strategy, symbols) in enumerate(
        [
            ("sma_cross", [BTC]),
            ("sma_cross", [ETH]),
            ("mean_reversion", [BTC]),
            ("mean_reversion", [ETH]),
            ("sma_cross", [BTC, ETH]),
            ("mean_reversion", [BTC, ETH]),
            ("funding_carry", [BTC]),
            ("sma_cross", [BTC]),
        ]
    )
]


def test_eight_portfolios_sum_to_the_account_at_every_snapshot(tmp_path: Path) -> None:
    result = run_bot_sync(dev_settings(tmp_path, EIGHT), progress=False)
    assert result.status == "completed"
    with RunStore(result.db_path, read_only=True) as store:
        children = store.children(result.run_id)
        assert [c.portfolio for c in children] == [f"p{i}" for i in range(8)]
        assert {c.initial_balance for c in children} == {100_000.0 / 8}
        account = _curve(store, result.run_id)
        curves = [_curve(store, c.run_id) for c in children]
        report = build_report(store, result.run_id)
    common = set(account).intersection(*curves)
    assert len(common) > 1000  # an equity row a minute for a day, in every run
    worst = max(abs(sum(c[ts] for c in curves) - account[ts]) for ts in common)
    assert worst <= 1e-9 * 100_000.0
    traded = [p for p in report.portfolios if p.metrics["trades"] > 0]
    assert len(traded) >= 6, [p.metrics["trades"] for p in report.portfolios]
    assert report.metrics["trades"] == sum(p.metrics["trades"] for p in report.portfolios)
    assert sorted(t.trade_id for t in report.trades) == list(range(1, len(report.trades) + 1))
    body = report.as_dict()
    assert [p["id"] for p in body["portfolios"]] == [f"p{i}" for i in range(8)]
    assert body["account"]["portfolios"] == [f"p{i}" for i in range(8)]
    assert body["account"]["final_equity"] == body["run"]["final_equity"]
    total = sum(p.final_equity for p in report.portfolios)
    assert abs(total - report.final_equity) <= 1e-6


def _curve(store: RunStore, run_id: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for part in store.iter_equity(run_id):
        out.update(zip(part.ts.tolist(), part.equity.tolist(), strict=True))
    return out


WILD_RISK = {"max_order_notional": 1e9, "max_position_notional": 1e9, "max_leverage": 200.0,
             "max_drawdown": 0.5, "reducing_drawdown": 0.5, "daily_loss_limit": 1.0}  # fmt: skip


def isolation_settings(tmp_path: Path) -> Settings:
    """`wild` runs 36x on a 400%-vol walk and is liquidated; `calm` trades small (both
    at the account's 100x leverage setting: an exchange sets it per symbol, not per
    portfolio)."""
    wild = {"id": "wild", "strategy": "sma_cross", "symbols": [BTC],
            "order_size": {BTC: 60.0}, "capital": 50_000.0}  # fmt: skip
    calm = {"id": "calm", "strategy": "sma_cross", "symbols": [BTC], "capital": 50_000.0,
            "risk": {"max_position_notional": 50_000.0, "max_leverage": 100.0,
                     "max_drawdown": 0.2, "reducing_drawdown": 0.15}}  # fmt: skip
    return dev_settings(
        tmp_path,
        [wild, calm],
        run=_run_section(tmp_path, duration="3d", seed=1, symbols=[BTC]),
        mock={
            "symbols": {BTC: {"initial_price": 60_000.0, "volatility": 4.0, "book_depth": 500.0}}
        },
        account={"initial_balance": 100_000.0, "default_leverage": 100.0},
        risk=WILD_RISK,
    )


def test_a_liquidated_and_halted_portfolio_never_touches_the_others(tmp_path: Path) -> None:
    cfg = isolation_settings(tmp_path)
    result = run_bot_sync(cfg, progress=False)
    wild, calm = f"{result.run_id}.wild", f"{result.run_id}.calm"
    db = result.db_path
    liquidated = table(db, "SELECT MIN(ts) FROM fills WHERE run_id=? AND is_liquidation=1", wild)
    assert liquidated[0][0] is not None, "36x on a 400%-vol walk is liquidated within 3 days"
    assert not table(db, "SELECT 1 FROM fills WHERE run_id=? AND is_liquidation=1", calm)
    after = table(db, "SELECT COUNT(*) FROM fills WHERE run_id=? AND ts>?", calm, liquidated[0][0])
    assert after[0][0] > 0, "calm trades on after wild's liquidation"
    # calm's cash is calm's fills and funding only: nothing of wild's loss reached it
    realized, fees = table(db, "SELECT SUM(realized_pnl), SUM(fee) FROM fills WHERE run_id=?",
                           calm)[0]  # fmt: skip
    funding = table(db, "SELECT COALESCE(SUM(payment), 0) FROM funding WHERE run_id=?", calm)
    with RunStore(db, read_only=True) as store:
        report = build_report(store, result.run_id)
        cash = [float(part.cash[-1]) for part in store.iter_equity(calm)][-1]
    assert abs(cash - (50_000.0 + realized - fees + funding[0][0])) < 1e-6
    by_id = {p.run.portfolio: p for p in report.portfolios}
    assert by_id["wild"].metrics["liquidations"] > 0
    assert by_id["calm"].metrics["liquidations"] == 0
    assert by_id["wild"].final_equity < 25_000.0 < 45_000.0 < by_id["calm"].final_equity
    states = dict(table(db, "SELECT portfolio, state FROM trading_state"))
    assert states == {"wild": "HALTED", "calm": "ACTIVE"}


def test_a_halted_portfolio_stays_halted_next_run_while_the_others_trade(
    tmp_path: Path,
) -> None:
    cfg = isolation_settings(tmp_path)
    run_bot_sync(cfg, progress=False)
    second = run_bot_sync(cfg, progress=False)
    db = second.db_path
    wild = table(db, "SELECT COUNT(*) FROM orders WHERE run_id=?", f"{second.run_id}.wild")
    calm = table(db, "SELECT COUNT(*) FROM orders WHERE run_id=?", f"{second.run_id}.calm")
    assert wild[0][0] == 0 and calm[0][0] > 0
    denied = table(db, "SELECT DISTINCT reason_code FROM denials WHERE run_id=?",
                   f"{second.run_id}.wild")  # fmt: skip
    assert denied == [("MAX_DRAWDOWN_HALT",)]
    unknown = run_main(["resume-trading", "--db", str(db), "--portfolio", "nope"])
    assert "no portfolio 'nope'" in assert_bad_input(unknown)
    # calm is not halted: said of calm, not of the database (wild is HALTED)
    calm = run_main(["resume-trading", "--db", str(db), "--portfolio", "calm"])
    assert calm.code == 0 and "(portfolio calm): ACTIVE, nothing to lift" in calm.out, calm
    lifted = run_main(["resume-trading", "--db", str(db), "--portfolio", "wild",
                       "--reason", "checked"])  # fmt: skip
    assert lifted.code == 0 and "(portfolio wild): HALTED -> ACTIVE" in lifted.out
    states = dict(table(db, "SELECT portfolio, state FROM trading_state"))
    assert states == {"wild": "ACTIVE", "calm": "ACTIVE"}


def test_a_halted_portfolio_holds_for_a_later_run_of_one_strategy(tmp_path: Path) -> None:
    """A run of one strategy trades the whole account, the halted portfolio's money
    included: it takes that halt (as a run of several takes the account's) and places no
    order until resume-trading lifts it."""
    cfg = isolation_settings(tmp_path)
    run_bot_sync(cfg, progress=False)  # wild is liquidated and HALTED, calm trades on
    calm_risk = cfg.portfolios[1].risk
    one = cfg.model_copy(update={"portfolios": [], "risk": cfg.risk.model_copy(update=calm_risk)})
    halted = run_bot_sync(one, progress=False)
    db = halted.db_path
    orders = table(db, "SELECT COUNT(*) FROM orders WHERE run_id=?", halted.run_id)
    assert orders == [(0,)], "a run of one strategy traded while portfolio wild is HALTED"
    denied = table(db, "SELECT DISTINCT reason_code FROM denials WHERE run_id=?", halted.run_id)
    assert denied == [("MAX_DRAWDOWN_HALT",)]
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    said = [e["detail"] for e in events if e["run_id"] == halted.run_id
            and e["type"] == "state_change"]  # fmt: skip
    assert said and "of portfolio wild" in said[0], said
    lifted = run_main(["resume-trading", "--db", str(db), "--reason", "checked"])
    assert lifted.code == 0 and "(portfolio wild): HALTED -> ACTIVE" in lifted.out, lifted
    again = run_bot_sync(one, progress=False)
    traded = table(db, "SELECT COUNT(*) FROM orders WHERE run_id=?", again.run_id)
    assert traded[0][0] > 0, "after resume-trading the run of one strategy trades"
