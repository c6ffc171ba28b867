"""The `llm_planner` strategy against a local fake OpenAI-compatible server: a valid plan
trades; malformed JSON, a schema violation, a timeout and a 429 leave the previous plan
in force and say why; a second run over the same data is answered from the cache with
zero requests and the same signals; cache-only fails clearly on a miss."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot.domain import Candle, Signal, TargetPosition
from perps_bot.strategies import StrategyContext, StrategyError, load_strategy
from tests.plans.fake_llm import FakeLLM, fake_llm
from tests.strategies.test_builtin_strategies import FakeAccount

HOUR = 3_600_000
START = 1_709_251_200_000


def plan(level: float, target: float, why: str = "breakout") -> str:
    """A plan with one trigger (stop 90 and take-profit 130, swapped for a short)."""
    stop, take_profit = (90.0, 130.0) if target >= 0 else (130.0, 90.0)
    return json.dumps({
        "rationale": f"plan: {why}",
        "triggers": [{"symbol": "BTC-PERP", "condition": {"kind": "price_above", "level": level},
                      "target_position": target, "stop": stop, "take_profit": take_profit,
                      "rationale": why}],
    })  # fmt: skip


#: a long whose stop is above its take-profit: it would be stopped out as soon as it fills
UPSIDE_DOWN = json.dumps({"rationale": "x", "triggers": [{
    "symbol": "BTC-PERP", "condition": {"kind": "always"}, "target_position": 1.0, "stop": 130.0,
    "take_profit": 90.0, "rationale": "upside down"}]})  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


def planner(server: FakeLLM, tmp_path: Path, **extra: object) -> object:
    log = logging.getLogger("perps_bot.llm")
    ctx = StrategyContext(["BTC-PERP"], FakeAccount(), lambda _s: 1.0, log)
    params = {"base_url": server.base_url, "model": "fake", "plan_interval": "4h",
              "timeout": 5.0, "cache_dir": str(tmp_path / "cache"), **extra}  # fmt: skip
    return load_strategy("llm_planner")(params, ctx)


def drive(strategy: object, prices: list[float]) -> list[Signal]:
    signals: list[Signal] = []
    for n, price in enumerate(prices):
        t = START + n * HOUR
        bar = Candle(t + HOUR, "BTC-PERP", t, price, price, price, price, 1.0)
        signals.extend(strategy.on_event(bar))  # type: ignore[attr-defined]
    return signals


def test_a_valid_plan_trades_with_its_stop_take_profit_and_rationale(
    server: FakeLLM, tmp_path: Path
) -> None:
    server.script = [plan(105, 0.5)]
    signals = drive(planner(server, tmp_path), [100, 104, 106, 107])
    assert signals == [TargetPosition("BTC-PERP", 0.5, reason="llm: breakout",
                                      stop_loss=90.0, take_profit=130.0)]  # fmt: skip
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request["model"] == "fake" and "target_position" in request["messages"][0]["content"]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("{not json", "answer is not JSON"),
        (
            json.dumps({"rationale": "x", "triggers": [{"symbol": "BTC-PERP"}]}),
            "answer breaks the schema at triggers.0.condition",
        ),
        (UPSIDE_DOWN, "answer breaks the schema at triggers.0: Value error, a long stop"),
        (("sleep", 1.5), "the model did not answer in time"),
        (("status", 429), "the endpoint refused: HTTP 429"),
    ],
)
def test_a_bad_answer_keeps_the_previous_plan_and_says_why(
    server: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: object, why: str
) -> None:
    server.script = [plan(105, 0.5), bad]  # type: ignore[list-item]
    # a timeout short of the fake's sleep for that case; a loaded machine's room otherwise
    slow = isinstance(bad, tuple) and bad[0] == "sleep"
    strategy = planner(server, tmp_path, **({"timeout": 0.5} if slow else {}))
    with caplog.at_level(logging.WARNING):
        # first plan at bar 0; the replan at bar 4 fails; the old trigger still fires
        signals = drive(strategy, [100, 101, 102, 103, 104, 106])
    assert [s.size for s in signals] == [0.5]  # type: ignore[union-attr]
    assert strategy.last_failure.startswith(why)  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if "llm planner" in r.getMessage()]
    assert len(lines) == 1 and why in lines[0] and "previous plan stays in force" in lines[0]


def test_a_second_run_is_answered_from_the_cache(server: FakeLLM, tmp_path: Path) -> None:
    prices = [100.0 + n for n in range(12)]  # three plans
    server.script = [plan(101, 1.0, "a"), plan(105, -1.0, "b"), plan(150, 0.0, "c")]
    first = drive(planner(server, tmp_path), prices)
    assert len(server.requests) == 3 and len(first) == 2
    server.requests.clear()
    second = drive(planner(server, tmp_path, cache_only=True), prices)
    assert server.requests == [] and second == first


@pytest.mark.parametrize("damage", ["", '{"request": {}, "ans', '{"request": {}}', "\udcff"])
def test_a_damaged_cache_entry_is_asked_again(server: FakeLLM, tmp_path: Path, damage: str) -> None:
    """A cached answer cut short (the bot killed while writing it), without its answer or
    not text: the request is sent again and the entry written anew; with cache-only it is
    a miss, one line. Before, reading it raised out of the run (a traceback)."""
    server.script = [plan(101, 1.0)]
    first = drive(planner(server, tmp_path), [100, 102])
    (entry,) = (tmp_path / "cache").glob("*.json")
    entry.write_bytes(damage.encode("utf-8", "surrogateescape"))
    with pytest.raises(StrategyError, match="--llm-cache-only: no cached answer"):
        drive(planner(server, tmp_path, cache_only=True), [100, 102])
    server.requests.clear()
    server.script = [plan(101, 1.0)]
    assert drive(planner(server, tmp_path), [100, 102]) == first
    assert len(server.requests) == 1
    assert json.loads(entry.read_text(encoding="utf-8"))["answer"] == plan(101, 1.0)


def test_an_answer_that_cannot_be_cached_is_used_and_said_once(
    server: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache folder cannot be written (here: a file is in its way): the plan is taken
    all the same and one warning line says why it was not cached. Before, the error
    raised out of the run (a traceback)."""
    (tmp_path / "cache").write_text("not a folder")
    server.script = [plan(101, 1.0)]
    with caplog.at_level(logging.WARNING):
        signals = drive(planner(server, tmp_path), [100, 102])
    assert [s.size for s in signals] == [1.0]  # type: ignore[union-attr]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "not cached" in lines[0] and "\n" not in lines[0]


def test_cache_only_fails_clearly_on_a_miss(server: FakeLLM, tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="--llm-cache-only: no cached answer"):
        drive(planner(server, tmp_path, cache_only=True), [100])
    assert server.requests == []


def test_an_unknown_template_is_one_line(server: FakeLLM, tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"unknown template .*momentum_trend_following"):
        planner(server, tmp_path, template="yolo")
