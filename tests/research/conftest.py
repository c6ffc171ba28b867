from pathlib import Path

import pytest

from tests.research.helpers import write_candles


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Logs, databases and studies in a temp dir; the temp dir is the working dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(scope="session")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 days of BTC-PERP 1-minute candles (2,880)."""
    return write_candles(tmp_path_factory.mktemp("candles") / "btc.feather", 2 * 1440)
