"""A report or export written to a full disk. Measured on main: `report --out` (every
format), `runs compare --out` and `report --export` on a full disk were an internal
error with a traceback (only a file that could not be opened was one line).
`/dev/full` is a real file whose every write fails with ENOSPC."""

import sqlite3
from pathlib import Path

import pytest

from tests.badinput.harness import run_main

FULL = Path("/dev/full")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fulldisk")
    path = tmp / "db.sqlite"
    done = run_main(
        ["--profile", "dev", "--dev-fast", "--seed", "5", "--duration", "2d", "--db", str(path)],
        {"PERPS_BOT__RUN__LOG_DIR": str(tmp / "logs")},
        timeout=120,
    )
    assert done.code == 0, done
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] > 0
    return path


def _one_line(args: list[str], path: Path) -> None:
    out = run_main(args)
    assert out.code == 2, out
    assert out.err.count("\n") == 1 and "internal error" not in out.err, out.err
    assert f"cannot write {path}" in out.err and "No space left" in out.err, out.err


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["table", "json", "html"])
def test_a_report_to_a_full_disk_is_one_line(db: Path, fmt: str) -> None:
    _one_line(["report", "--db", str(db), "--format", fmt, "--out", str(FULL)], FULL)


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_runs_compare_to_a_full_disk_is_one_line(db: Path) -> None:
    _one_line(["runs", "compare", "--db", str(db), "--out", str(FULL), "latest", "latest"], FULL)


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
@pytest.mark.parametrize("name", ["trades.csv", "equity.csv", "orders.csv"])
def test_an_export_to_a_full_disk_is_one_line(db: Path, tmp_path: Path, name: str) -> None:
    (tmp_path / name).symlink_to(FULL)
    _one_line(["report", "--db", str(db), "--export", str(tmp_path)], tmp_path / name)
