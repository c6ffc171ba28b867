"""A promotion is for what the strategy trades on (SPEC 6): the fingerprint covers the
bar size (`strategy.timeframe`) and, for the `plan` strategy, the plan file's content.
It left both out: a promotion to prod earned on 1h bars let prod start the same params
on 1m bars, and an edited plan file kept the promotion of the plan that was tested."""

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.preflight import (
    PromotionMissing,
    planned_portfolios,
    require_prod_promotions,
)
from perps_bot.storage import RunStore
from perps_bot.strategies.loader import strategy_fingerprint
from perps_bot.strategies.walkforward import WalkForward
from tests.metrics.metrics_builders import passing_run

PLAN = "symbol,side,size\nETH-PERP,long,0.01\n"


def _prod(tmp_path: Path, strategy: dict[str, Any]) -> Settings:
    return load_settings(
        "prod",
        overrides={"run": {"database": str(tmp_path / "prod.sqlite")}, "strategy": strategy},
    )


def _promote_to_prod(settings: Settings) -> None:
    """Record a promotion to prod of the (one) portfolio's fingerprint, as promote does."""
    (planned,) = planned_portfolios(settings)
    with RunStore(settings.database_path) as store:
        passing_run(store, "canary-run", kind="live", profile="canary",
                    fingerprint=planned.fingerprint)  # fmt: skip
        store.add_promotion(planned.fingerprint, planned.plan.strategy, "prod", "canary-run", "[]")
    require_prod_promotions(settings, planned_portfolios(settings))  # it counts as such


def test_a_promotion_earned_on_1h_bars_does_not_cover_1m_bars(tmp_path: Path) -> None:
    sma = {"name": "sma_cross", "params": {"fast": 10, "slow": 30}}
    _promote_to_prod(_prod(tmp_path, sma | {"timeframe": "1h"}))
    minute = _prod(tmp_path, sma | {"timeframe": "1m"})
    with pytest.raises(PromotionMissing) as refused:
        require_prod_promotions(minute, planned_portfolios(minute))
    assert "no promotion to prod recorded" in str(refused.value)


def test_an_edited_plan_file_needs_a_promotion_of_its_own(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN)
    settings = _prod(tmp_path, {"name": "plan", "params": {"file": str(plan)}})
    _promote_to_prod(settings)
    plan.write_text(PLAN.replace("long,0.01", "long,5"))  # the same path, another plan
    with pytest.raises(PromotionMissing):
        require_prod_promotions(settings, planned_portfolios(settings))
    plan.write_text(PLAN)  # the promoted plan again
    require_prod_promotions(settings, planned_portfolios(settings))


def test_an_edited_llm_prompt_file_needs_a_promotion_of_its_own(tmp_path: Path) -> None:
    """The llm_planner's prompt_file param was in the fingerprint as a path only: an
    edited prompt kept the promotion of the prompt that was tested."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Trade carefully; stay flat in doubt.\n")
    llm = {"name": "llm_planner", "params": {"prompt_file": str(prompt)}}
    settings = _prod(tmp_path, llm)
    _promote_to_prod(settings)
    prompt.write_text("Go all in on every breakout.\n")  # the same path, another prompt
    with pytest.raises(PromotionMissing):
        require_prod_promotions(settings, planned_portfolios(settings))
    prompt.write_text("Trade carefully; stay flat in doubt.\n")  # the promoted prompt again
    require_prod_promotions(settings, planned_portfolios(settings))


def test_the_llm_sections_prompt_and_model_are_in_the_fingerprint(tmp_path: Path) -> None:
    """The prompt and the model the llm: section names (SPEC 16: how a profile sets the
    planner up) were in no fingerprint: another prompt, or another model, kept the
    promotion earned with the ones tested."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Trade carefully; stay flat in doubt.\n")

    def prod(**llm: str) -> Settings:
        return load_settings("prod", overrides={
            "run": {"database": str(tmp_path / "prod.sqlite")},
            "strategy": {"name": "llm_planner"},
            "llm": {"prompt_file": str(prompt), "model": "m1"} | llm,
        })  # fmt: skip

    _promote_to_prod(prod())
    for other in (prod(model="m2"), prod(template="momentum_trend_following", prompt_file="")):
        with pytest.raises(PromotionMissing):
            require_prod_promotions(other, planned_portfolios(other))
    prompt.write_text("Go all in on every breakout.\n")
    with pytest.raises(PromotionMissing):
        require_prod_promotions(prod(), planned_portfolios(prod()))
    prompt.write_text("Trade carefully; stay flat in doubt.\n")
    require_prod_promotions(prod(), planned_portfolios(prod()))
    cached = prod(cache_dir=str(tmp_path / "cache"))  # how answers are had: not traded on
    require_prod_promotions(cached, planned_portfolios(cached))


