"""What a checkpoint pickles of the engine's state comes back equal, compiled or not
(perps_bot.domain.pickled): a compiled class's `__new__` runs its `__init__`, so each
spells out how it is rebuilt. Here through the public classes, mid-use."""

import math
import pickle

from perps_bot.domain import Side
from perps_bot.ledger.position import Position
from perps_bot.metrics.trade_records import OpenTrade
from perps_bot.orchestrator.protection import Levels
from perps_bot.risk.state import RiskState


def test_a_position_comes_back_with_every_slot() -> None:
    position = Position("BTC-PERP", 5.0, [(0.0, 0.004, 0.0), (1e6, 0.01, 6000.0)], 100.0)
    position.size_f, position.entry_f, position.liq = 0.5, 99.5, math.nan
    copy = pickle.loads(pickle.dumps(position))
    assert type(copy) is Position
    for name in ("symbol", "leverage", "tiers", "mark", "size", "cost", "size_f", "entry_f"):
        assert getattr(copy, name) == getattr(position, name), name
    assert math.isnan(copy.liq) and copy.mmr_max == position.mmr_max


def test_value_classes_in_a_checkpoint_come_back_equal() -> None:
    trade = OpenTrade("ETH-PERP", -1, 1_000, None, entry_qty=2.0, entry_notional=6000.0)
    for value in (
        RiskState("HALTED", "drawdown 21%", drawdown_halt="drawdown 21%", peak=1e5, day=3),
        Levels(Side.SELL, 101.0, None),
        trade,
    ):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and type(copy) is type(value)
