"""Profiles load into typed settings with the precedence of SPEC 1:
defaults < profile file < environment < CLI flags."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import ConfigError, load_settings
from perps_bot.domain import RunMode
from tests.harness.settings import CANARY_RISK


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_shipped_profiles_validate(in_repo: Path) -> None:
    dev = load_settings("dev")
    canary = load_settings("canary")
    prod = load_settings("prod")
    assert dev.broker.kind == "mock" and dev.run.symbols == ["BTC-PERP", "ETH-PERP"]
    assert dev.account.initial_balance == 100_000
    assert dev.mock.spread_bps == 10 and dev.mock.slippage_bps == 5
    assert dev.mock.fill_probability == 0.95 and dev.run.log_level == "DEBUG"
    assert dev.strategy.size_for("BTC-PERP") == 0.001
    assert canary.broker.kind == "ccxt" and canary.exchange.name == "binanceusdm"
    assert canary.risk.max_order_notional == 50 and canary.risk.max_position_notional == 50
    assert canary.risk.max_leverage == 2
    assert canary.run.symbols == ["ETH-PERP"]  # BTC minimum order value exceeds the caps
    assert prod.broker.kind == "ccxt" and prod.is_live


def test_precedence_defaults_file_env_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _profile(tmp_path, "risk: {max_leverage: 4, max_order_notional: 123}\n")
    assert load_settings(str(path)).risk.max_leverage == 4  # file beats default (10)
    assert load_settings(str(path)).risk.max_orders_per_minute == 60  # default kept
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_LEVERAGE", "3")
    settings = load_settings(str(path))
    assert settings.risk.max_leverage == 3  # env beats file
    assert settings.risk.max_order_notional == 123  # sibling from file kept
    cli = load_settings(str(path), {"risk": {"max_leverage": 2}})
    assert cli.risk.max_leverage == 2  # CLI beats env


def test_cli_params_merge_into_profile_params(in_repo: Path) -> None:
    settings = load_settings("dev", {"strategy": {"params": {"fast": 5}}})
    assert settings.strategy.params == {"fast": 5, "slow": 30}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("risk: {max_levrage: 3}\n", "risk.max_levrage: unknown key"),
        ("risk: {max_leverage: -1}\n", "risk.max_leverage: Input should be greater than 0"),
        ("run: {duration: soon}\n", "run.duration"),
        ("bogus_section: {}\n", "bogus_section: unknown key"),
        ("instruments: {BTC-PERP: {tiers: [[100, 0.01, 0]]}}\n", "must start at notional 0"),
        ("account: {tiers: {}}\n", "account.tiers: unknown key"),
        ("mock: {spread_bps: 30000}\n", "mock.spread_bps: Input should be less than 20000"),
        ("mock: {slippage_bps: 10000}\n", "mock.slippage_bps: Input should be less than"),
        ("mock: {book_levels: 101, level_spacing_bps: 100}\n", "deepest bid at or below 0"),
        ("run: [1, 2\n", "invalid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_bad_profiles_are_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = _profile(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_bad_env_value_names_the_key(in_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_LEVERAGE", "lots")
    with pytest.raises(ConfigError, match=r"risk\.max_leverage"):
        load_settings("dev")


def test_missing_profile_lists_known_ones(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match="known: canary, dev, prod"):
        load_settings("staging")


def test_secrets_masked_and_out_of_config_hash(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__API_KEY", "k-123")
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__API_SECRET", "s-456")
    settings = load_settings("prod")
    assert settings.exchange.api_key is not None
    assert settings.exchange.api_key.get_secret_value() == "k-123"
    dumped = str(settings.masked_dict())
    assert "k-123" not in dumped and "s-456" not in dumped and "********" in dumped
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__API_KEY", "other")
    assert load_settings("prod").config_hash() == settings.config_hash()


def test_config_hash_tracks_behaviour(in_repo: Path) -> None:
    base = load_settings("dev").config_hash()
    assert load_settings("dev").config_hash() == base
    assert load_settings("dev", {"run": {"seed": 7}}).config_hash() != base


def test_profile_params_apply_only_to_the_profiles_own_strategy() -> None:
    own = load_settings("dev", {"strategy": {"name": "sma_cross"}})
    assert own.strategy.params == {"fast": 10, "slow": 30}
    other = load_settings("dev", {"strategy": {"name": "mean_reversion"}})
    assert other.strategy.params == {}
    flags = load_settings(
        "dev", {"strategy": {"name": "mean_reversion", "params": {"lookback": 9}}}
    )
    assert flags.strategy.params == {"lookback": 9}


def test_built_in_profiles_load_from_any_folder_and_a_local_one_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings("canary").exchange.name == "binanceusdm"
    local = tmp_path / "config" / "profiles"
    local.mkdir(parents=True)
    caps = "max_order_notional: 50, max_position_notional: 50"  # the canary's hard caps
    (local / "canary.yaml").write_text(
        f"broker: {{kind: ccxt}}\nrisk: {{max_leverage: 1.5, {caps}}}\n"
        "account: {default_leverage: 1.5}\n"
    )
    assert load_settings("canary").risk.max_leverage == 1.5


@pytest.mark.parametrize(
    ("profile", "overrides", "message"),
    [
        ("dev", {"run": {"dry_run": True}}, "--dry-run needs the ccxt broker"),
        ("canary", {"run": {"dev_fast": True}}, "--dev-fast needs the mock broker"),
        ("dev", {"run": {"mode": "live"}}, "run.mode live is set by its command"),
    ],
)
def test_mode_checks_are_config_errors(
    profile: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(profile, overrides)


def test_the_mode_is_decided_once_from_broker_and_flags() -> None:
    assert load_settings("dev").mode is RunMode.DEV
    assert load_settings("canary").mode is RunMode.LIVE
    assert load_settings("canary", {"run": {"dry_run": True}}).mode is RunMode.DRY_RUN
    assert load_settings("canary", {"run": {"mode": "backtest"}}).mode is RunMode.BACKTEST


def test_the_environment_cannot_rename_the_profile(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile's name decides the prod promotion gate and the database: a
    PERPS_BOT__PROFILE variable turned `--profile prod` into a run named dev."""
    monkeypatch.setenv("PERPS_BOT__PROFILE", "dev")
    with pytest.raises(ConfigError, match=r"PERPS_BOT__PROFILE.*--profile") as info:
        load_settings("prod")
    assert "\n" not in str(info.value)
    monkeypatch.delenv("PERPS_BOT__PROFILE")
    monkeypatch.setenv("perps_bot__profile", "dev")  # variables are read case-insensitively
    with pytest.raises(ConfigError, match="--profile"):
        load_settings("prod")


