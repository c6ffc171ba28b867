"""Round trips rebuilt from fills: open/close, partial close, scale-in, flip, funding, R, MAE."""

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.metrics import Trade, round_trips
from perps_bot.storage import ExcursionRecord, FillRecord, RunStore
from tests.metrics.metrics_builders import DAY, HOUR, T0, RunBuilder


def _trades(store: RunStore, run_id: str) -> list[Trade]:
    return round_trips(store.fills(run_id), store.funding(run_id), store.excursions(run_id))


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "t.sqlite")


def test_simple_long_round_trip(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0, fee=0.1)
    b.fill(T0 + HOUR, "sell", 1.0, 110.0, fee=0.11, reason="exit_signal")
    (t,) = _trades(store, b.done())
    assert (t.trade_id, t.symbol, t.side) == (1, "BTC-PERP", "long")
    assert (t.open_ts, t.close_ts) == (T0, T0 + HOUR)
    assert t.size == 1.0
    assert (t.entry_price, t.exit_price) == (100.0, 110.0)
    assert t.gross_pnl == pytest.approx(10.0)
    assert t.fees == pytest.approx(0.21)
    assert t.net_pnl == pytest.approx(9.79)
    assert t.exit_reason == "exit_signal"
    assert t.r_multiple is None and t.mae is None and t.mfe is None
    assert t.duration_s == 3600.0


def test_short_partial_close_is_one_trade_with_average_exit(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "sell", 2.0, 100.0, fee=0.2)
    b.fill(T0 + HOUR, "buy", 1.0, 90.0, fee=0.1)
    b.fill(T0 + 2 * HOUR, "buy", 1.0, 80.0, fee=0.1, reason="stop")
    (t,) = _trades(store, b.done())
    assert t.side == "short"
    assert t.size == 2.0
    assert t.exit_price == pytest.approx(85.0)
    assert t.gross_pnl == pytest.approx(10.0 + 20.0)
    assert t.fees == pytest.approx(0.4)
    assert t.exit_reason == "stop"
    assert t.close_ts == T0 + 2 * HOUR


def test_scale_in_averages_entry_and_size_is_max_held(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0)
    b.fill(T0 + 1, "buy", 1.0, 110.0)
    b.fill(T0 + 2, "sell", 0.5, 120.0)
    b.fill(T0 + 3, "buy", 0.5, 120.0)  # add again after a partial close
    b.fill(T0 + 4, "sell", 2.0, 130.0)
    (t,) = _trades(store, b.done())
    assert t.size == 2.0
    # entries: 1@100, 1@110, 0.5@120 -> 125 / 2.5 / ... average over entry fills
    assert t.entry_price == pytest.approx((100 + 110 + 60) / 2.5)
    assert t.exit_price == pytest.approx((60 + 260) / 2.5)
    # gross = total sold - total bought while flat at both ends
    assert t.gross_pnl == pytest.approx((60 + 260) - (100 + 110 + 60))


def test_flip_closes_one_trade_and_opens_the_next_splitting_size_and_fee(
    store: RunStore,
) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0, fee=1.0)
    b.fill(T0 + HOUR, "sell", 3.0, 110.0, fee=3.0, reason="flip", stop=120.0)
    b.fill(T0 + 2 * HOUR, "buy", 2.0, 105.0, fee=0.5, reason="cover")
    first, second = _trades(store, b.done())
    assert (first.side, first.size, first.exit_reason) == ("long", 1.0, "flip")
    assert first.fees == pytest.approx(1.0 + 1.0)  # 1/3 of the flip fee
    assert first.gross_pnl == pytest.approx(10.0)
    assert first.close_ts == T0 + HOUR
    assert (second.side, second.size, second.open_ts) == ("short", 2.0, T0 + HOUR)
    assert second.entry_price == 110.0
    assert second.fees == pytest.approx(2.0 + 0.5)  # 2/3 of the flip fee
    assert second.gross_pnl == pytest.approx(10.0)
    # the flipping fill's planned stop belongs to the trade it opens
    assert second.r_multiple == pytest.approx((10.0 - 2.5) / (10.0 * 2.0))
    assert first.r_multiple is None
    assert [first.trade_id, second.trade_id] == [1, 2]


