"""The account lock is named by the account, not by how its host is spelled: a bot
given `exchange.base_url` with a trailing slash or upper-case letters took a lock of
its own and traded the account beside the bot holding it. Nor by the host at all: one
API key is one account whether the bot reaches it at the exchange's own host, given
as `base_url` or not, or through a proxy (a bot without `base_url` and one with
`base_url=https://fapi.binance.com` both traded it). Only a loopback host (the
emulator, each one an account of its own) is part of the account."""

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


def test_another_key_or_emulator_is_another_account() -> None:
    with AccountLock(live()):
        others = [live(api_key="key-b"), live(base_url="http://127.0.0.1:8901"),
                  live(base_url="http://localhost:8900/x"), live(base_url=None)]  # fmt: skip
        for other in others:
            with AccountLock(other):
                pass


@pytest.mark.parametrize(
    ("held", "other"),
    [
        ({"base_url": None}, {"base_url": "https://fapi.binance.com"}),
        ({"base_url": None}, {"base_url": "https://binance-proxy.example.com:8443/"}),
        ({"base_url": None, "demo": True}, {"base_url": "https://demo-fapi.binance.com"}),
        ({"base_url": "https://fapi.binance.com"}, {"base_url": None, "demo": True}),
    ],
)
def test_one_key_at_any_exchange_host_is_one_account(
    held: dict[str, Any], other: dict[str, Any]
) -> None:
    with AccountLock(live(**held)), pytest.raises(AccountBusy, match="in use by another bot"):
        AccountLock(live(**other)).acquire()