def test_a_profile_chosen_by_name_keeps_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local prod.yaml copied from canary.yaml said `profile: canary`: `--profile prod`
    then ran live under the name canary, without the prod promotion gate."""
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "config" / "profiles"
    local.mkdir(parents=True)
    (local / "prod.yaml").write_text("profile: canary\nbroker: {kind: ccxt}\n")
    said = r"prod\.yaml says profile: 'canary'.*chosen as 'prod'"
    with pytest.raises(ConfigError, match=said) as info:
        load_settings("prod")
    assert "\n" not in str(info.value)
    (local / "prod.yaml").write_text("profile: prod\nbroker: {kind: ccxt}\n")
    assert load_settings("prod").profile == "prod"
    (local / "prod.yaml").write_text("broker: {kind: ccxt}\n")
    assert load_settings("prod").profile == "prod"
    (local / "live").mkdir()  # a name with a folder: the profile is its last part
    (local / "live" / "prod.yaml").write_text("broker: {kind: ccxt}\n")
    assert load_settings("live/prod").profile == "prod"
    named = tmp_path / "mine.yaml"  # a path may name its profile
    named.write_text(f"profile: canary\nbroker: {{kind: ccxt}}\n{CANARY_RISK}")
    assert load_settings(str(named)).profile == "canary"


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("api_key", "PERPS_BOT__EXCHANGE__API_KEY"),
        ("api_secret", "PERPS_BOT__EXCHANGE__API_SECRET"),
    ],
)
def test_exchange_keys_only_from_the_environment(tmp_path: Path, key: str, variable: str) -> None:
    """SPEC 1: API keys only from the environment, never from files; a profile holding
    one was accepted (and `config show` masked it, hiding that it came from a file)."""
    path = _profile(tmp_path, f"broker: {{kind: ccxt}}\nexchange: {{{key}: in-a-file-123}}\n")
    with pytest.raises(ConfigError, match=rf"exchange\.{key}: set it in the environment") as info:
        load_settings(str(path))
    assert variable in str(info.value) and "in-a-file-123" not in str(info.value)
    assert "\n" not in str(info.value)


def test_profile_params_apply_only_to_the_profiles_own_strategy_named_by_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The environment is a layer above the profile, like the flags: a strategy named
    there ran with the profile's sma_cross params and failed on `fast`."""
    monkeypatch.setenv("PERPS_BOT__STRATEGY__NAME", "mean_reversion")
    assert load_settings("dev").strategy.params == {}
    monkeypatch.setenv("PERPS_BOT__STRATEGY__PARAMS__LOOKBACK", "9")
    assert load_settings("dev").strategy.params == {"lookback": "9"}
    monkeypatch.setenv("PERPS_BOT__STRATEGY__NAME", "sma_cross")
    monkeypatch.delenv("PERPS_BOT__STRATEGY__PARAMS__LOOKBACK")
    assert load_settings("dev").strategy.params == {"fast": 10, "slow": 30}
    # a flag beats the environment
    flags = load_settings("dev", {"strategy": {"name": "sma_cross"}})
    assert flags.strategy.params == {"fast": 10, "slow": 30}
    monkeypatch.setenv("PERPS_BOT__STRATEGY__NAME", "mean_reversion")
    assert load_settings("dev", {"strategy": {"name": "sma_cross"}}).strategy.params == {
        "fast": 10,
        "slow": 30,
    }
    monkeypatch.delenv("PERPS_BOT__STRATEGY__NAME")
    monkeypatch.setenv("PERPS_BOT__STRATEGY", '{"name": "mean_reversion"}')  # a JSON section
    assert load_settings("dev").strategy.params == {}


