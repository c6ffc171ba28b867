"""Quiet stretches of quotes (orchestrator.quiet_quotes) change nothing but speed: the
same dev run three ways stores the same bytes (fills, orders, equity curve, funding,
excursions, trading states, chart samples) and journals the same events:

- stretches: the feed's columns (QuoteColumns) walked stretch by stretch (the default);
- one by one: every stretch refused, so every tick goes through `_on_event`;
- plain loop: the run never takes quote stretches (the batch iterated as events).

The cases make every stage cut stretches short: protective stops resting in the
venue, liquidations (isolated and cross, with two positions whose mark bands move
together), risk state changes, snapshots sparser than the bars and bars longer than
the snapshot interval, a strategy that reads the account on bars (mean reversion),
several portfolios side by side (one of them liquidated, two trading one symbol
each), one symbol alone, ticks off the funding and bar grid, a strategy that counts
quotes, and funding settlements."""

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from perps_bot.config import load_settings
from perps_bot.domain import MarketEvent, Order
from perps_bot.feeds.quote_columns import QuoteLists
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.quiet_quotes import QuietQuotes, _first_outside
from perps_bot.orchestrator.runner import run_bot_sync
from perps_bot.storage import RunStore
from tests.harness.limits import LOOSE_RISK

_WALL_CLOCK = {"updated_at", "created_at"}  # columns of the wall clock, not the run's
_ETH = {"initial_price": 3_000.0, "volatility": 0.75, "book_depth": 20.0}  # the default
_WILD = {"initial_price": 60_000.0, "volatility": 3.0, "book_depth": 500.0}

CASES: dict[str, dict[str, Any]] = {
    "dev": {},
    "stops": {"strategy": {"params": {"fast": 5, "slow": 20, "stop_pct": 0.002}}},
    "isolated_liquidations": {
        "mock": {"symbols": {"BTC-PERP": _WILD, "ETH-PERP": _ETH}},
        "account": {"margin_mode": "isolated", "default_leverage": 100.0},
        "strategy": {"order_size": {"BTC-PERP": 30.0, "ETH-PERP": 0.01}},
        "risk": LOOSE_RISK,
    },
    "cross_liquidations": {
        "mock": {"symbols": {"BTC-PERP": _WILD, "ETH-PERP": {**_WILD, "initial_price": 3_000.0}}},
        "account": {"default_leverage": 100.0},
        "strategy": {"order_size": {"BTC-PERP": 20.0, "ETH-PERP": 300.0}},
        "risk": LOOSE_RISK,
    },
    "risk_states": {
        "run": {"duration": "26h"},  # the next day lifts the daily loss limit's hold
        "strategy": {
            "params": {"fast": 3, "slow": 8},
            "order_size": {"BTC-PERP": 1.0, "ETH-PERP": 20.0},
        },
        "risk": {
            "max_order_notional": 1e9,
            "max_position_notional": 1e9,
            "max_drawdown": 0.03,
            "reducing_drawdown": 0.01,
            "daily_loss_limit": 0.005,
        },
    },
    # bars closing between snapshots, and snapshots between bar closes
    "sparse_snapshots": {
        "run": {"equity_interval": "5m", "log_equity_interval": "15m"},
        "strategy": {"params": {"fast": 3, "slow": 8}},
    },
    "long_bars": {"strategy": {"timeframe": "5m", "params": {"fast": 3, "slow": 8}}},
    "one_symbol": {
        "run": {"symbols": ["ETH-PERP"]},
        "strategy": {"params": {"fast": 3, "slow": 8}},
    },
    # 7 s ticks: funding settles between two ticks, bars close a few seconds late
    "off_grid_ticks": {
        "mock": {"tick_interval": "7s"},
        "strategy": {"params": {"fast": 3, "slow": 8}},
    },
    "mean_reversion": {"strategy": {"name": "mean_reversion", "params": {"lookback": 15}}},
    # a strategy that counts quotes (it does not declare `quote_stretches`): every tick
    # reaches it, its targets land on the same ticks
    "reads_quotes": {
        "strategy": {
            "name": "tests.harness.scripted:ScriptedTargets",
            "params": {
                "script": ",".join(
                    f"{n}:{0.02 if n % 1200 == 300 else -0.02}" for n in range(300, 43_000, 600)
                )
            },
        }
    },
    "portfolios": {
        "mock": {"symbols": {"BTC-PERP": _WILD, "ETH-PERP": _ETH}},
        # 100x: "fast" holds 1 BTC on 2 000 until it is liquidated (at 50x its flips need
        # more margin than it has, are cut to their closes and it never is)
        "account": {"default_leverage": 100.0},
        "risk": LOOSE_RISK,
        "portfolios": [
            {
                "id": "fast",
                "strategy": "sma_cross",
                "params": {"fast": 3, "slow": 8},
                "capital": 2_000.0,
                "order_size": {"BTC-PERP": 1.0, "ETH-PERP": 1.0},
            },
            {"id": "eth", "strategy": "sma_cross", "symbols": ["ETH-PERP"]},
            {
                "id": "mr",
                "strategy": "mean_reversion",
                "symbols": ["BTC-PERP"],
                "params": {"lookback": 15, "stop_pct": 0.003},
            },
        ],
    },
}


