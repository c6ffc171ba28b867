"""The account lock is named by the account, not by how its host is spelled: a bot
given `exchange.base_url` with a trailing slash or upper-case letters took a lock of
its own and traded the account beside the bot holding it."""

from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.storage.account_lock import AccountBusy, AccountLock


def live(**exchange: Any) -> Settings:
    keys = {"api_key": "key-a", "api_secret": "secret", "base_url": "http://127.0.0.1:8900"}
    return load_settings("canary", {"exchange": keys | exchange})


def test_one_host_spelled_two_ways_is_one_account() -> None:
    with AccountLock(live()):
        for spelled in ("http://127.0.0.1:8900/", "HTTP://127.0.0.1:8900"):
            with pytest.raises(AccountBusy, match="in use by another bot"):
                AccountLock(live(base_url=spelled)).acquire()


def test_another_key_or_host_is_another_account() -> None:
    with AccountLock(live()):
        others = [live(api_key="key-b"), live(base_url="http://127.0.0.1:8901"),
                  live(base_url=None, demo=True)]  # fmt: skip
        for other in others:
            with AccountLock(other):
                pass