@pytest.mark.parametrize(
    "how",
    [
        {"PERPS_BOT__RISK__MAX_LEVERAGE": "20"},
        {"PERPS_BOT__RISK": '{"max_leverage": 5}'},
        {},  # a flag (init override) below
    ],
)
def test_canary_trades_at_most_2x_leverage(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch, how: dict[str, str]
) -> None:
    """SPEC 1: canary has hard caps, at most 2x leverage; a variable or a flag raised it
    to any value (config show printed max_leverage: 20.0 for canary)."""
    for key, value in how.items():
        monkeypatch.setenv(key, value)
    overrides = {} if how else {"risk": {"max_leverage": 3}}
    with pytest.raises(ConfigError, match=r"risk\.max_leverage .*canary.* at most 2x") as info:
        load_settings("canary", overrides)
    assert "\n" not in str(info.value)


def test_canary_leverage_may_be_lowered_and_other_profiles_are_free(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_LEVERAGE", "1.5")
    assert load_settings("canary").risk.max_leverage == 1.5
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_LEVERAGE", "20")
    assert load_settings("prod").risk.max_leverage == 20
    assert load_settings("dev").risk.max_leverage == 20


@pytest.mark.parametrize(
    "variable",
    ["PERPS_BOT__RISKS__MAX_LEVERAGE", "PERPS_BOT__RISK_MAX_LEVERAGE", "perps_bot__acount__x"],
)
def test_a_variable_of_no_section_is_refused_not_ignored(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """An unknown key is a one-line error (SPEC 1); a variable naming no section (a typo
    such as a single underscore after the section) was ignored without a word, and the
    run went on with the limit the user meant to change."""
    monkeypatch.setenv(variable, "3")
    with pytest.raises(ConfigError, match="unknown section") as info:
        load_settings("dev")
    message = str(info.value)
    assert variable in message and "risk" in message and "\n" not in message


def test_the_session_servers_variables_are_not_settings_sections(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPS_BOT__SERVER__TOKEN", "t")
    monkeypatch.setenv("PERPS_BOT__SERVER__ALLOWED_HOSTS", "example.org")
    assert load_settings("dev").profile == "dev"


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize("key", ["params", "risk"])
def test_a_portfolios_floats_are_finite_too(tmp_path: Path, value: str, key: str) -> None:
    """`strategy.params` refuses NaN (it would reach the strategy as a threshold no price
    crosses); a portfolio's own params took it without a word."""
    text = f"portfolios: [{{id: a, strategy: sma_cross, {key}: {{max_leverage: {value}}}}}]\n"
    with pytest.raises(ConfigError, match="finite number") as info:
        load_settings(str(_profile(tmp_path, text)))
    assert f"{key}.max_leverage" in str(info.value) and "\n" not in str(info.value)


def test_a_portfolios_params_keep_their_types(tmp_path: Path) -> None:
    text = "portfolios: [{id: a, strategy: s, params: {n: 3, x: 0.5, flag: true, mode: z}}]\n"
    params = load_settings(str(_profile(tmp_path, text))).portfolios[0].params
    assert params == {"n": 3, "x": 0.5, "flag": True, "mode": "z"}
    assert [type(v) for v in params.values()] == [int, float, bool, str]


def test_the_readmes_alerts_section_loads(tmp_path: Path) -> None:
    """YAML 1.1 reads a key `on` (also yes, no, off) as a boolean: the README's alerts
    section (`on: [...]`) was refused with "alerts.1: Keys should be strings (got True)"."""
    text = (
        "alerts:\n"
        "  urls:\n"
        "    - json://127.0.0.1:8080/hooks/perps            # any HTTP endpoint, JSON body\n"
        "  on: [halt, run_end]\n"
        "  max_per_minute: 20\n"
    )
    assert load_settings(str(_profile(tmp_path, text))).alerts.on == ["halt", "run_end"]
    params = "strategy: {name: s, params: {yes: 1, no: 2, off: 3, y: 4, true: 5}}\n"
    loaded = load_settings(str(_profile(tmp_path, params))).strategy.params
    assert loaded == {"yes": 1, "no": 2, "off": 3, "y": 4, "true": 5}


def test_yaml_booleans_stay_booleans_as_values(tmp_path: Path) -> None:
    text = "run: {dev_fast: yes, live_view: off}\nbroker: {kind: mock}\n"
    run = load_settings(str(_profile(tmp_path, text))).run
    assert run.dev_fast is True and run.live_view is False


def _readme_profiles() -> list[str]:
    """The README's YAML blocks that are profiles (sections of the config at the top)."""
    import re

    import yaml

    from perps_bot.config import Settings

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if set(yaml.safe_load(b) or {}) <= set(Settings.model_fields)]


def test_every_profile_the_readme_shows_loads(tmp_path: Path) -> None:
    """The README's portfolios example (a portfolio lowering max_drawdown to 0.1 under
    the default reducing_drawdown of 0.15) was refused as copied."""
    blocks = _readme_profiles()
    assert len(blocks) >= 4 and any(b.startswith("portfolios:") for b in blocks)
    for block in blocks:
        load_settings(str(_profile(tmp_path, block)))


def test_a_portfolios_risk_that_does_not_fit_says_so_once(tmp_path: Path) -> None:
    text = "portfolios: [{id: carry, strategy: sma_cross, risk: {max_drawdown: 0.1}}]\n"
    with pytest.raises(ConfigError) as info:
        load_settings(str(_profile(tmp_path, text)))
    message = str(info.value)
    assert "portfolios.carry.risk: reducing_drawdown" in message and "risk.risk" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("strategy: {params: {fast: [1, 2]}}\n", "strategy.params.fast: Input should be a"),
        ("strategy: {params: {fast: .nan}}\n", "strategy.params.fast: Input should be a finite"),
        (
            "portfolios: [{id: a, strategy: s, params: {fast: .inf}}]\n",
            "portfolios.0.params.fast: Input should be a finite number (got inf)",
        ),
    ],
)
def test_a_bad_param_value_names_its_key_not_pydantics_union(
    tmp_path: Path, text: str, expected: str
) -> None:
    """A param is a number, text or true/false: pydantic reports one error per kind it
    tried, each under a path ending in its own name for the kind
    (`strategy.params.fast.function-before[_not_a_bool(), float]: ... [+3 more]`)."""
    with pytest.raises(ConfigError) as info:
        load_settings(str(_profile(tmp_path, text)))
    message = str(info.value)
    assert expected in message, message
    assert "[" not in message.split(":")[1] and "more]" not in message, message


