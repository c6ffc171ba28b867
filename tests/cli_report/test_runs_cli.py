"""`perps-bot runs list` and `perps-bot runs compare` through a Typer app that calls
register(app), as the main CLI does."""

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from perps_bot.cli.runs import register
from perps_bot.storage import RunStore
from tests.metrics.metrics_builders import DAY, EASY_PROMOTION, HOUR, T0, RunBuilder, passing_run


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Stands in for the bot's own callback."""

    register(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "dev.sqlite"
    with RunStore(path) as store:
        passing_run(store, "run-pass", created_at=1)
        b = RunBuilder(
            store, "run-bt", kind="backtest", promotion=EASY_PROMOTION, created_at=2,
            end_ts=T0 + 2 * DAY, strategy="mean_reversion",
        )  # fmt: skip
        b.fill(T0 + HOUR, "buy", 1.0, 100.0)
        b.fill(T0 + 2 * HOUR, "sell", 1.0, 99.0)
        b.curve([(T0, 10_000.0), (T0 + 2 * DAY, 9_999.0)])
        b.done()
        RunBuilder(store, "run-live", kind="live", status="failed", created_at=3)
    return path


def test_list_newest_first_with_trades_return_and_filters(
    app: typer.Typer, runner: CliRunner, db: Path
) -> None:
    result = runner.invoke(app, ["runs", "list", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["matched"] == 3
    runs = {r["run_id"]: r for r in data["runs"]}
    assert list(runs) == ["run-live", "run-bt", "run-pass"]
    assert runs["run-pass"]["trades"] == 3 and runs["run-pass"]["return_pct"] == 4.0
    assert runs["run-bt"] == {
        "run_id": "run-bt", "kind": "backtest", "profile": "dev", "strategy": "mean_reversion",
        "start": "2024-01-01T00:00:00.000Z", "duration_s": 172800.0, "trades": 1,
        "return_pct": -0.01, "status": "completed", "portfolio": "main", "parent_run_id": None,
    }  # fmt: skip
    assert runs["run-live"]["return_pct"] is None  # no equity rows
    only = runner.invoke(app, ["runs", "list", "--db", str(db), "--kind", "backtest"])
    assert only.exit_code == 0 and "run-bt" in only.stdout and "run-pass" not in only.stdout
    first = runner.invoke(app, ["runs", "list", "--db", str(db), "--limit", "1"])
    assert "run-live" in first.stdout and "run-bt" not in first.stdout
    assert "1 of 3" in first.stdout
    table = runner.invoke(app, ["runs", "list", "--db", str(db), "--status", "completed"])
    assert "run-live" not in table.stdout and "+4.00%" in table.stdout and "2d 0h" in table.stdout
    none = runner.invoke(app, ["runs", "list", "--db", str(db), "--strategy", "nope"])
    assert none.exit_code == 0 and "No runs match." in none.stdout


def test_compare_puts_metrics_side_by_side(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["runs", "compare", "run-pass", "run-bt", "--db", str(db), "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["run_id"] for r in runs] == ["run-pass", "run-bt"]
    assert [r["metrics"]["trades"] for r in runs] == [3, 1]
    assert runs[0]["validation"] == {"passed": True, "failed": []}
    assert "trades" in runs[1]["validation"]["failed"]
    assert {w["metric"] for w in runs[1]["warnings"]} >= {"win_rate", "cagr"}
    table = runner.invoke(app, ["runs", "compare", "run-pass", "latest", "--db", str(db)])
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any("run-pass" in line and "run-live" in line for line in lines)
    assert any(
        line.startswith("│ verdict") and "PASSED" in line and "FAILED" in line for line in lines
    )
    out = tmp_path / "c.html"
    html = runner.invoke(
        app, ["runs", "compare", "run-pass", "run-bt", "--db", str(db), "--format", "html",
              "--out", str(out)],
    )  # fmt: skip
    assert html.exit_code == 0, html.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="compare-chart"' in page
    assert "run-pass" in page and "run-bt" in page


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["runs", "compare", "run-pass", "nope"], "no run 'nope'"),
        (["runs", "compare", "run-pass"], "at least two runs"),
        (["runs", "list", "--limit", "-1"], "--limit"),
        (["runs", "list", "--format", "xml"], "--format"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    app: typer.Typer, runner: CliRunner, db: Path, args: list[str], fragment: str
) -> None:
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_missing_database_is_exit_2(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["runs", "list", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "no database" in result.stderr


def test_compare_table_prints_text_parameters_verbatim(
    app: typer.Typer, runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    """A custom strategy's text parameter is printed as it is, never read as rich markup
    ('[/]' raised MarkupError)."""
    params = json.dumps({"note": "buy [/] sell [bold]now"})
    with RunStore(db) as store, store.transaction():
        store.connection.execute(
            "UPDATE runs SET strategy_params=? WHERE run_id='run-bt'", (params,)
        )
    for out in (None, tmp_path / "c.txt"):
        extra = [] if out is None else ["--out", str(out)]
        result = runner.invoke(
            app, ["runs", "compare", "run-pass", "run-bt", "--db", str(db), *extra]
        )
        assert result.exit_code == 0, result.exception
        text = result.stdout if out is None else out.read_text()
        assert "note=buy [/] sell [bold]now" in text
