"""Run log lines carry the run id; backtests have their own file name."""

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot.monitoring import HotLog, close_logging, log_file_name, setup_logging


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    close_logging()


def test_every_line_of_a_run_carries_its_run_id_on_both_paths(log_dir: Path) -> None:
    setup_logging(log_dir, "INFO", max_bytes=0, backups=1, run_id="R-1", file_name="x.log")
    logger = logging.getLogger("perps_bot.run")
    HotLog(logger).info("FILL | PnL total=1")
    logger.warning("standard")
    for handler in logging.getLogger("perps_bot").handlers:
        handler.flush()
    lines = (log_dir / "x.log").read_text().splitlines()
    pattern = re.compile(r"^\S+ \S+ (INFO   |WARNING) \[R-1\] perps_bot\.run: (.*)$")
    assert [pattern.match(line).group(2) for line in lines] == [  # type: ignore[union-attr]
        "FILL | PnL total=1",
        "standard",
    ]


def test_backtests_log_to_their_own_file() -> None:
    assert log_file_name("backtest") == "perps_bot.backtest.log"
    assert {log_file_name(k) for k in ("dev", "live", "dry_run")} == {"perps_bot.log"}
