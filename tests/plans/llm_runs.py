"""`perps-bot backtest --strategy llm_planner` runs against the fake OpenAI-compatible
server, with the endpoint named in a profile's `llm:` section (shared by the CLI,
report and settings tests of the planner)."""

import json
from pathlib import Path

import pytest

from tests.plans.fake_llm import FakeLLM
from tests.plans.helpers import Result, run_main, write_candles

#: 12 hourly bars, rising then flat: a plan every 2h -> 6 requests
BARS = [(100.0 + n, 101.0 + n, 99.0 + n, 100.0 + n) for n in range(6)] + [
    (105.0, 106.0, 104.0, 105.0)
] * 6


def answer(target: float, why: str, rationale: str) -> str:
    """A plan whose one trigger always holds: BTC's position becomes `target`."""
    return json.dumps({
        "rationale": rationale,
        "triggers": [{"symbol": "BTC-PERP", "condition": {"kind": "always"},
                      "target_position": target, "rationale": why}],
    })  # fmt: skip


#: the first plan goes long, the second closes, later answers break the schema ("{}")
SCRIPT = [answer(1.0, "go long on the rise", "momentum is up"),
          answer(0.0, "take the gain", "the rise stalls")]  # fmt: skip


def llm_profile(tmp_path: Path, fake: FakeLLM, **extra: str) -> Path:
    """A profile whose `llm:` section names the fake server (and `extra` keys)."""
    keys = {"base_url": fake.base_url, "model": "profile-model", "plan_interval": "2h", **extra}
    body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in keys.items())
    path = tmp_path / "llm.yaml"
    path.write_text(f"profile: llmtest\nllm: {{{body}}}\n")
    return path


@pytest.fixture
def llm_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp dir as working directory, logs and data directory in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PERPS_BOT__LLM__API_KEY", raising=False)
    write_candles(tmp_path / "btc.csv", BARS)
    return tmp_path


def llm_backtest(
    workdir: Path, profile: Path, db: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> Result:
    return run_main(
        ["backtest", "--data", str(workdir / "btc.csv"), "--symbol", "BTC-PERP", "--strategy",
         "llm_planner", "--profile", str(profile), "--seed", "1", "--db", str(workdir / db),
         "--no-progress", *extra],
        capsys,
    )  # fmt: skip


def trades_csv(workdir: Path, db: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines of the run's trades.csv (`report --export`)."""
    out = workdir / f"export-{db}"
    result = run_main(["report", "--db", str(workdir / db), "--export", str(out),
                       "--out", str(workdir / "report.txt")], capsys)  # fmt: skip
    assert result.code == 0, result.err
    return (out / "trades.csv").read_text().splitlines()
