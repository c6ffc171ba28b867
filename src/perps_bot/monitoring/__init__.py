"""Logs, the event journal and the console live view.

The dashboard and the HTTP API of a run are the session server's (`perps_bot.server`),
imported only by runs that serve them (aiohttp costs a tenth of a second at start-up).
The names below load on first use (PEP 562): the process writing a backtest's run log
(monitoring.text_process) imports the log's files, the journal and the line recipes,
not the live view.
"""

from typing import TYPE_CHECKING

from perps_bot.lazy_exports import lazy_exports

if TYPE_CHECKING:
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

_LOGS = "perps_bot.monitoring.logs"
_LAZY = {
    "HotLog": "perps_bot.monitoring.hot_log",
    "pnl_text": "perps_bot.monitoring.hot_log",
    "Journal": "perps_bot.monitoring.journal",
    "NullJournal": "perps_bot.monitoring.journal",
    "JournalEvent": "perps_bot.monitoring.journal_event",
    "LiveView": "perps_bot.monitoring.live_view",
    "LOGGER_NAME": _LOGS,
    "LineCounter": _LOGS,
    "close_logging": _LOGS,
    "hosted_run_log": _LOGS,
    "log_file_name": _LOGS,
    "quiet_logging": _LOGS,
    "setup_logging": _LOGS,
    "tag_run_log": _LOGS,
}

__getattr__ = lazy_exports(__name__, _LAZY, globals())

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
