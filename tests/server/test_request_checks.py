"""Start requests the config's own checks refuse, the same for a session (a 400 with one
line that leaves no session) as for the command line and a profile (exit 2, one line)."""

from pathlib import Path
from typing import Any

import pytest

from tests.badinput.harness import check_line
from tests.server.helpers import dev_session, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


async def _refused(client: Any, body: dict[str, Any], message: str, start: str = "") -> None:
    resp = await client.post("/api/sessions", json=body)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error.startswith(start) and message in error, error
    assert "\n" not in error and len(error) < 300, error
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_a_symbol_listed_twice_is_refused(tmp_path: Path) -> None:
    """It was a 201 (and a run on the command line, or of a profile): one symbol listed
    twice, traded as one, silently."""
    twice = ["BTC-PERP", "ETH-PERP", "BTC-PERP"]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        body = dev_session("1d", portfolios=[{"strategy": "sma_cross", "symbols": twice}])
        await _refused(client, body, "symbol 'BTC-PERP' is listed twice")
        once = [{"strategy": "sma_cross", "symbols": ["BTC-PERP", "ETH-PERP"]}]
        sid = await start(client, dev_session("1d", portfolios=once))
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
    db = str(tmp_path / "cli.sqlite")
    run = ["--profile", "dev", "--dev-fast", "--duration", "1m", "--db", db]
    check_line("--symbols twice", "run.symbols: symbol 'BTC-PERP' is listed twice",
               [*run, "--symbols", "BTC-PERP,BTC-PERP"])  # fmt: skip
    profile = tmp_path / "twice.yaml"
    profile.write_text(
        "profile: twice\nportfolios:\n  - id: a\n    strategy: sma_cross\n"
        "    symbols: [ETH-PERP, ETH-PERP]\n"
    )
    check_line("portfolio symbols twice", "symbol 'ETH-PERP' is listed twice",
               ["--profile", str(profile), *run[2:]])  # fmt: skip


async def test_an_llm_planner_prompt_of_the_profiles_llm_section_that_cannot_be_read(
    tmp_path: Path,
) -> None:
    """A prompt_file (or a template) the profile's `llm:` section names and that is not
    there was a 201 and a session that failed at once, kept in the list; the same as a
    `prompt_file` param is a 400. One that reads starts."""
    good = tmp_path / "prompt.txt"
    good.write_text("You are a careful trader.\n")
    refused = [
        (f"prompt_file: {tmp_path / 'missing.txt'}", "missing.txt: cannot read it"),
        ("template: nosuch", "unknown template (known: "),
    ]
    portfolios = [{"strategy": "llm_planner", "params": {"cache_only": True}}]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for i, (line, message) in enumerate(refused):
            profile = tmp_path / f"llm{i}.yaml"
            profile.write_text(f"profile: llm{i}\nllm:\n  {line}\n")
            body = dev_session("1d", profile=str(profile), portfolios=portfolios)
            await _refused(client, body, message, start="strategy 'llm_planner': ")
        profile = tmp_path / "fine.yaml"
        profile.write_text(f"profile: fine\nllm:\n  prompt_file: {good}\n")
        await start(client, dev_session("1d", profile=str(profile), portfolios=portfolios))


async def test_a_capital_or_balance_of_less_than_a_cent_is_refused(tmp_path: Path) -> None:
    """1e-300 (or a denormal 5e-324) passed `> 0`: a 201, and a run (of a profile, or
    with --initial-balance) that could trade nothing, every order denied. The API and
    the command line now keep to the config's one rule (at least 0.01)."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for capital in (1e-300, 5e-324, 0.001, -5, 0):
            body = dev_session("1d", portfolios=[{"strategy": "sma_cross", "capital": capital}])
            await _refused(client, body, "portfolios.0.capital: Input should be greater than or"
                           " equal to 0.01")  # fmt: skip
        cent = [{"strategy": "sma_cross", "capital": 0.01}]
        sid = await start(client, dev_session("1d", portfolios=cent))
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
    db = str(tmp_path / "cli.sqlite")
    run = ["--profile", "dev", "--dev-fast", "--duration", "1m", "--db", db]
    balance = {"PERPS_BOT__ACCOUNT__INITIAL_BALANCE": "1e-300"}  # what --initial-balance sets
    message = "account.initial_balance: Input should be greater than or equal to 0.01"
    check_line("a balance of 1e-300", message, run, balance)
