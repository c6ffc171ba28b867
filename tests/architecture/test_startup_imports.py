"""Every command pays for what the CLI imports at start-up (the backtest bench's
start-up row, each optimisation worker, each crash-test restart). Libraries only some
commands need are imported by those commands, not by `perps_bot.cli.app`."""

import subprocess
import sys

HEAVY = ("openai", "httpx", "optuna", "ray", "plotly", "aiohttp", "ccxt")


def test_the_cli_imports_no_library_only_some_commands_need() -> None:
    probe = (
        f"import sys, perps_bot.cli.app;print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