def test_open_trade_at_end_is_not_a_row_and_symbols_are_independent(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0)
    b.fill(T0 + 1, "sell", 1.0, 50.0, symbol="ETH-PERP")
    b.fill(T0 + 2, "sell", 1.0, 101.0)
    b.fill(T0 + 3, "buy", 1.0, 100.0)  # still open at the end
    (t,) = _trades(store, b.done())
    assert t.symbol == "BTC-PERP" and t.gross_pnl == pytest.approx(1.0)


def test_funding_at_a_fills_time_is_the_trade_whose_position_paid_it(store: RunStore) -> None:
    """A payment at a fill's time came before that time's fills (its row's position is
    the one before them) or after them (another position): a backtest's candle fills
    come before the settlement at the candle's close."""
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0)
    b.funding(T0, -0.25)  # on the long just opened: this trade's
    b.funding(T0 + 8 * HOUR, -1.0)
    b.funding(T0 + 8 * HOUR, -0.5, symbol="ETH-PERP")  # other symbol
    b.funding(T0 + 16 * HOUR, -2.0)  # on the long, before the closing fill: this trade's
    b.fill(T0 + 16 * HOUR, "sell", 1.0, 110.0)
    b.funding(T0 + DAY, -4.0)  # after the close
    b.fill(T0 + 2 * DAY, "sell", 1.0, 100.0)  # a short ...
    b.funding(T0 + 2 * DAY + 8 * HOUR, 1.0, position=-1.0)
    b.fill(T0 + 3 * DAY, "buy", 2.0, 100.0)  # ... flipped long
    b.funding(T0 + 3 * DAY, -8.0, position=1.0)  # after the flip: the long's
    b.fill(T0 + 4 * DAY, "sell", 1.0, 100.0)
    long, short, flipped = _trades(store, b.done())
    assert long.funding == pytest.approx(-3.25)
    assert long.net_pnl == pytest.approx(10.0 - 3.25)
    assert short.funding == pytest.approx(1.0)
    assert flipped.funding == pytest.approx(-8.0)


def test_a_trade_that_held_no_settlement_has_no_funding_not_a_rounding_residue(
    store: RunStore,
) -> None:
    """A short closed at a settlement that came after the flip's fills (so the long's):
    the short held none of the payments. Its funding was the difference of two running
    sums less the payment, -5.6e-17 in trades.csv, not 0."""
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0)
    b.funding(T0 + 8 * HOUR, 0.1)
    b.funding(T0 + 16 * HOUR, 0.2)
    b.fill(T0 + 20 * HOUR, "sell", 2.0, 100.0)  # flipped short
    b.fill(T0 + DAY, "buy", 2.0, 100.0)  # flipped long at the settlement's time
    b.funding(T0 + DAY, 0.3, position=1.0)  # after the flip: the long's
    b.fill(T0 + 2 * DAY, "sell", 1.0, 100.0)
    first, short, last = _trades(store, b.done())
    assert first.funding == pytest.approx(0.3)
    assert short.funding == 0.0
    assert last.funding == 0.3


def test_r_multiple_and_excursions(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 2.0, 100.0, fee=1.0, stop=95.0)
    b.fill(T0 + HOUR, "sell", 2.0, 110.0, fee=1.0)
    b.excursion(T0, T0 + HOUR, -3.0, 25.0)
    b.fill(T0 + 2 * HOUR, "sell", 1.0, 100.0, stop=100.0)  # zero stop distance: no R
    b.fill(T0 + 3 * HOUR, "buy", 1.0, 90.0)
    first, second = _trades(store, b.done())
    assert first.r_multiple == pytest.approx(18.0 / (5.0 * 2.0))
    assert (first.mae, first.mfe) == (-3.0, 25.0)
    assert second.r_multiple is None
    assert (second.mae, second.mfe) == (None, None)


def test_liquidation_exit_is_flagged(store: RunStore) -> None:
    b = RunBuilder(store)
    b.fill(T0, "buy", 1.0, 100.0)
    b.fill(T0 + HOUR, "sell", 1.0, 80.0, reason="liquidation", liquidation=True, fee=0.5)
    (t,) = _trades(store, b.done())
    assert t.exit_reason == "liquidation" and t.is_liquidation
    assert t.net_pnl == pytest.approx(-20.5)