def test_a_promotion_recorded_under_another_fingerprint_is_named_in_the_refusal(
    tmp_path: Path,
) -> None:
    """Promotions recorded before the fingerprint covered the bar size and the plan file
    are not migrated: prod refuses with one line saying why they do not count."""
    settings = _prod(tmp_path, {"name": "sma_cross", "timeframe": "1m"})
    with RunStore(settings.database_path) as store:
        passing_run(
            store, "old-canary", kind="live", profile="canary", fingerprint="0123abcd0123abcd"
        )
        store.add_promotion("0123abcd0123abcd", "sma_cross", "prod", "old-canary", "[]")
    with pytest.raises(PromotionMissing) as refused:
        require_prod_promotions(settings, planned_portfolios(settings))
    text = str(refused.value)
    assert "\n" not in text and "0123abcd0123abcd" in text
    assert "bar size (strategy.timeframe)" in text and "promote again" in text


def test_walkforward_windows_of_an_edited_plan_or_strategy_need_a_promotion_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk-forward run's fingerprint hashed the walkforward module and its params: the
    plan file its windows read, and the source of the strategy they run, were left out,
    so a promotion of walk-forward evidence carried over to an edited plan or strategy."""
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN)
    windows = json.dumps([[0, 10, {"file": str(plan)}], [10, 20, {"file": str(plan)}]])

    def fingerprint(inner: str) -> str:
        params = {"strategy": inner, "windows": windows}
        return strategy_fingerprint(WalkForward, params, "v1", timeframe="1h")

    before = fingerprint("plan")
    plan.write_text(PLAN.replace("long,0.01", "long,5"))
    assert fingerprint("plan") != before
    plan.write_text(PLAN)
    assert fingerprint("plan") == before

    module = tmp_path / "wf_inner_mod.py"
    module.write_text(INNER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    try:
        first = fingerprint("wf_inner_mod:Inner")
        module.write_text(INNER.replace("return NO_SIGNALS", "return ()  # edited"))
        importlib.reload(sys.modules["wf_inner_mod"])
        assert fingerprint("wf_inner_mod:Inner") != first
        # the fingerprint --resume compares covers the inner strategy's code too
        params = {"strategy": "wf_inner_mod:Inner", "windows": windows}
        code = strategy_fingerprint(WalkForward, params, "v1", timeframe="1h", inputs=False)
        module.write_text(INNER)
        importlib.reload(sys.modules["wf_inner_mod"])
        assert strategy_fingerprint(WalkForward, params, "v1", timeframe="1h", inputs=False) != code
    finally:
        sys.modules.pop("wf_inner_mod", None)


INNER = """
from pydantic import BaseModel, ConfigDict
from perps_bot.strategies import NO_SIGNALS, Strategy

class InnerParams(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

class Inner(Strategy):
    name = "inner"
    Params = InnerParams

    def on_event(self, event):
        return NO_SIGNALS
"""


def test_one_bar_size_spelled_three_ways_is_one_fingerprint(tmp_path: Path) -> None:
    """The fingerprint hashed the timeframe as spelled: a promotion earned with "1h"
    did not cover "60m" or "3600s", the same bars."""
    sma = {"name": "sma_cross", "params": {"fast": 10, "slow": 30}}
    _promote_to_prod(_prod(tmp_path, sma | {"timeframe": "1h"}))
    for spelled in ("60m", "3600s", "1H"):
        same = _prod(tmp_path, sma | {"timeframe": spelled})
        require_prod_promotions(same, planned_portfolios(same))
