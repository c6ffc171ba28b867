"""The run log: the hot INFO path writes what the standard path would, rotates by
size, and steps aside when anything else listens to the logger."""

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot.config import ConfigError, load_settings
from perps_bot.monitoring import HotLog, close_logging, setup_logging
from perps_bot.monitoring.logs import LineCounter, about, portfolio_logger

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO   |WARNING) perps_bot\.run: (.*)$")


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    close_logging()


def _lines(log_dir: Path) -> list[str]:
    for handler in logging.getLogger("perps_bot").handlers:
        handler.flush()
    return (log_dir / "perps_bot.log").read_text(encoding="utf-8").splitlines()


def test_hot_lines_have_the_standard_format_and_order(log_dir: Path) -> None:
    counter = setup_logging(log_dir, "INFO", max_bytes=0, backups=1)
    logger = logging.getLogger("perps_bot.run")
    hot = HotLog(logger)
    logger.info("standard one")
    hot.info("FILL x | PnL total=1")
    logger.warning("a warning")
    hot.info("EQUITY | PnL total=2")
    lines = _lines(log_dir)
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [(m.group(1).strip(), m.group(2)) for m in matches if m] == [
        ("INFO", "standard one"),
        ("INFO", "FILL x | PnL total=1"),
        ("WARNING", "a warning"),
        ("INFO", "EQUITY | PnL total=2"),
    ]
    assert (counter.warnings, counter.errors) == (1, 0)


def test_hot_lines_rotate_by_size(log_dir: Path) -> None:
    setup_logging(log_dir, "INFO", max_bytes=2_000, backups=2)
    hot = HotLog(logging.getLogger("perps_bot.run"))
    for i in range(100):
        hot.info(f"EQUITY {i:03d} | PnL " + "x" * 60)
    lines = _lines(log_dir)
    assert (log_dir / "perps_bot.log.1").exists()
    assert lines[-1].endswith("x" * 60) and "EQUITY 099" in lines[-1]
    assert (log_dir / "perps_bot.log").stat().st_size <= 2_000 + 200


def test_a_profile_without_backups_is_refused() -> None:
    """With no backup file the log handler never rotates (the standard library's
    rule): `logging.max_bytes` would not bound the log at all."""
    with pytest.raises(ConfigError, match=r"logging\.backups") as info:
        load_settings("dev", {"logging": {"backups": 0}})
    assert "\n" not in str(info.value)
    assert load_settings("dev", {"logging": {"backups": 1}}).logging.backups == 1


def test_other_listeners_and_levels_get_the_standard_path(
    log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging(log_dir, "INFO", max_bytes=0, backups=1)
    logger = logging.getLogger("perps_bot.run")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="perps_bot.run"):
            HotLog(logger).info("seen by the extra handler")
    finally:
        logger.removeHandler(caplog.handler)
    assert "seen by the extra handler" in caplog.messages
    assert any(line.endswith("seen by the extra handler") for line in _lines(log_dir))

    setup_logging(log_dir, "WARNING", max_bytes=0, backups=1)
    HotLog(logging.getLogger("perps_bot.run")).info("not at WARNING")
    assert not any("not at WARNING" in line for line in _lines(log_dir))


def test_a_portfolios_lines_are_its_own_and_the_runs() -> None:
    """A run with several portfolios (SPEC 10): a line about some portfolios counts for
    them (and the run), a line about none (the venue, the feed) for every portfolio."""
    counter = LineCounter()
    logger = logging.getLogger("perps_bot.test_counts")
    logger.addHandler(counter)
    try:
        logger.error("venue down")
        logger.error("halted a and b", extra=about("a", "b"))
        logger.warning("a only", extra=about("a"))
        portfolio_logger("perps_bot.test_counts.strategy", "b").error("b's strategy")
    finally:
        logger.removeHandler(counter)
    assert counter.lines() == (3, 1)
    assert counter.lines("a") == (2, 1)
    assert counter.lines("b") == (3, 0)
    assert counter.lines("c") == (1, 0)


def test_a_counters_state_adds_to_the_counts_of_the_process_resuming() -> None:
    """A resumed run's counts are its earlier parts' (from the checkpoint) and its own."""
    before, after = LineCounter(), LineCounter()
    logger = logging.getLogger("perps_bot.test_counts_state")
    for counter in (before, after):
        logger.addHandler(counter)
        try:
            logger.error("a's", extra=about("a"))
            logger.warning("the venue's")
        finally:
            logger.removeHandler(counter)
    after.restore_state(before.state())
    assert after.lines() == (2, 2) and after.lines("a") == (2, 2) and after.lines("b") == (0, 2)
