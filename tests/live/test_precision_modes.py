"""An exchange whose ccxt client counts prices and sizes in significant digits
(precisionMode SIGNIFICANT_DIGITS: bitfinex) has no fixed tick or step: a precision of
5 means five significant digits, not a tick of 5. Preflight read it as a tick of 5 and
every price was rounded to a multiple of it; it is refused in one line now."""

from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from perps_bot.config import load_settings
from perps_bot.exchange import client as client_module
from perps_bot.instruments import InstrumentError
from perps_bot.orchestrator.preflight import preflight
from perps_emulator import EmulatorServer

pytestmark = pytest.mark.integration


async def test_significant_digits_precision_is_refused_in_one_line(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    create = client_module.create_exchange

    def significant_digits(*args: Any, **kwargs: Any) -> Any:
        made = create(*args, **kwargs)
        made.precisionMode = ccxt_async.SIGNIFICANT_DIGITS
        return made

    monkeypatch.setattr(client_module, "create_exchange", significant_digits)
    settings = load_settings(
        "canary",
        {
            "run": {"dry_run": True, "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url},
        },
    )
    with pytest.raises(InstrumentError, match="significant digits") as refused:
        pre = await preflight(settings, say=lambda _: None)
        await pre.close()
    assert "\n" not in str(refused.value)
