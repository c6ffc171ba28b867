"""Every command pays for what the CLI imports at start-up (the backtest bench's
start-up row, each optimisation worker, each crash-test restart). Libraries only some
commands need are imported by those commands, not by `perps_bot.cli.app`."""

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("openai", "httpx", "optuna", "ray", "plotly", "aiohttp", "ccxt")

#: what `--version` and `--help` must not load: each subcommand module imports the
#: product (and rich's views) inside its command, so a command loads what it uses
COMMAND_ONLY = (
    "pydantic",
    "numpy",
    "yaml",
    "pyarrow",
    "prometheus_client",
    "apprise",
    "rich.progress",
    "perps_bot.config",
    "perps_bot.feeds",
    "perps_bot.metrics.report",
    "perps_bot.metrics.drift",
    "perps_bot.monitoring",
    "perps_bot.orchestrator",
    "perps_bot.research",
    "perps_bot.server",
    "perps_bot.storage",
    "perps_bot.strategies",
)

#: what a backtest of a built-in strategy does not use: the capture writer (exchange-fed
#: runs only), the plan and LLM strategies, the servers and the live exchange
NOT_IN_A_BACKTEST = (
    "pyarrow.parquet",
    "perps_bot.storage.capture",
    "perps_bot.strategies.plan",
    "perps_bot.strategies.llm_plan",
    "perps_bot.strategies.llm_planner",
    "perps_bot.server",
    "perps_bot.metrics.drift",
    "perps_bot.exchange.client",
    "prometheus_client",
    "apprise",
    *HEAVY,
)


#: what a backtest's start-up loaded until issue 17 and a backtest of a CSV does not use:
#: pyarrow.compute (casts of feather files and timestamp columns), rich's live display,
#: bar and tables (a view that is drawn), the promotion gates (prod's preflight) and
#: the built-in strategies not run
NOT_AT_A_BACKTEST_START = (
    "pyarrow.compute",
    "rich.live",
    "rich.progress",
    "rich.table",
    "perps_bot.metrics.promotion",
    "perps_bot.metrics.walkforward",
    "perps_bot.metrics.drift_gate",
    "perps_bot.strategies.mean_reversion",
    "perps_bot.strategies.funding_carry",
)


def _loaded(setup: str, names: tuple[str, ...], cwd: Path | None = None) -> list[str]:
    """The `names` in sys.modules after `setup` (the probe's last line of output)."""
    probe = f"import sys\n{setup}\nprint(' '.join(m for m in {names!r} if m in sys.modules))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=cwd, env=env
    )
    lines = out.stdout.splitlines()
    return lines[-1].split() if lines else []


def test_the_cli_imports_no_library_only_some_commands_need() -> None:
    assert _loaded("import perps_bot.cli.app", HEAVY) == []


def test_the_cli_imports_no_product_module_only_some_commands_need() -> None:
    assert _loaded("import perps_bot.cli.app", COMMAND_ONLY) == []


def test_a_backtest_loads_neither_the_capture_writer_nor_unused_strategies() -> None:
    setup = (
        "import perps_bot.cli.backtest, perps_bot.cli.market_data, perps_bot.orchestrator.runner;"
        "from perps_bot.strategies import load_strategy;load_strategy('sma_cross')"
    )
    assert _loaded(setup, NOT_IN_A_BACKTEST) == []


def test_the_backtest_command_starts_without_what_it_does_not_use(tmp_path: Path) -> None:
    """Through the console script's entry point, a whole backtest of a CSV file."""
    csv = tmp_path / "candles.csv"
    rows = [
        f"{1_704_067_200_000 + i * 60_000},100,101,99,{100 + i % 7 * 0.1:.1f},1" for i in range(300)
    ]
    csv.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    args = ["backtest", "--data", str(csv), "--symbol", "BTC-PERP", "--strategy", "sma_cross",
            "--no-progress", "--db", str(tmp_path / "bt.sqlite")]  # fmt: skip
    setup = (
        "from perps_bot.cli.app import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code"
    )
    names = (*NOT_IN_A_BACKTEST, *NOT_AT_A_BACKTEST_START)
    assert _loaded(setup, names, cwd=tmp_path) == []


#: what a dev run (the mock exchange's random walk) does not use: candle files and their
#: readers (pyarrow: some 25 MB of a dev run's peak), the capture, the live exchange
NOT_IN_A_DEV_RUN = (
    "pyarrow",
    "perps_bot.feeds.historical",
    "perps_bot.feeds.merged",
    "perps_bot.feeds.readers",
    "perps_bot.storage.capture",
    *HEAVY,
)


def test_a_dev_run_loads_no_candle_file_reader(tmp_path: Path) -> None:
    """The engine checked `isinstance(feed, CandleFeed | MergedCandleFeed)` and imported
    both for it: every dev run loaded pyarrow (peak memory 80 -> 108 MB in the bench's
    dev rows). The feed says so itself now (`Feed.candle_history`)."""
    args = ["--profile", "dev", "--dev-fast", "--duration", "1h",
            "--db", str(tmp_path / "dev.sqlite")]  # fmt: skip
    setup = (
        "import os\n"
        f"os.environ['PERPS_BOT__RUN__LOG_DIR'] = {str(tmp_path / 'logs')!r}\n"
        "from perps_bot.cli.app import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code"
    )
    assert _loaded(setup, NOT_IN_A_DEV_RUN, cwd=tmp_path) == []
