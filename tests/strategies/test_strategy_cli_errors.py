"""A strategy the command line cannot run is one line on stderr and exit code 2 (never a
traceback or an 'internal error'): parameters out of range, and third-party classes that
do not keep the Strategy contract."""

import subprocess
import sys
from pathlib import Path

import pytest

RUN = ("--profile", "dev", "--dev-fast", "--duration", "1h")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *RUN, "--db", str(tmp_path / "db.sqlite"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        # 8 GB per symbol on main (a MemoryError: 'internal error', exit 1; a smaller
        # window than this one takes the machine's memory instead)
        (("--param", "slow=100000000000"), "bad param 'slow'"),
        (("--strategy", "mean_reversion", "--param", "lookback=100000000000"), "'lookback'"),
    ],
)
def test_a_window_too_long_to_hold_is_a_bad_param(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    _one_line(_cli(tmp_path, *args), fragment)
