"""`data download --symbols BTC-PERP,BTC-PERP` (a symbol listed twice, as a pasted list
can): every file was downloaded twice, the second time to nothing ("0 new rows").
Refused in one line, as every other command's --symbols refuses it."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.cli.app import main
from perps_emulator import EmulatorServer
from tests.feeds.test_download import klines_starts


async def test_a_symbol_listed_twice_is_refused_before_any_download(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    args = ["data", "download", "--symbols", "ETH-PERP, BTC-PERP,ETH-PERP", "--since",
            "2024-01-01", "--until", "2024-01-01T02:00", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)
    out, err = capsys.readouterr()
    assert done.value.code == 2 and err.count("\n") == 1, out + err
    assert "--symbols" in err and "'ETH-PERP' is listed twice" in err, err
    assert klines_starts(emulator) == [] and not list(tmp_path.iterdir())