@pytest.mark.parametrize(
    ("variable", "section"),
    [
        ("PERPS_BOT__STRATEGY__ORDER_SIZE__BTC-PERP", "PERPS_BOT__STRATEGY__ORDER_SIZE"),
        ("PERPS_BOT__ACCOUNT__LEVERAGE__ETH-PERP", "PERPS_BOT__ACCOUNT__LEVERAGE"),
        ("PERPS_BOT__INSTRUMENTS__BTC-PERP__TAKER_BPS", "PERPS_BOT__INSTRUMENTS"),
        ("PERPS_BOT__MOCK__SYMBOLS__BTC-PERP__DRIFT", "PERPS_BOT__MOCK__SYMBOLS"),
    ],
)
def test_a_variable_naming_a_symbol_is_refused_not_lowercased(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch, variable: str, section: str
) -> None:
    """Variables are read case-insensitively, so the symbol in
    PERPS_BOT__STRATEGY__ORDER_SIZE__BTC-PERP=5 became `btc-perp`, which no symbol is:
    BTC-PERP kept the profile's size without a word. Symbols go in JSON instead."""
    monkeypatch.setenv(variable, "5")
    with pytest.raises(ConfigError, match="symbol names are case-sensitive") as info:
        load_settings("dev")
    assert section in str(info.value) and "\n" not in str(info.value)


def test_symbols_in_a_json_variable_keep_their_case(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPS_BOT__STRATEGY__ORDER_SIZE", '{"BTC-PERP": 0.5}')
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__LEVERAGE", '{"ETH-PERP": 2}')
    settings = load_settings("dev")
    assert settings.strategy.size_for("BTC-PERP") == 0.5
    assert settings.account.leverage_for("ETH-PERP") == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERPS_BOT__EXCHANGE", '{"api_key": 987654321}'),
        ("PERPS_BOT__EXCHANGE", '{"api_secret": 987654321}'),
        ("PERPS_BOT__ALERTS__URLS", "[987654321]"),
    ],
)
def test_a_bad_secret_is_not_shown_in_the_error(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A key given as a number is refused, and the line said `(got 987654321)`: the key
    on stderr and in every log that keeps it."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match="valid string") as info:
        load_settings("dev")
    assert "987654321" not in str(info.value)
