"""Options given before a subcommand (`perps-bot --profile canary runs list`): --profile
and --db reach every subcommand that has them; any other is refused in one line. Before,
most subcommands dropped them silently: a backtest went to dev's database, `runs list`
read dev's runs."""

from pathlib import Path

import pytest

from perps_bot.cli.app import main
from tests.backtest.candle_files import daily


@pytest.fixture
def workdir(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 1, out, err


def _candles(workdir: Path) -> Path:
    closes = [100 + (k % 7) * 3 - (k % 5) * 2 for k in range(30)]
    bars = [(c, c + 2, c - 2, c + 1) for c in closes]
    return daily(
        workdir / "btc.csv", [(float(o), float(h), float(lo), float(c)) for o, h, lo, c in bars]
    )


def _backtest(candles: Path) -> list[str]:
    return ["backtest", "--data", str(candles), "--symbol", "BTC-PERP", "--strategy",
            "sma_cross", "--param", "fast=2", "--param", "slow=4", "--no-progress"]  # fmt: skip


def test_db_before_backtest_and_runs_list_is_the_database_used(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workdir / "mine.sqlite"
    code, out, err = _cli(["--db", str(db), *_backtest(_candles(workdir))], capsys)
    assert code == 0, err
    assert db.exists()
    assert not (workdir / "data" / "perps_bot.dev.sqlite").exists()
    code, out, err = _cli(["--db", str(db), "runs", "list", "--format", "json"], capsys)
    assert code == 0, err
    assert '"backtest"' in out


def test_profile_before_runs_list_reads_that_profiles_database(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workdir / "elsewhere.sqlite"
    profile = workdir / "mine.yaml"
    profile.write_text(f"profile: dev\nrun:\n  database: {db}\n")
    code, _, err = _cli(
        ["backtest", "--profile", str(profile), *_backtest(_candles(workdir))[1:]], capsys
    )
    assert code == 0, err
    code, out, err = _cli(["--profile", str(profile), "runs", "list", "--format", "json"], capsys)
    assert code == 0, err
    assert '"backtest"' in out
    explicit = workdir / "missing.sqlite"
    code, _, err = _cli(["--profile", str(profile), "runs", "list", "--db", str(explicit)], capsys)
    assert code == 2 and str(explicit) in err  # the subcommand's own option wins


@pytest.mark.parametrize(
    ("args", "flag", "command"),
    [
        (
            ["--seed", "3", "backtest", "--data", "x.csv", "--symbol", "BTC-PERP"],
            "--seed",
            "backtest",
        ),
        (["--dev-fast", "report"], "--dev-fast", "report"),
        (["--strategy", "sma_cross", "runs", "list"], "--strategy", "runs"),
        (["--db", "x.sqlite", "data", "download", "--symbols", "BTC-PERP"], "--db", "data"),
        (["--profile", "dev", "serve"], "--profile", "serve"),
    ],
)
def test_other_options_before_a_subcommand_are_one_line_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], flag: str, command: str
) -> None:
    code, _, err = _cli(args, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert f"{flag} before '{command}'" in lines[0]
    assert not (workdir / "data").exists()
