"""Every command pays for what the CLI imports at start-up (the backtest bench's
start-up row, each optimisation worker, each crash-test restart). Libraries only some
commands need are imported by those commands, not by `perps_bot.cli.app`."""

import subprocess
import sys

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


def _loaded(setup: str, names: tuple[str, ...]) -> list[str]:
    probe = f"import sys;{setup};print(' '.join(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


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
