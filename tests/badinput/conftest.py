"""The scratch folder every bad-input test runs in."""

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working folder; logs and databases of any run go below it, and
    `afile` is a file where a test needs a folder that cannot be created."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "afile").write_text("a file, not a folder")
    return tmp_path
