"""What a new user runs first must work (issue 10 findings, each failing on the old
main): every built-in strategy on the run command, any working directory, an unknown
symbol refused, an unreachable exchange given up on, SIGTERM honoured."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without PERPS_BOT__* settings, logs sent to `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    return env | {"PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs")} | extra


def _cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.integration
@pytest.mark.parametrize("strategy", ["sma_cross", "mean_reversion", "funding_carry"])
def test_every_builtin_strategy_runs_on_the_dev_profile(tmp_path: Path, strategy: str) -> None:
    result = _cli(
        "--profile", "dev", "--dev-fast", "--duration", "2h", "--strategy", strategy,
        "--db", str(tmp_path / "db.sqlite"), cwd=REPO, env=_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout


def test_unknown_symbol_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _cli(
        "--profile", "dev", "--dev-fast", "--duration", "1h", "--symbols", "BTC-PREP",
        "--db", str(tmp_path / "db.sqlite"), cwd=REPO, env=_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "BTC-PREP" in lines[0], result.stderr
    assert not (tmp_path / "db.sqlite").exists() or "BTC-PREP" not in result.stdout


@pytest.mark.integration
def test_commands_work_from_any_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    data = SHARED_DATA / "futures" / "XRP_USDT_USDT-1h-futures.feather"
    if not data.exists():
        pytest.skip(f"shared test data missing: {data}")
    backtest = _cli(
        "backtest", "--data", str(data), "--symbol", "XRP-PERP", "--strategy", "sma_cross",
        cwd=elsewhere, env=_env(tmp_path),
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr
    run = _cli(
        "--profile", "dev", "--dev-fast", "--duration", "1h", cwd=elsewhere, env=_env(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    shown = _cli("config", "show", "--profile", "canary", cwd=elsewhere, env=_env(tmp_path))
    assert shown.returncode == 0 and "binanceusdm" in shown.stdout, shown.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_unreachable_exchange_is_given_up_after_the_startup_timeout(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        PERPS_BOT__EXCHANGE__BASE_URL=f"http://127.0.0.1:{_closed_port()}",
        PERPS_BOT__EXCHANGE__STARTUP_TIMEOUT="2s",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "perps_bot", "--profile", "canary", "--dry-run",
         "--duration", "5s", "--db", str(tmp_path / "db.sqlite")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        waiting = proc.stdout.readline()  # said once the imports are done: the clock starts
        connecting = time.monotonic()
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("a dry run against a closed port did not end within 120 s")
    # from the line on: the 2 s, one failed request and the exit; far less than the 30 s
    # default even on a machine busy enough to take many times longer to import
    assert time.monotonic() - connecting < 20, (waiting, stdout, stderr)
    assert "connecting to binanceusdm" in waiting and "2s" in waiting, waiting
    assert proc.returncode == 2, (stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "exchange" in lines[0] and "2s" in lines[0], stderr


@pytest.mark.integration
def test_sigterm_stops_a_run_that_waits_for_the_exchange(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        PERPS_BOT__EXCHANGE__BASE_URL=f"http://127.0.0.1:{_closed_port()}",
    )  # the default startup timeout is far longer than this test
    proc = subprocess.Popen(
        [sys.executable, "-m", "perps_bot", "--profile", "canary", "--dry-run",
         "--db", str(tmp_path / "db.sqlite")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        waiting = proc.stdout.readline()  # the run says it is waiting for the exchange
        assert "connecting to binanceusdm" in waiting, waiting
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("SIGTERM did not stop the run within 20 s")
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PERPS_BOT__ACCOUNT__DEFAULT_LEVERAGE", "1.5", "account.default_leverage 1.5"),
        ("PERPS_BOT__ACCOUNT__LEVERAGE", '{"ETH-PERP": 0.5}', "account.leverage.ETH-PERP 0.5"),
    ],
)
def test_an_exchange_run_refuses_leverage_the_exchange_cannot_set(
    tmp_path: Path, variable: str, value: str, named: str
) -> None:
    # the live venue sets whole leverage (1.5 became 1x on the exchange) while the books
    # margined every position at 1.5x: more room than the exchange gives, a liquidation
    # price too far away, and a dry run approving orders live refuses for margin
    env = _env(
        tmp_path,
        PERPS_BOT__EXCHANGE__BASE_URL=f"http://127.0.0.1:{_closed_port()}",
        PERPS_BOT__EXCHANGE__STARTUP_TIMEOUT="2s",
        **{variable: value},
    )
    result = _cli("--profile", "canary", "--dry-run", "--duration", "5s",
                  "--db", str(tmp_path / "db.sqlite"), cwd=REPO, env=env)  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0] and "whole" in lines[0], result.stderr
