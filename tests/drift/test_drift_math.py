"""The drift report's arithmetic (metrics.drift) on hand-made orders, and its bad input:
one line, exit code 2."""

from pathlib import Path

import pytest
import yaml

from perps_bot.cli.app import main
from perps_bot.config import load_settings
from perps_bot.domain import BookSnapshot
from perps_bot.metrics.drift import ArrivalMids, OrderFacts, fill_rate, pair_orders, tracking_error
from perps_bot.orchestrator.replay import FillChoice


def order(cid: str, created: int, side: str = "buy", kind: str = "market", filled: float = 1.0,
          slip: float | None = 1.0) -> OrderFacts:  # fmt: skip
    return OrderFacts(cid, "main", "ETH-PERP", side, kind, 1.0, filled, 100.0, "filled", "",
                      created, created, slippage_bps=slip)  # fmt: skip


def test_orders_pair_with_the_nearest_of_the_same_kind_within_the_window() -> None:
    live = [order("l1", 1_000), order("l2", 2_000, side="sell"), order("l3", 9_000)]
    paper = [order("p0", 1_900), order("p1", 1_050), order("p2", 2_300, side="sell", slip=4.0),
             order("p9", 20_000)]  # fmt: skip
    pairs = pair_orders(live, paper)
    got = [(p.live and p.live.client_id, p.paper and p.paper.client_id) for p in pairs]
    assert got == [("l1", "p1"), (None, "p0"), ("l2", "p2"), ("l3", None), (None, "p9")]
    assert pairs[2].slippage_drift_bps == pytest.approx(3.0)
    assert pairs[3].slippage_drift_bps is None


def test_fill_rate_and_tracking_error() -> None:
    assert fill_rate([order("a", 0, filled=1.0), order("b", 0, filled=0.0)]) == 0.5
    assert fill_rate([]) is None
    live = ([0, 10, 20], [1_000.0, 1_010.0, 1_020.0])
    paper = ([5, 15], [100.0, 100.0])  # another initial balance: PnL is compared
    # live PnL 0, 10, 20; paper PnL (before its first row: 0) 0, 0, 0 -> RMS sqrt(500/3)
    assert tracking_error(live, paper, 1_000.0, 100.0) == pytest.approx((500 / 3) ** 0.5 / 1_000)
    assert tracking_error(live, ([], []), 1_000.0, 100.0) is None


def test_arrival_mid_is_the_last_book_at_or_before() -> None:
    books = [BookSnapshot(10, "ETH-PERP", [(99.0, 1.0)], [(101.0, 1.0)]),
             BookSnapshot(20, "ETH-PERP", [(101.0, 1.0)], [(103.0, 1.0)])]  # fmt: skip
    mids = ArrivalMids(books)
    assert (mids.at("ETH-PERP", 9), mids.at("ETH-PERP", 10), mids.at("ETH-PERP", 25)) == (
        None, 100.0, 102.0)  # fmt: skip
    assert mids.at("BTC-PERP", 25) is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "--capture", "nowhere"], "no capture at nowhere"),
        (["drift", "--live", "x", "--db", "missing.sqlite"], "no database at missing.sqlite"),
        (["replay", "--capture", "c", "--fill-model", "magic"], "'magic' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "choice",
    [
        FillChoice(fill_model="touch", slippage_bps=1.0, latency="empirical"),
        FillChoice(fill_model="queue", queue_model="power:2", latency="constant", latency_ms=40),
        FillChoice(fill_model="penetration", penetration_ticks=2, latency="empirical"),
    ],
)
def test_calibrated_profile_lines_load_as_a_profile_selecting_that_model(
    choice: FillChoice,
) -> None:
    """`drift --calibrate` prints the best model's `mock:` lines to paste into a profile.
    On main an empirical-latency winner printed `latency_model: empirical` without the
    samples it draws from, and the profile was refused (latency_model empirical needs
    latency_samples)."""
    lines = choice.profile_lines([30, 45, 61])
    mock = load_settings("dev", yaml.safe_load("\n".join(lines))).mock
    assert (mock.fill_model, mock.latency_model) == (choice.fill_model, choice.latency)
    assert mock.latency_samples == ([30, 45, 61] if choice.latency == "empirical" else [])
