"""Logs, the event journal and the console live view.

The dashboard and the HTTP API of a run are the session server's (`perps_bot.server`),
imported only by runs that serve them (aiohttp costs a tenth of a second at start-up).
"""

from perps_bot.monitoring.hot_log import HotLog, pnl_text
from perps_bot.monitoring.journal import Journal, NullJournal
from perps_bot.monitoring.journal_event import JournalEvent
from perps_bot.monitoring.live_view import LiveView
from perps_bot.monitoring.logs import (
    LOGGER_NAME,
    LineCounter,
    close_logging,
    hosted_run_log,
    log_file_name,
    quiet_logging,
    setup_logging,
    tag_run_log,
)

__all__ = [
    "LOGGER_NAME",
    "HotLog",
    "Journal",
    "JournalEvent",
    "LineCounter",
    "LiveView",
    "NullJournal",
    "close_logging",
    "hosted_run_log",
    "log_file_name",
    "pnl_text",
    "quiet_logging",
    "setup_logging",
    "tag_run_log",
]
