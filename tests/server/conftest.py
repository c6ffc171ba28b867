"""Fixtures of the session server's tests."""

from pathlib import Path

import pytest


@pytest.fixture
def server_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path) -> None:
    """Sessions log to the test's own folder (used with `usefixtures`)."""
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
