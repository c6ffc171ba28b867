"""Loading strategies by name or import path, parameter errors, and the fingerprint."""

import importlib
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot.domain import Candle, OrderIntent, PerpsBotError, Side
from perps_bot.strategies import (
    BUILTIN_STRATEGIES,
    FundingCarry,
    MeanReversion,
    SmaCross,
    StrategyContext,
    StrategyError,
    load_strategy,
    strategy_fingerprint,
)
from perps_bot.strategies.llm_planner import LlmPlanner
from perps_bot.strategies.plan import PlanStrategy
from perps_bot.strategies.walkforward import WalkForward

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "tests.strategies.sample_strategy"


class FlatAccount:
    def position_size(self, symbol: str) -> float:
        return 0.0

    def entry_price(self, symbol: str) -> float:
        return 0.0

    def mark_price(self, symbol: str) -> float:
        return 0.0

    def equity(self) -> float:
        return 1_000.0

    def available_balance(self) -> float:
        return 1_000.0

    def leverage(self, symbol: str) -> float:
        return 1.0


def ctx() -> StrategyContext:
    return StrategyContext(["BTC-PERP"], FlatAccount(), lambda s: 0.25, logging.getLogger("t"))


TEMP_MODULES = (
    "broken_strat_mod",
    "needs_missing_dep",
    "cwd_only_strat",
    "edited_strat_mod",
    "edited_unloaded_mod",
)


@pytest.fixture
def isolated_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore sys.path, and forget the throwaway modules, after a test that imports them."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in TEMP_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def repo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))


# ---- loading ---------------------------------------------------------------------------


def test_builtin_names() -> None:
    expected = {
        "sma_cross": SmaCross,
        "mean_reversion": MeanReversion,
        "funding_carry": FundingCarry,
        "walkforward": WalkForward,
        "plan": PlanStrategy,
        "llm_planner": LlmPlanner,
    }
    assert dict(BUILTIN_STRATEGIES) == expected
    assert load_strategy("sma_cross") is SmaCross
    assert load_strategy(" funding_carry ") is FundingCarry


def test_load_by_import_path_and_run(repo_on_path: None) -> None:
    cls = load_strategy(f"{SAMPLE}:MyStrategy")
    assert cls.name == "my_strategy"
    strategy = cls({"level": 50}, ctx())
    bar = Candle(60_000, "BTC-PERP", 0, 60.0, 60.0, 60.0, 60.0, 1.0)
    assert list(strategy.on_event(bar)) == [
        OrderIntent("BTC-PERP", Side.BUY, 0.25, reason="above level")
    ]