def _tables(db: Path, run_id: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table but `runs` (paths, pid, times) and the equity blocks, whose cut
    follows wall-clock checkpoints: each run's curve is compared whole instead (a run
    with several portfolios stores one run per portfolio, `<run id>.<portfolio>`)."""

    def same_run(value: object) -> object:
        return value.replace(run_id, "RUN") if isinstance(value, str) else value

    out: dict[str, list[tuple[object, ...]]] = {}
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        runs = sorted(r[0] for r in con.execute("SELECT run_id FROM runs"))
        skip = {"runs", "sqlite_sequence", "equity_blocks", "checkpoints"}
        for table in sorted(set(tables) - skip):
            cursor = con.execute(f"SELECT * FROM {table}")
            wall = [d[0] in _WALL_CLOCK for d in cursor.description]
            out[table] = [
                tuple(None if w else same_run(v) for v, w in zip(row, wall, strict=True))
                for row in cursor.fetchall()
            ]
    columns = ("ts", "equity", "cash", "unrealized_pnl")
    with RunStore(db, read_only=True) as store:
        for run in runs:
            chunks = list(store.iter_equity(run))
            out[f"equity curve of {same_run(run)}"] = [
                tuple(np.concatenate([getattr(c, k) for c in chunks]).tobytes() for k in columns)
            ]
    return out


def _journal(logs: Path, run_id: str) -> list[str]:
    lines = []
    for line in (logs / "events.jsonl").read_text().splitlines():
        event = json.loads(line.replace(run_id, "RUN"))
        for volatile in ("run_id", "latency_ms", "fingerprint", "wall_ts"):
            event.pop(volatile, None)
        lines.append(json.dumps(event, sort_keys=True))
    return lines


def _run(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], tag: str
) -> tuple[dict[str, list[tuple[object, ...]]], list[str], int]:
    """The run's tables, its journal, and how many events took every stage."""
    run = {
        "dev_fast": True,
        "duration": "12h",
        "seed": 5,
        "log_dir": str(tmp / f"logs-{tag}"),
        "data_dir": str(tmp / f"data-{tag}"),
        **overrides.get("run", {}),
    }
    with monkeypatch.context() as m:
        if tag == "one-by-one":
            m.setattr(QuietQuotes, "_quote_stretch", lambda self, block, i, j, end: i)
        if tag == "plain loop":
            m.setattr(QuietQuotes, "_takes_quote_stretches", lambda self: False)
        full_path = 0
        on_event = Orchestrator._on_event

        def counted(self: Orchestrator, event: MarketEvent) -> list[Order]:
            nonlocal full_path
            full_path += 1
            return on_event(self, event)

        m.setattr(Orchestrator, "_on_event", counted)
        settings = load_settings("dev", {**overrides, "run": run})
        result = run_bot_sync(settings, progress=False)
    assert result.status == "completed"
    tables = _tables(result.db_path, result.run_id)
    return tables, _journal(tmp / f"logs-{tag}", result.run_id), full_path


@pytest.mark.pure_python  # patches the engine's methods
@pytest.mark.parametrize("case", sorted(CASES))
def test_quote_stretches_store_what_one_tick_at_a_time_stores(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = CASES[case]
    tables, journal, full_path = _run(tmp_path, monkeypatch, overrides, "stretches")
    for tag in ("one-by-one", "plain loop"):
        other_tables, other_journal, every_event = _run(tmp_path, monkeypatch, overrides, tag)
        if case != "reads_quotes":  # the stretches took most ticks (that is their point)
            assert full_path < every_event / 5, (full_path, every_event)
        assert other_tables.keys() == tables.keys()
        for name in tables:
            assert other_tables[name] == tables[name], f"{name} differs ({tag})"
        assert other_journal == journal, tag
    # the case did what it is here for
    fills = tables["fills"]
    assert len(fills) > (3 if case == "risk_states" else 20), len(fills)  # a halt ends it
    if case != "risk_states":  # halted and flat before the first settlement
        assert tables["funding"], "positions held over 12 hours settle funding"
    if case == "portfolios":
        traded = {str(row[0]) for row in fills}
        assert traded == {"RUN.fast", "RUN.eth", "RUN.mr"}, traded
    if case.endswith("liquidations") or case == "portfolios":
        assert any("liquidation" in str(row) for row in fills)
    if case == "cross_liquidations":
        held = {row for row in journal if '"type": "fill"' in row}
        assert any("BTC-PERP" in r for r in held) and any("ETH-PERP" in r for r in held)
    if case == "risk_states":
        states = [line for line in journal if '"type": "state_change"' in line]
        assert len(states) >= 2, "the risk gate did not change state"
    if case == "stops":
        assert any(re.search(r"\bstop\b", str(row)) for row in fills)


_PRICE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=90.0, max_value=110.0),  # mostly inside the band below
)


@given(
    ticks=st.lists(st.tuples(_PRICE, _PRICE), max_size=30),
    first=st.integers(0, 30),
)
@example(ticks=[(100.0, 100.0), (math.nan, 100.0), (101.0, 100.0)], first=0)  # min, max: 100
@example(ticks=[(100.0, 100.0), (100.0, math.nan)], first=0)
def test_the_band_scan_stops_at_the_first_tick_one_at_a_time_would_stop_at(
    ticks: list[tuple[float, float]], first: int
) -> None:
    """min, max and sum settle the common case; NaN, infinities and prices that are not
    positive must still stop the stretch exactly where the per-tick check would."""
    marks = [m for m, _ in ticks]
    prices = [p for _, p in ticks]
    column = QuoteLists(prices, prices, prices, marks)
    first = min(first, len(ticks))
    expected = next(
        (k for k in range(first, len(ticks)) if not (95.0 < marks[k] < 105.0 and prices[k] > 0)),
        len(ticks),
    )
    assert _first_outside(column, 95.0, 105.0, first, len(ticks)) == expected
