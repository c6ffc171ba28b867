"""SPEC 1: the canary trades real money without a promotion to prod because it trades
under hard caps: at most 50 USDT per order and per position, at most 2x leverage. The
caps follow the profile's name (what the prod promotion gate follows), wherever its
file is and whichever layer sets a value: a canary may lower them, never raise them
(the notional ones where its orders are real)."""

from pathlib import Path

import pytest

from perps_bot.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_order_notional", 51), ("max_position_notional", 5000), ("max_leverage", 3)],
)
def test_every_layer_above_a_canary_cap_is_refused(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: float
) -> None:
    with pytest.raises(ConfigError, match=rf"risk\.{key} .*canary") as info:
        load_settings("canary", {"risk": {key: value}})
    assert "\n" not in str(info.value)
    monkeypatch.setenv(f"PERPS_BOT__RISK__{key.upper()}", str(value))
    with pytest.raises(ConfigError, match=rf"risk\.{key} .*canary"):
        load_settings("canary")


@pytest.mark.parametrize("name", ["canary.yaml", "elsewhere.yaml"])
def test_a_canary_file_of_any_name_or_place_has_the_caps(tmp_path: Path, name: str) -> None:
    """A file named canary.yaml (no `profile:` line) or any file with `profile: canary`
    left out of `risk:` trades at the built-in defaults (10000 USDT per order)."""
    path = tmp_path / "x" / name
    path.parent.mkdir()
    line = "" if name == "canary.yaml" else "profile: canary\n"
    path.write_text(f"{line}broker: {{kind: ccxt}}\nrisk: {{max_leverage: 2}}\n")
    with pytest.raises(ConfigError, match=r"risk\.max_order_notional 10000: .*canary"):
        load_settings(str(path))


def test_a_paper_canary_may_try_larger_sizes_but_not_more_leverage(in_repo: Path) -> None:
    """No money is at stake in a dry run; the 2x ceiling holds in every mode."""
    dry = {"run": {"dry_run": True}, "risk": {"max_order_notional": 100}}
    assert load_settings("canary", dry).risk.max_order_notional == 100
    with pytest.raises(ConfigError, match=r"risk\.max_leverage 3: .*at most 2x"):
        load_settings("canary", dry | {"risk": {"max_leverage": 3}})


def test_a_canary_may_lower_its_caps(in_repo: Path) -> None:
    lower = {"max_order_notional": 20, "max_position_notional": 40, "max_leverage": 1}
    assert load_settings("canary", {"risk": lower}).risk.max_order_notional == 20
    other = load_settings("prod", {"risk": {"max_order_notional": 5000}})
    assert other.risk.max_order_notional == 5000  # not the canary: the prod gate's


@pytest.mark.parametrize(
    "account",
    [{"default_leverage": 5}, {"default_leverage": 2, "leverage": {"ETH-PERP": 10}}],
)
def test_a_canary_cannot_set_more_than_2x_on_the_exchange(
    in_repo: Path, account: dict[str, object]
) -> None:
    """The live venue sets each symbol's account leverage on the exchange at start: an
    isolated position there at 5x sits 5x closer to its liquidation than the canary's
    2x, whatever its risk.max_leverage says of the account's exposure."""
    with pytest.raises(ConfigError, match=r"account\.\S*leverage\S* (5|10): .*at most 2x"):
        load_settings("canary", {"account": account})
    assert load_settings("prod", {"account": account}).account.leverage_for("ETH-PERP") > 2