def _fill(seq: int, side: str, size: float, price: float, after: float) -> FillRecord:
    return FillRecord(
        seq=seq,
        ts=T0 + seq,
        symbol="BTC-PERP",
        side=side,
        size=size,
        price=price,
        fee=0.0,
        liquidity="taker",
        client_id=f"c{seq}",
        correlation_id="k",
        reason="signal",
        is_liquidation=False,
        stop_price=None,
        realized_pnl=0.0,
        position_after=after,
        entry_after=price,
    )


def test_position_carried_in_from_a_resumed_run_is_not_a_trade() -> None:
    fills = [
        _fill(1, "sell", 1.0, 100.0, 1.0),  # was long 2 before the run: reduce to 1
        _fill(2, "sell", 3.0, 100.0, -2.0),  # flips: opens a short 2 inside the run
        _fill(3, "buy", 2.0, 90.0, 0.0),
    ]
    (t,) = round_trips(fills)
    assert (t.side, t.size, t.open_ts, t.close_ts) == ("short", 2.0, T0 + 2, T0 + 3)


def test_float_dust_counts_as_flat() -> None:
    fills = [
        _fill(1, "buy", 0.1, 100.0, 0.1),
        _fill(2, "buy", 0.2, 100.0, 0.1 + 0.2),
        _fill(3, "sell", 0.3, 101.0, (0.1 + 0.2) - 0.3),  # 5.5e-17, not a short
        _fill(4, "buy", 1.0, 100.0, 1.0),
        _fill(5, "sell", 1.0, 100.0, 0.0),
    ]
    trades = round_trips(fills)
    assert [t.side for t in trades] == ["long", "long"]


def _excursions_by_definition(
    trades: list[Trade], rows: list[ExcursionRecord]
) -> list[tuple[float | None, float | None]]:
    """Each trade in close order takes the first row not yet taken with its (symbol, open,
    close), else the first with its (symbol, close)."""
    taken: set[int] = set()
    out: list[tuple[float | None, float | None]] = []
    for t in trades:
        found = None
        for exact in (True, False):
            for i, r in enumerate(rows):
                same = (r.symbol, r.close_ts) == (t.symbol, t.close_ts)
                if i not in taken and same and (r.open_ts == t.open_ts or not exact):
                    found = i
                    break
            if found is not None:
                break
        if found is None:
            out.append((None, None))
        else:
            taken.add(found)
            out.append((rows[found].mae, rows[found].mfe))
    return out


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(("BTC-PERP", "ETH-PERP")),
            st.sampled_from((0, 0, 1)),  # often several fills in one ms
            st.sampled_from((-3.0, -2.0, -1.0, 1.0, 2.0, 3.0)),
        ),
        max_size=40,
    ),
    data=st.data(),
)
def test_excursions_match_trades_as_defined(
    steps: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    position = {"BTC-PERP": 0.0, "ETH-PERP": 0.0}
    fills = []
    ts = T0
    for seq, (symbol, dt, signed) in enumerate(steps, start=1):
        ts += dt
        position[symbol] += signed
        fill = _fill(seq, "buy" if signed > 0 else "sell", abs(signed), 100.0, position[symbol])
        fills.append(replace(fill, ts=ts, symbol=symbol))
    trades = round_trips(fills)
    keys = [(t.symbol, t.open_ts, t.close_ts) for t in trades]
    kinds = st.tuples(st.sampled_from(("BTC-PERP", "ETH-PERP")),
                      st.integers(T0, ts), st.integers(T0, ts))  # fmt: skip
    if keys:  # a trade's own key, or its close with another open (matched by close only)
        kinds |= st.sampled_from(keys)
        kinds |= st.sampled_from(keys).map(lambda k: (k[0], k[1] - 1, k[2]))
    picked = data.draw(st.lists(kinds, max_size=45))
    if data.draw(st.booleans()):  # the store's order: by close time
        picked.sort(key=lambda k: k[2])
    rows = [ExcursionRecord(s, o, c, -float(i), float(i)) for i, (s, o, c) in enumerate(picked)]
    matched = round_trips(fills, excursions=rows)
    assert [(t.mae, t.mfe) for t in matched] == _excursions_by_definition(trades, rows)
    assert [replace(t, mae=None, mfe=None) for t in matched] == trades
