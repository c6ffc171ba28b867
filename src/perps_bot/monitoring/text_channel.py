"""The queue between a backtest's run-log and journal lines and the process that writes
them (monitoring.text_process): what the main thread does per line while the lines are
written behind is one tuple appended here.

An item is a tuple whose first field says what it is:
- `TEXT`: (TEXT, handler, line), a run-log line already formatted (a record the
  standard logging path formatted), for the file handler numbered `handler`;
- `RECIPE`: (RECIPE, handlers, now, prefix, recipe, args), a run-log line of the
  per-fill path (`HotLog.emit`) not yet formatted: its message is
  `hot_log.RECIPES[recipe](*args)`, its time `now` (the wall clock when it was logged);
- `JOURNAL`: (JOURNAL, journal, ts, correlation_id, recipe, args), a journal line of
  the journal numbered `journal` (`Journal.views`) not yet built: its event's fields
  are `journal_lines.BUILDERS[recipe](*args)` (`Journal.emit`);
- `JOURNAL_RAW`: (JOURNAL_RAW, line), a journal line's bytes (`Journal.write`).

Compiled with the run log's and the journal's per-fill paths (perps_bot.compiled): `add` is a C call
from it.
"""

from collections.abc import Callable
from typing import Any

TEXT = 1
RECIPE = 2
JOURNAL = 3
JOURNAL_RAW = 4

Item = tuple[Any, ...]


class TextChannel:
    """Items in the order they were logged; `on_due` is called when `due` are held
    (it hands them on and sets the next `due`)."""

    def __init__(self, on_due: Callable[["TextChannel"], None], due: int) -> None:
        self.items: list[Item] = []
        self.due = due
        self._on_due = on_due

    def add(self, item: Item) -> None:
        items = self.items
        items.append(item)
        if len(items) >= self.due:
            self._on_due(self)

    def take(self) -> list[Item]:
        """The items held, which the channel no longer holds."""
        items = self.items
        self.items = []
        return items
