"""A `walkforward` run given its windows by hand (`--param windows=...`) follows the rule
`perps-bot walkforward` does: window edges fall on the edges of the bars the strategy
sees. A window ending inside a bar held its last position until that bar closed, in the
time after the window (or in the next window's), without a word."""

import json
from pathlib import Path

import pytest

from tests.research.helpers import START_MS, run_cli, write_candles
from tests.research.test_walkforward import LOOSE_PROFILE

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def _backtest(workdir: Path, windows: list[list[object]], *flags: str) -> list[str]:
    data = write_candles(workdir / "btc.feather", 2 * 1440, seed=11)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    return ["backtest", "--profile", "loose.yaml", "--data", str(data), "--symbol",
            "BTC-PERP", "--strategy", "walkforward", "--param", "strategy=sma_cross",
            "--param", f"windows={json.dumps(windows)}", *flags]  # fmt: skip


@pytest.mark.parametrize(
    ("windows", "flags", "says"),
    [
        pytest.param([[START_MS + HOUR, START_MS + HOUR + 90 * MINUTE, {"fast": 2, "slow": 5}]],
                     ["--timeframe", "1h"], "windows[0] end 2024-01-01T02:30", id="end mid-bar"),
        pytest.param([[START_MS + DAY // 2, START_MS + DAY, {}],
                      [START_MS + DAY + 30 * MINUTE, START_MS + DAY + 3 * HOUR, {}]],
                     ["--timeframe", "1h"], "windows[1] start 2024-01-02T00:30",
                     id="start mid-bar"),
        pytest.param([[START_MS + 30_000, START_MS + HOUR, {}]], [],
                     "windows[0] start 2024-01-01T00:00:30", id="inside a candle"),
    ],
)  # fmt: skip
def test_hand_given_windows_off_the_bars_are_one_line_and_exit_2(
    workdir: Path,
    windows: list[list[object]],
    flags: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(_backtest(workdir, windows, *flags), capsys)
    assert code == 2, err
    assert says in err and "is not on an edge of the" in err and "use " in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_hand_given_windows_on_the_bars_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    windows = [
        [START_MS + 6 * HOUR, START_MS + DAY, {"fast": 2, "slow": 5}],
        [START_MS + DAY + HOUR, START_MS + DAY + 9 * HOUR, {"fast": 3, "slow": 6}],
    ]
    code, _, err = run_cli(_backtest(workdir, windows, "--timeframe", "1h"), capsys)
    assert code == 0, err
