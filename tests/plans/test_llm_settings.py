"""The `llm:` section of a profile and `--llm-cache-only` (SPEC 16): the section and the
environment's key reach the endpoint, the answers are cached under the run's data
directory, a second backtest with the flag asks nothing and trades the same, and a
miss with the flag is one line and exit code 2; the key is never shown."""

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot.config import ConfigError, load_settings
from tests.plans.fake_llm import FakeLLM, fake_llm
from tests.plans.helpers import run_main
from tests.plans.llm_runs import SCRIPT, llm_backtest, llm_profile, llm_workdir, trades_csv

__all__ = ["llm_workdir"]  # the fixture, used by name


@pytest.fixture
def server() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


def test_the_profile_section_and_the_env_key_reach_the_endpoint(
    llm_workdir: Path, server: FakeLLM, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__LLM__API_KEY", "sk-from-env")
    profile = llm_profile(llm_workdir, server, template="conservative_defensive")
    server.script = list(SCRIPT)
    result = llm_backtest(llm_workdir, profile, "a.sqlite", capsys)
    assert result.code == 0, result.err
    assert len(server.requests) == 6  # 12 hourly bars, a plan every 2h
    assert {r["model"] for r in server.requests} == {"profile-model"}
    assert {h["authorization"] for h in server.headers} == {"Bearer sk-from-env"}
    prompt = server.requests[0]["messages"][0]["content"]
    template = Path(__file__).parents[2] / "src/perps_bot/strategies/prompts"
    assert prompt.startswith((template / "conservative_defensive.txt").read_text()[:60])
    cached = sorted((llm_workdir / "data" / "llm_cache").glob("*.json"))
    assert len(cached) == 6  # under the run's data directory

    shown = run_main(["config", "show", "--profile", str(profile), "--format", "json"], capsys)
    assert shown.code == 0, shown.err
    section = json.loads(shown.out)["llm"]
    assert section["api_key"] == "********" and "sk-from-env" not in shown.out
    assert section["model"] == "profile-model" and section["plan_interval"] == "2h"


def test_a_param_beats_the_section(llm_workdir: Path, server: FakeLLM,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    profile = llm_profile(llm_workdir, server)
    result = llm_backtest(llm_workdir, profile, "a.sqlite", capsys, "--param", "model=param-model",
                          "--param", "plan_interval=6h")  # fmt: skip
    assert result.code == 0, result.err
    assert [r["model"] for r in server.requests] == ["param-model"] * 2
    assert server.headers[0]["authorization"] == "Bearer none"  # no key: a placeholder


def test_llm_cache_only_second_backtest_asks_nothing_and_trades_the_same(
    llm_workdir: Path, server: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = llm_profile(llm_workdir, server)
    server.script = list(SCRIPT)
    first = llm_backtest(llm_workdir, profile, "first.sqlite", capsys)
    assert first.code == 0, first.err
    assert len(server.requests) == 6
    server.requests.clear()
    second = llm_backtest(llm_workdir, profile, "second.sqlite", capsys, "--llm-cache-only")
    assert second.code == 0, second.err
    assert server.requests == []
    trades = trades_csv(llm_workdir, "first.sqlite", capsys)
    assert len(trades) == 2 and trades[1].split(",")[12] == "llm: take the gain"
    assert trades_csv(llm_workdir, "second.sqlite", capsys) == trades


def test_llm_cache_only_on_a_miss_is_one_line_and_exit_2(
    llm_workdir: Path, server: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = llm_profile(llm_workdir, server)
    result = llm_backtest(llm_workdir, profile, "a.sqlite", capsys, "--llm-cache-only")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert lines[0].startswith("perps-bot: strategy 'llm_planner': --llm-cache-only: no cached")
    assert server.requests == []


def test_the_key_only_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("llm: {api_key: sk-in-a-file}\n")
    with pytest.raises(ConfigError, match=r"llm\.api_key: set it in the environment") as info:
        load_settings(str(path))
    assert "sk-in-a-file" not in str(info.value)


def test_key_and_cache_choice_stay_out_of_the_config_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("llm: {model: m1}\n")
    base = load_settings(str(path)).config_hash()
    monkeypatch.setenv("PERPS_BOT__LLM__API_KEY", "k")
    assert load_settings(str(path), {"llm": {"cache_only": True}}).config_hash() == base
    path.write_text("llm: {model: m2}\n")
    assert load_settings(str(path)).config_hash() != base


def test_a_resumed_run_may_add_llm_cache_only_and_predate_the_section(
    llm_workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = llm_workdir / "dev.sqlite"
    run = ["--profile", "dev", "--dev-fast", "--duration", "30m", "--seed", "5", "--db", str(db)]

    def interrupted(config: dict[str, object] | None = None) -> None:
        with sqlite3.connect(db) as con:
            con.execute("UPDATE runs SET status='interrupted'")
            if config is not None:
                con.execute("UPDATE runs SET config_json=?", (json.dumps(config),))

    assert run_main(run, capsys).code == 0
    interrupted()
    resumed = run_main([*run, "--resume", "--llm-cache-only"], capsys)
    assert resumed.code == 0, resumed.err
    interrupted()
    monkeypatch.setenv("PERPS_BOT__LLM__MODEL", "another-model")
    refused = run_main([*run, "--resume"], capsys)  # the model is what it trades on
    assert refused.code == 2 and "started with another llm.model" in refused.err
    with sqlite3.connect(db) as con:
        (config,) = con.execute("SELECT config_json FROM runs").fetchone()
    interrupted({k: v for k, v in json.loads(config).items() if k != "llm"})
    older = run_main([*run, "--resume"], capsys)  # a run from before the section
    assert older.code == 0, older.err
