"""A replay of a capture (SPEC 14) fills a resting order as the exchange would have: not
on a book's `last` printed before the order existed. Measured on main: the probe's
limit buy at the best bid (99.97), sent while the last trade was at 99.96, filled at the
next unchanged book of the replay (touch: last <= limit), though nothing had traded since;
now it rests until a public trade at or through its price comes with a book."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import BookSnapshot, PublicTrade, Side
from perps_bot.storage.capture import CaptureWriter
from tests.drift.dry import PROBE
from tests.drift.replayed import replayed_fills

BIDS, ASKS = [(99.97, 5.0), (99.96, 5.0)], [(99.99, 5.0), (100.0, 5.0)]
CONFIG: dict[str, dict[str, Any]] = {
    "strategy": {
        "name": PROBE,
        "params": {"every": 3},
        "timeframe": "1m",
        "order_size": {"ETH-PERP": 0.1},
    },
    "run": {"symbols": ["ETH-PERP"]},
    "mock": {"fill_probability": 1.0, "slippage_bps": 0.0},
}

#: the columns this file's tests compare the replayed fills on
COLUMNS = "ts, side, price, liquidity"


def capture(folder: Path, model: str, trade: PublicTrade | None) -> None:
    """A dry run's capture under the fill `model`: five books of an unchanged market whose
    last trade (99.96) is older than the capture; the probe sends its limit buy at the
    third; `trade` comes with the fifth."""
    config = {**CONFIG, "mock": {**CONFIG["mock"], "fill_model": model}}
    writer = CaptureWriter(folder, {"kind": "dry_run", "config": config, "instruments": {}})
    for i in range(1, 6):
        trades = (trade,) if trade is not None and i == 5 else ()
        book = BookSnapshot(i * 1_000, "ETH-PERP", BIDS, ASKS, last=99.96, mark=99.98,
                            trades=trades)  # fmt: skip
        writer.events([book])
    writer.close()


@pytest.mark.parametrize("model", ["touch", "penetration"])
def test_a_replayed_resting_order_fills_on_a_trade_since_not_on_an_old_last(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    capture(tmp_path / "stale", model, None)
    assert replayed_fills(tmp_path / "stale", tmp_path / "stale.sqlite", COLUMNS) == []
    through = PublicTrade(4_500, 99.96, 0.3, Side.SELL)
    capture(tmp_path / "traded", model, through)
    fills = replayed_fills(tmp_path / "traded", tmp_path / "traded.sqlite", COLUMNS)
    assert fills == [(5_000, "buy", 99.97, "maker")]
