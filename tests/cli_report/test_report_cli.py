"""`perps-bot report` and `perps-bot promote` through a minimal Typer app that calls
register(app), exactly as the main CLI does."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from perps_bot.cli.report import register
from perps_bot.metrics import METRIC_DEFINITIONS, build_report, has_promotion
from perps_bot.storage import RunStore
from perps_bot.storage.drift_store import save_drift
from tests.metrics.metrics_builders import (
    EASY_CANARY,
    EASY_PROMOTION,
    T0,
    RunBuilder,
    passing_run,
    stage_profiles,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "dev.sqlite"
    with RunStore(path) as store:
        passing_run(store, "run-pass")
    return path


def test_report_table(app: typer.Typer, runner: CliRunner, db: Path) -> None:
    result = runner.invoke(app, ["report", "--db", str(db)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Run run-pass" in out
    for name in METRIC_DEFINITIONS:
        if name != "denials":
            assert name in out
    assert "MAX_ORDER_NOTIONAL" in out and "STALE_MARKET_DATA" in out
    assert out.count("PASS") >= 7
    assert "PASSED: 7/7 criteria passed" in out


def test_report_json_stdout_and_out_file_are_identical(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    first = runner.invoke(app, ["report", "--db", str(db), "--format", "json"])
    assert first.exit_code == 0, first.stderr
    out = tmp_path / "r.json"
    second = runner.invoke(
        app, ["report", "--db", str(db), "--run", "run-pass", "--format", "json", "--out", str(out)]
    )
    assert second.exit_code == 0 and second.stdout == ""
    assert out.read_text() == first.stdout
    data = json.loads(first.stdout)
    assert data["validation"]["passed"] is True
    assert "run-pass" not in first.stdout and str(db) not in first.stdout


def test_report_html_and_export(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    export = tmp_path / "export" / "nested"
    result = runner.invoke(
        app,
        ["report", "--db", str(db), "--format", "html", "--out", str(out), "--export", str(export)],
    )
    assert result.exit_code == 0, result.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and 'id="equity-chart"' in html
    assert (export / "trades.csv").read_text().startswith("trade_id,symbol,side,open_time,")
    assert (export / "equity.csv").read_text().startswith("timestamp,equity,cash,unrealized_pnl\n")
    orders = (export / "orders.csv").read_text().splitlines()
    assert orders[0] == (
        "client_id,portfolio,symbol,side,type,size,filled,avg_price,status,reason,created,updated"
    )


def test_report_table_to_file_is_plain_text(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.txt"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert "Validation criteria" in text and "\x1b[" not in text


def test_report_errors_are_one_line_exit_2(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    missing = runner.invoke(app, ["report", "--db", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 2
    assert missing.stderr.count("\n") == 1 and "no database" in missing.stderr
    assert not (tmp_path / "nope.sqlite").exists()
    unknown = runner.invoke(app, ["report", "--db", str(db), "--run", "r-404"])
    assert unknown.exit_code == 2
    assert unknown.stderr.count("\n") == 1 and "r-404" in unknown.stderr
    empty = tmp_path / "empty.sqlite"
    RunStore(empty).close()
    none = runner.invoke(app, ["report", "--db", str(empty)])
    assert none.exit_code == 2 and "no runs" in none.stderr
    bad_profile = runner.invoke(app, ["report", "--profile", "does-not-exist"])
    assert bad_profile.exit_code == 2 and bad_profile.stderr.count("\n") == 1


def test_report_defaults_to_the_profile_database(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config" / "profiles").mkdir(parents=True)
    (tmp_path / "config" / "profiles" / "dev.yaml").write_text("profile: dev\n")
    with RunStore(tmp_path / "data" / "perps_bot.dev.sqlite") as store:
        passing_run(store, "from-profile")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "--profile", "dev"])
    assert result.exit_code == 0, result.stderr
    assert "Run from-profile" in result.stdout


def test_help_documents_every_metric_and_option(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in METRIC_DEFINITIONS:
        assert f"{name}:" in result.stdout, name
    command = typer.main.get_command(app)
    for sub in ("report", "promote"):
        params = command.commands[sub].params  # type: ignore[attr-defined]
        for param in params:
            if param.name != "help":
                assert param.help, f"{sub} --{param.name} has no help"


@pytest.fixture
def easy_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local canary and prod profiles asking what the hand-made runs' own configs ask
    (EASY_PROMOTION), the canary one without the shipped out-of-sample gate (these tests
    are about the run's criteria; tests/research checks the gate, test_promotion_bar
    the target stage's stricter thresholds)."""
    monkeypatch.chdir(tmp_path)
    stage_profiles(tmp_path, canary=EASY_CANARY, prod=EASY_PROMOTION)


