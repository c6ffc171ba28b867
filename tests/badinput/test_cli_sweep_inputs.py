"""Bad input found by the CLI sweep that the CLI used to take silently or end as an
internal error: a --timerange strptime misread, a boolean for a numeric strategy
param or a JSON price, a key given twice in a profile, a profile section that is not a mapping
(dropped unseen once a flag set one of its keys), and unbounded port and Monte Carlo
counts. Each is one line and exit code 2 (tests.badinput.harness)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import HEADER, MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000  # 2024-01-01
DEV_RUN = ["--dev-fast", "--duration", "1m"]
Args = list[str]


def _backtest(tmp: Path, *flags: str) -> Args:
    data = write_rows(tmp / "c.csv", candle_rows(60, T0, MINUTE, 100.0))
    return ["backtest", "--data", str(data), "--symbol", "BTC-PERP", "--strategy", "sma_cross",
            "--no-progress", *flags]  # fmt: skip


def _file(tmp: Path, name: str, content: str) -> Args:
    """A backtest of the data file `name` holding `content`."""
    (tmp / name).write_text(content)
    return ["backtest", "--data", str(tmp / name), "--symbol", "BTC-PERP", "--strategy",
            "sma_cross", "--no-progress"]  # fmt: skip


def _profile(tmp: Path, text: str, *flags: str) -> Args:
    """A dev run (flags: its own, default DEV_RUN) on the profile `text`."""
    (tmp / "p.yaml").write_text(text)
    return ["--profile", str(tmp / "p.yaml"), *(flags or DEV_RUN)]


def _show(tmp: Path, text: str) -> Args:
    """`config show` of the profile `text`."""
    (tmp / "p.yaml").write_text(text)
    return ["config", "show", "--profile", str(tmp / "p.yaml")]


CASES: dict[str, tuple[Callable[[Path], Args], str]] = {
    # --timerange: strptime reads fields of varying width (20241301 was 2024-01-03 00:01)
    "--timerange month 13": (lambda t: _backtest(t, "--timerange", "20241301-"), "'20241301'"),
    "--timerange epoch seconds": (
        lambda t: _backtest(t, "--timerange", "1704067200-1704070000"),
        "is not a date YYYYMMDD",
    ),
    "--timerange 7 digits": (lambda t: _backtest(t, "--timerange", "2024011-"), "'2024011'"),
    "--timerange before 1970": (lambda t: _backtest(t, "--timerange", "19600101-"), "1970"),
    "--timerange after the data": (
        lambda t: _backtest(t, "--timerange", "20300101-"),
        "between 2030-01-01T00:00:00.000Z and the end",
    ),
    # a boolean where a strategy param is a number
    "--param fast=true": (lambda t: _backtest(t, "--param", "fast=true"), "a number, not true"),
    "--param stop_pct=false": (
        lambda t: _backtest(t, "--param", "stop_pct=false"),
        "a number, not false",
    ),
    "profile param fast: yes": (
        lambda t: _profile(t, "strategy:\n  params: {fast: yes}\n"),
        "bad param 'fast': a number",
    ),
    # keys given twice
    "section given twice": (
        lambda t: _profile(t, "risk: {max_drawdown: 0.1}\nrun: {seed: 1}\nrisk: {}\n"),
        "line 3: invalid YAML (duplicate key 'risk')",
    ),
    "setting given twice": (
        lambda t: _show(t, "run:\n  seed: 1\n  seed: 2\n"),
        "duplicate key 'seed'",
    ),
    # a section that is not a mapping, with a flag setting one of its keys
    "run: 5 with --seed": (
        lambda t: _profile(t, "run: 5\n", *DEV_RUN, "--seed", "3"),
        "run: must be a mapping of keys (got 5)",
    ),
    "strategy: text with --param": (
        lambda t: _profile(t, "strategy: sma_cross\n", *DEV_RUN, "--param", "fast=5"),
        "strategy: must be a mapping",
    ),
    # data files
    "JSON price true": (
        lambda t: _file(t, "c.json", f"[[{T0},true,1,1,1,1],[{T0 + MINUTE},1,1,1,1,1]]"),
        "row 1: true or false where a number belongs",
    ),
    "CSV header and no rows": (lambda t: _file(t, "c.csv", HEADER + "\n"), "c.csv: no data rows"),
    "fractional ms timestamp": (
        lambda t: _file(t, "c.csv", f"{HEADER}\n{T0}.5,1,1,1,1,1\n{T0 + MINUTE},1,1,1,1,1\n"),
        "timestamp 1704067200000.5 is not integer ms",
    ),
    # bounds of integer flags
    "serve --port 99999": (lambda t: ["serve", "--port", "99999"], "--port"),
    "serve --port -1": (lambda t: ["serve", "--port", "-1"], "--port"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sweep_case_is_one_line_and_exit_2(workdir: Path, case: str) -> None:
    make, fragment = CASES[case]
    line = assert_bad_input(run_main(make(workdir)), case)
    assert fragment in line, f"{case}: {fragment!r} not in {line!r}"


def test_env_variable_does_not_hide_a_broken_section(workdir: Path) -> None:
    """The workdir sets PERPS_BOT__RUN__LOG_DIR: with it, `run: [1]` was replaced
    by the variable's section and the run went ahead on the defaults."""
    line = assert_bad_input(run_main(_profile(workdir, "run: [1]\n")))
    assert "run: must be a mapping of keys" in line


def test_merge_keys_may_still_be_overridden(workdir: Path) -> None:
    """`<<` merges are how YAML shares values: overriding a merged key is no duplicate."""
    text = "run:\n  <<: {seed: 1, duration: 1m}\n  seed: 2\n"
    outcome = run_main(_show(workdir, text))
    assert outcome.code == 0, outcome.err
    assert "seed: 2" in outcome.out


def test_valid_timeranges_still_cut_the_data(workdir: Path) -> None:
    db = ["--db", str(workdir / "r.sqlite")]
    for text in ("20240101-20240102", "202401010010-202401010040", "-20240102"):
        outcome = run_main(_backtest(workdir, "--timerange", text, *db))
        assert outcome.code == 0, (text, outcome.err)


def test_monte_carlo_count_is_bounded(workdir: Path) -> None:
    """10**11 paths asked numpy for 745 GB: an internal MemoryError, exit 1."""
    db = str(workdir / "r.sqlite")
    assert run_main(["--dev-fast", "--duration", "6h", "--db", db]).code == 0
    line = assert_bad_input(run_main(["report", "--db", db, "--monte-carlo", str(10**11)]))
    assert "--monte-carlo" in line