def test_unknown_strategy_lists_builtins() -> None:
    with pytest.raises(StrategyError) as err:
        load_strategy("smacross")
    message = str(err.value)
    assert message.startswith(
        "unknown strategy 'smacross' (built in: funding_carry, llm_planner, mean_reversion, plan,"
        " sma_cross, walkforward)"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("no_such_pkg.strats:Thing", "cannot import strategy module 'no_such_pkg.strats'"),
        (f"{SAMPLE}:Missing", f"strategy module '{SAMPLE}' has no attribute 'Missing'"),
        (f"{SAMPLE}:not_a_strategy", f"'{SAMPLE}:not_a_strategy' is not a Strategy subclass"),
        (f"{SAMPLE}:Unfinished", "is abstract (implement: on_event)"),
        (f"{SAMPLE}:PlainParams", "Params must be a pydantic BaseModel subclass"),
        (":MyStrategy", "invalid strategy path ':MyStrategy'"),
        (f"{SAMPLE}:", "invalid strategy path"),
    ],
)
def test_bad_import_paths_are_one_line_errors(
    repo_on_path: None, isolated_path: None, path: str, expected: str
) -> None:
    with pytest.raises(StrategyError) as err:
        load_strategy(path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_broken_module_is_a_strategy_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_path: None
) -> None:
    (tmp_path / "broken_strat_mod.py").write_text("def oops(:\n    pass\n")
    (tmp_path / "needs_missing_dep.py").write_text("import surely_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StrategyError, match="error importing strategy module 'broken_strat_mod'"):
        load_strategy("broken_strat_mod:X")
    with pytest.raises(StrategyError, match=r"ModuleNotFoundError.*surely_not_installed_xyz"):
        load_strategy("needs_missing_dep:X")


def test_current_directory_is_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_path: None
) -> None:
    (tmp_path / "cwd_only_strat.py").write_text(
        textwrap.dedent(
            """
            from perps_bot.strategies import NO_SIGNALS, Strategy

            class Local(Strategy):
                name = "local"

                def on_event(self, event):
                    return NO_SIGNALS
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", str(tmp_path))]
    assert load_strategy("cwd_only_strat:Local").name == "local"


# ---- params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("sma_cross", {"fsat": 5}, "strategy 'sma_cross': unknown param 'fsat' (known: fast, slow"),
        ("sma_cross", {"fast": 0}, "strategy 'sma_cross': bad param 'fast': "),
        ("sma_cross", {"fast": "ten"}, "bad param 'fast': "),
        ("sma_cross", {"stop_pct": 1.5}, "bad param 'stop_pct'"),
        ("sma_cross", {"fast": 30, "slow": 10}, "fast (30) must be less than slow (10)"),
        ("mean_reversion", {"mode": "macd"}, "bad param 'mode'"),
        ("mean_reversion", {"lookback": 4, "entry_z": 2.0}, "entry_z (2.0) is never reached"),
        ("mean_reversion", {"exit_z": 3.0}, "exit_z (3.0) must be less than entry_z"),
        ("sma_cross", {"slow": 10**11}, "bad param 'slow': Input should be less than or equal"),
        ("sma_cross", {"fast": 2 * 10**6, "slow": 10**11}, "bad param 'fast'"),
        ("mean_reversion", {"lookback": 10**11}, "bad param 'lookback'"),
        ("funding_carry", {"threshold": -0.001}, "bad param 'threshold'"),
        ("funding_carry", {"exit_threshold": 0.01}, "exit_threshold (0.01) must not exceed"),
    ],
)
def test_bad_params_name_the_param(name: str, params: dict[str, object], expected: str) -> None:
    with pytest.raises(StrategyError) as err:
        load_strategy(name)(params, ctx())
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_params_from_strings_are_coerced() -> None:
    strategy = SmaCross({"fast": "5", "slow": "20", "stop_pct": "0.01"}, ctx())
    assert (strategy.params.fast, strategy.params.slow, strategy.params.stop_pct) == (5, 20, 0.01)


# ---- fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_stable_and_ignores_spelling_of_defaults() -> None:
    a = strategy_fingerprint(SmaCross, {}, "v1", timeframe="1m")
    assert len(a) == 16
    assert int(a, 16) >= 0
    assert a == strategy_fingerprint(SmaCross, {"fast": 10, "slow": 30}, "v1", timeframe="1m")
    assert a == strategy_fingerprint(SmaCross, {"slow": 30.0, "fast": 10}, "v1", timeframe="1m")


def test_fingerprint_changes_with_params_code_version_timeframe_and_strategy() -> None:
    base = strategy_fingerprint(SmaCross, {"fast": 10}, "v1", timeframe="1m")
    assert strategy_fingerprint(SmaCross, {"fast": 11}, "v1", timeframe="1m") != base
    assert (
        strategy_fingerprint(SmaCross, {"fast": 10, "stop_pct": 0.01}, "v1", timeframe="1m") != base
    )
    assert strategy_fingerprint(SmaCross, {"fast": 10}, "v2", timeframe="1m") != base
    assert strategy_fingerprint(SmaCross, {"fast": 10}, "v1", timeframe="1h") != base
    assert strategy_fingerprint(MeanReversion, {}, "v1", timeframe="1m") != strategy_fingerprint(
        FundingCarry, {}, "v1", timeframe="1m"
    )


def test_fingerprint_rejects_bad_params() -> None:
    with pytest.raises(StrategyError, match="unknown param 'nope'"):
        strategy_fingerprint(SmaCross, {"nope": 1}, "v1", timeframe="1m")


def test_fingerprint_is_the_same_in_a_fresh_interpreter() -> None:
    code = (
        "from perps_bot.strategies import SmaCross, strategy_fingerprint;"
        "print(strategy_fingerprint(SmaCross, {'fast': 7, 'slow': 21}, 'abc', timeframe='1m'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO
    )
    assert out.stdout.strip() == strategy_fingerprint(
        SmaCross, {"fast": 7, "slow": 21}, "abc", timeframe="1m"
    )


def test_fingerprint_changes_when_the_strategy_source_is_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_path: None
) -> None:
    source = textwrap.dedent(
        """
        from perps_bot.strategies import NO_SIGNALS, Strategy

        class Edited(Strategy):
            name = "edited"

            def on_event(self, event):
                return NO_SIGNALS
        """
    )
    module_file = tmp_path / "edited_strat_mod.py"
    module_file.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = strategy_fingerprint(
        load_strategy("edited_strat_mod:Edited"), {}, "v1", timeframe="1m"
    )
    assert before == strategy_fingerprint(
        load_strategy("edited_strat_mod:Edited"), {}, "v1", timeframe="1m"
    )

    module_file.write_text(source.replace("return NO_SIGNALS", "return ()  # edited"))
    importlib.reload(sys.modules["edited_strat_mod"])
    after = strategy_fingerprint(load_strategy("edited_strat_mod:Edited"), {}, "v1", timeframe="1m")
    assert after != before


def test_the_fingerprint_is_of_the_code_imported_not_of_the_file_edited_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_path: None
) -> None:
    """A long-running process (the session server) imports a strategy module once; a
    later session runs that code even after its file was edited. On main the
    fingerprint was read from the file: the later session recorded the edited file's
    fingerprint for the old code, and `promote` promoted code that never ran."""
    source = textwrap.dedent(
        """
        from perps_bot.strategies import NO_SIGNALS, Strategy

        class Edited(Strategy):
            name = "edited"
            version = 1

            def on_event(self, event):
                return NO_SIGNALS
        """
    )
    module_file = tmp_path / "edited_unloaded_mod.py"
    module_file.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    first = load_strategy("edited_unloaded_mod:Edited")
    before = strategy_fingerprint(first, {}, "v1", timeframe="1m")

    module_file.write_text(source.replace("version = 1", "version = 2"))
    again = load_strategy("edited_unloaded_mod:Edited")
    assert again is first and vars(again)["version"] == 1  # the code that runs
    assert strategy_fingerprint(again, {}, "v1", timeframe="1m") == before
    importlib.reload(sys.modules["edited_unloaded_mod"])  # now the edit runs
    edited = load_strategy("edited_unloaded_mod:Edited")
    assert vars(edited)["version"] == 2
    assert strategy_fingerprint(edited, {}, "v1", timeframe="1m") != before


def test_strategy_error_is_a_user_facing_error() -> None:
    assert issubclass(StrategyError, PerpsBotError)