def test_the_shipped_canary_gate_asks_for_walkforward_evidence(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "canary.sqlite"
    result = runner.invoke(
        app, ["promote", "--to", "canary", "--db", str(db), "--target-db", str(target)]
    )
    assert result.exit_code == 1
    assert "3 of 9 criteria failed" in result.stderr
    assert "trades = 3 (needs >= 30, from the canary profile" in result.stderr
    assert "walkforward = 0 (needs >= 1, from the canary profile" in result.stderr
    assert "dsr = n/a (needs >= 0.95, from the canary profile" in result.stderr
    assert not target.exists()


@pytest.mark.usefixtures("easy_stages")
def test_promote_to_canary_records_in_run_and_target_db(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    target = tmp_path / "canary.sqlite"
    result = runner.invoke(
        app, ["promote", "--to", "canary", "--db", str(db), "--target-db", str(target)]
    )
    assert result.exit_code == 0, result.stderr
    assert "promoted sma_cross (fingerprint fp-sma-1) to canary: run run-pass" in result.stdout
    for path in (db, target):
        with RunStore(path) as store:
            assert has_promotion(store, "fp-sma-1", "canary")
            (row,) = store.promotions("fp-sma-1")
            assert row.run_id == "run-pass" and row.stage == "canary"
            assert all(c["passed"] for c in json.loads(row.criteria))


@pytest.mark.usefixtures("easy_stages")
def test_promote_failure_names_every_failed_criterion_exit_1(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "weak.sqlite"
    strict = dict(EASY_PROMOTION, min_trades=50, min_win_rate=0.9, max_drawdown=0.001)
    with RunStore(db) as store:
        passing_run(store, "weak", promotion=strict)
    target = tmp_path / "target.sqlite"
    result = runner.invoke(
        app, ["promote", "--to", "canary", "--db", str(db), "--target-db", str(target)]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    for name in ("trades", "win_rate", "max_drawdown"):
        assert name in result.stderr
    assert "sharpe" not in result.stderr and "3 of 7 criteria failed" in result.stderr
    assert "FAIL" in result.stdout  # the criteria table
    with RunStore(db) as store:
        assert store.promotions("fp-sma-1") == []
    assert not target.exists()


@pytest.mark.usefixtures("easy_stages")
def test_promote_wrong_kind_exit_1(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "mixed.sqlite"
    with RunStore(db) as store:
        passing_run(store, "dev-run", created_at=1)
        passing_run(store, "dry", kind="dry_run", profile="canary", created_at=2)
        passing_run(store, "live-prod", kind="live", profile="prod", created_at=3)
        passing_run(store, "live-canary", kind="live", profile="canary", created_at=4)
    target = str(tmp_path / "t.sqlite")
    cases = [
        ("prod", "dev-run", "needs a live run of the canary profile"),
        ("prod", "dry", "dry_run run of profile canary"),
        ("prod", "live-prod", "live run of profile prod"),
        ("canary", "live-canary", "needs a dev, backtest or walkforward run"),
    ]
    for stage, run, message in cases:
        result = runner.invoke(
            app, ["promote", "--to", stage, "--run", run, "--db", str(db), "--target-db", target]
        )
        assert result.exit_code == 1, (stage, run)
        assert message in result.stderr
    within = {"median_slippage_drift_bps": 0.5, "signal_agreement": 1.0, "pnl_tracking_error": 0.0}
    with RunStore(db) as store:  # prod also needs the canary run's drift within bounds
        save_drift(store, "live-canary", "a-replay", {}, within)
    ok = runner.invoke(app, ["promote", "--to", "prod", "--db", str(db), "--target-db", target])
    assert ok.exit_code == 0, ok.stderr  # latest = the live canary run
    with RunStore(target) as store:
        assert has_promotion(store, "fp-sma-1", "prod")
        assert not has_promotion(store, "fp-sma-1", "canary")


def test_promote_errors_exit_2(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    target = str(tmp_path / "t.sqlite")
    missing = runner.invoke(
        app,
        ["promote", "--to", "canary", "--db", str(tmp_path / "no.sqlite"), "--target-db", target],
    )
    assert missing.exit_code == 2 and "no database" in missing.stderr
    db = tmp_path / "d.sqlite"
    with RunStore(db) as store:
        RunBuilder(store, "r", promotion={"min_days": "soon"}, end_ts=T0)
    bad = runner.invoke(app, ["promote", "--to", "canary", "--db", str(db), "--target-db", target])
    assert bad.exit_code == 2 and "promotion.min_days" in bad.stderr
    usage = runner.invoke(app, ["promote", "--to", "moon", "--db", str(db)])
    assert usage.exit_code == 2


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_screenshot_script_renders_a_png(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "screenshot_report", REPO / "scripts" / "screenshot_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    db = tmp_path / "demo.sqlite"
    run_id = module.build_demo_run(db, days=2)
    with RunStore(db, read_only=True) as store:
        assert build_report(store, run_id).metrics["trades"] > 5
    png = tmp_path / "r.png"
    assert module.main(["--db", str(db), "--out", str(png), "--height", "900"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_global_db_and_profile_of_the_main_command_reach_the_subcommands(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    from perps_bot.cli.app import app as main

    result = runner.invoke(main, ["--db", str(db), "report", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run"]["kind"] == "dev"
    missing = runner.invoke(main, ["--profile", "nonexistent-profile", "report"])
    assert missing.exit_code == 2 and "nonexistent-profile" in missing.stderr
    own = runner.invoke(main, ["--db", str(tmp_path / "x.sqlite"), "report", "--db", str(db)])
    assert own.exit_code == 0, own.stderr


def test_monte_carlo_of_a_run_without_initial_balance_is_one_line_exit_2(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    """A live run re-bases its initial balance on the exchange's wallet: an empty wallet
    stores 0, and a return in percent of 0 has no meaning."""
    db = tmp_path / "zero.sqlite"
    with RunStore(db) as store:
        b = RunBuilder(store, "empty-wallet", initial_balance=0.0, end_ts=T0 + 3_600_000)
        b.fill(T0 + 60_000, "buy", 1.0, 100.0)
        b.fill(T0 + 120_000, "sell", 1.0, 101.0)
        b.curve([(T0, 0.0), (T0 + 120_000, 1.0)])
        b.done()
    result = runner.invoke(app, ["report", "--db", str(db), "--monte-carlo", "10"])
    assert result.exit_code == 2, result.exception
    assert result.stderr.count("\n") == 1
    assert "--monte-carlo" in result.stderr and "initial balance" in result.stderr


def test_table_shows_free_text_exit_reasons_verbatim(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    """An exit reason is free text (an LLM's rationale, a custom strategy's words): the
    console must print it, not read '[/]' or '[bold]' in it as rich markup."""
    reason = "llm: out [/] at [bold]R2 :fire:"
    db = tmp_path / "odd.sqlite"
    with RunStore(db) as store:
        b = RunBuilder(store, "odd", end_ts=T0 + 3_600_000)
        b.fill(T0 + 60_000, "buy", 1.0, 100.0)
        b.fill(T0 + 120_000, "sell", 1.0, 101.0, reason=reason)
        b.curve([(T0, 10_000.0), (T0 + 120_000, 10_001.0)])
        b.done()
    out = tmp_path / "r.txt"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.exception
    assert reason in out.read_text()


def test_html_report_of_a_run_asking_for_walkforward_evidence(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    """A run whose `promotion:` asks for out-of-sample evidence (the shipped canary
    profile does) has the `walkforward` and `dsr` criteria: the page shows them too."""
    db = tmp_path / "wf.sqlite"
    gate = EASY_PROMOTION | {"require_walkforward": True, "min_dsr": 0.9}
    with RunStore(db) as store:
        passing_run(store, "asks", promotion=gate)
    result = runner.invoke(app, ["report", "--db", str(db), "--format", "html"])
    assert result.exit_code == 0, result.exception
    page = result.stdout
    assert "FAILED: 7/9 criteria passed" in page  # of 9, 7 passed (not 7 failed)
    for name in ("walkforward", "dsr"):
        row = page[page.index(f"<td>{name}</td>") :].split("</tr>")[0]
        assert "FAIL" in row and "promotion." in row


@pytest.mark.usefixtures("easy_stages")
def test_promote_to_prod_shows_and_records_the_drift_criteria(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    """The drift bounds are criteria of promotion to prod: the table printed on refusal
    and on success lists them, and the recorded promotion keeps them."""
    db, target = tmp_path / "canary.sqlite", str(tmp_path / "prod.sqlite")
    args = ["promote", "--to", "prod", "--db", str(db), "--target-db", target]
    drift = {"median_slippage_drift_bps": 5.0, "signal_agreement": 1.0, "pnl_tracking_error": 0.0}
    with RunStore(db) as store:
        passing_run(store, "live-canary", kind="live", profile="canary")
        save_drift(store, "live-canary", "a-replay", {}, drift)
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "1 of 10 criteria failed" in refused.stderr
    row = refused.stdout[refused.stdout.index("slippage_drift_bps") :].split("\n")[0]
    assert "FAIL" in row
    with RunStore(db) as store:
        save_drift(store, "live-canary", "a-replay", {}, drift | {"median_slippage_drift_bps": 1})
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.stderr
    assert "signal_agreement" in ok.stdout and "all 10 criteria passed" in ok.stdout
    with RunStore(target) as store:
        recorded = json.loads(store.promotions("fp-sma-1", "prod")[0].criteria)
    assert [c["name"] for c in recorded][-3:] == [
        "slippage_drift_bps",
        "signal_agreement",
        "pnl_tracking_error",
    ]


def test_negative_monte_carlo_seed_is_bad_input(
    app: typer.Typer, runner: CliRunner, db: Path
) -> None:
    result = runner.invoke(app, ["report", "--db", str(db), "--monte-carlo", "10", "--seed", "-1"])
    assert result.exit_code == 2, result.exception
    assert "--seed" in result.stderr
