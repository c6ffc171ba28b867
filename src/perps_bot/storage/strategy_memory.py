"""What strategies ask to keep across restarts (strategies.base.Memory): keys by scope
(a profile and portfolio, or a run) and namespace. Its own table, created on first use."""

import time

from perps_bot.storage.store import RunStore

_TABLE = """CREATE TABLE IF NOT EXISTS strategy_memory (
    scope TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, namespace, key))"""


class StoredMemory:
    """strategies.base.Memory in the run store, under `scope`."""

    def __init__(self, store: RunStore, scope: str) -> None:
        self._store = store
        self._scope = scope

    def recall(self, namespace: str) -> set[str]:
        with self._store.transaction():
            self._store.connection.execute(_TABLE)
        rows = self._store.execute(
            "SELECT key FROM strategy_memory WHERE scope=? AND namespace=?",
            (self._scope, namespace),
        )
        return {str(row[0]) for row in rows}

    def remember(self, namespace: str, key: str) -> None:
        with self._store.transaction():
            self._store.connection.execute(_TABLE)
            self._store.connection.execute(
                "INSERT OR IGNORE INTO strategy_memory VALUES (?, ?, ?, ?)",
                (self._scope, namespace, key, int(time.time() * 1000)),
            )


def remembered(store: RunStore, scopes: list[str], namespace: str) -> list[tuple[str, str]]:
    """(scope, key) of every key of `namespace` under one of `scopes`, in the order they
    were stored: what a report shows of a run's memory (the plans it made). A database
    no strategy ever wrote to has no table: nothing."""
    found = store.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='strategy_memory'"
    )
    if not found or not scopes:
        return []
    marks = ",".join("?" * len(scopes))
    rows = store.execute(
        f"SELECT scope, key FROM strategy_memory WHERE namespace=? AND scope IN ({marks})"
        " ORDER BY created_at, key",
        (namespace, *scopes),
    )
    return [(str(scope), str(key)) for scope, key in rows]
