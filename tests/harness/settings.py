"""Settings of a dev run on the simulated clock driven by one of the harness's scripted
strategies (tests.harness.scripted), logs and data under a test's tmp folder."""

from pathlib import Path
from typing import Any

from perps_bot.config import Settings, load_settings


def scripted_settings(
    tmp_path: Path, strategy: str, script: str, symbol: str = "BTC-PERP", **sections: Any
) -> Settings:
    """`strategy`: a class of tests.harness.scripted, given `script`; `sections`: more
    profile sections (merged into the run's and the strategy's)."""
    overrides: dict[str, Any] = {
        "run": {
            "dev_fast": True,
            "symbols": [symbol],
            "log_dir": str(tmp_path / "logs"),
            "data_dir": str(tmp_path / "data"),
            "live_view": False,
        },
        "strategy": {
            "name": f"tests.harness.scripted:{strategy}",
            "params": {"symbol": symbol, "script": script},
        },
    }
    for key, value in sections.items():
        overrides[key] = overrides.get(key, {}) | value
    return load_settings("dev", overrides)


#: the `risk:` line of a local canary profile written by a test: the canary's hard caps
#: (config.canary: a live canary above them is refused)
CANARY_RISK = (
    "risk: {max_leverage: 2, max_order_notional: 50, max_position_notional: 50}\n"
    "account: {default_leverage: 2}\n"
)
