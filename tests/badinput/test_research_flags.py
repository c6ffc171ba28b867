"""Bad `optimize` and `walkforward` flags found by the CLI sweep: each is one line and
exit code 2 before the first trial, never an internal error, a study left with a
RUNNING trial, a run where every trial fails on the same flag, or a `--param` the
search silently overrides."""

import sqlite3
from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000  # 2024-01-01


def _study(tmp: Path, *flags: str, command: str = "optimize") -> list[str]:
    """`optimize` (or `walkforward`) of sma_cross over a small file, one trial, `flags`;
    by total_pnl (an hour has no Sharpe ratio: every trial would fail on it)."""
    data = write_rows(tmp / "c.csv", candle_rows(60, T0, MINUTE, 100.0))
    store = ["--storage", str(tmp / "studies.sqlite"), "--objective", "total_pnl"]
    return [command, "--data", str(data), "--symbol", "BTC-PERP", "--strategy", "sma_cross",
            "--trials", "1", "-j", "1", *store, *flags]  # fmt: skip


CASES = {
    "float bound inf": (["--space", "stop_pct=float:0:inf"], "not a finite number"),
    "float bound nan": (["--space", "stop_pct=float:0.1:nan"], "not a finite number"),
    "log bound inf": (["--space", "stop_pct=log:1e-5:inf"], "not a finite number"),
    "float range wider than a float": (["--space", "stop_pct=float:-1e308:1e308"], "too wide"),
    "step too small for the range": (["--space", "stop_pct=float:0.1:0.2:1e-300"], "too small"),
    "unknown param": (["--space", "nope=int:1:5"], "has no param 'nope'"),
    "searched and fixed": (["--space", "fast=int:2:5", "--param", "fast=3"], "search it or fix"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_bad_space_is_refused_before_any_trial(workdir: Path, case: str, command: str) -> None:
    flags, fragment = CASES[case]
    window = ["--train", "30m", "--test", "10m"] if command == "walkforward" else []
    line = assert_bad_input(run_main(_study(workdir, *flags, *window, command=command)), case)
    assert fragment in line, line
    assert not (workdir / "studies.sqlite").exists(), "a trial ran"


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_json_path_that_cannot_be_written_is_refused_first(workdir: Path, command: str) -> None:
    window = ["--train", "30m", "--test", "10m"] if command == "walkforward" else []
    for path, fragment in ((workdir, "a folder"), (workdir / "no" / "r.json", "does not exist")):
        flags = ["--space", "fast=int:2:5", "--json", str(path), *window]
        line = assert_bad_input(run_main(_study(workdir, *flags, command=command)), path)
        assert fragment in line, line
    assert not (workdir / "studies.sqlite").exists()


def _foreign(tmp: Path) -> Path:
    path = tmp / "theirs.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (text TEXT)")
    con.close()
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda t: t, "a folder"),
        (lambda t: t / "afile", "not a study database"),
        (lambda t: t / "afile" / "s.sqlite", "cannot create its folder"),
        (_foreign, "another program's database"),
    ],
    ids=["folder", "text file", "under a file", "foreign database"],
)
def test_bad_storage_is_one_line(workdir: Path, make: object, fragment: str) -> None:
    storage = make(workdir)  # type: ignore[operator]
    before = Path(storage).read_bytes() if Path(storage).is_file() else None
    args = _study(workdir, "--space", "fast=int:2:5", "--no-store")
    args[args.index("--storage") + 1] = str(storage)
    line = assert_bad_input(run_main(args), storage)
    assert fragment in line, line
    if before is not None:
        assert Path(storage).read_bytes() == before, "the file was changed"


def test_a_continued_study_keeps_each_params_kind_of_range(workdir: Path) -> None:
    """Optuna refused a float space for a param searched as log when it was asked for a
    trial: an internal error, with the trial left RUNNING in the study."""
    first = run_main(_study(workdir, "--space", "stop_pct=log:0.01:0.2", "--no-store"))
    assert first.code == 0, first.err
    again = _study(workdir, "--space", "stop_pct=float:0.01:0.2", "--no-store")
    line = assert_bad_input(run_main(again))
    assert "with another kind of range" in line, line
    con = sqlite3.connect(workdir / "studies.sqlite")
    states = [row[0] for row in con.execute("SELECT state FROM trials")]
    con.close()
    assert states and "RUNNING" not in states, states


def test_a_search_whose_every_trial_fails_is_one_line_not_an_empty_success(
    workdir: Path,
) -> None:
    """fast searched above the default slow (30): every trial's params are refused, so
    the search found nothing; it used to print an empty table and exit 0."""
    flags = ["--space", "fast=int:40:50", "--trials", "2"]
    line = assert_bad_input(run_main(_study(workdir, *flags), timeout=60), "every trial fails")
    assert "every one of the 2 trials failed" in line and "fast" in line, line


@pytest.mark.parametrize("name", ["runs?v2.sqlite", "a%41.sqlite"])
def test_the_study_is_stored_in_the_storage_file_named(workdir: Path, name: str) -> None:
    """The path went into Optuna's URL as it was: `runs?v2.sqlite` wrote the study to a
    file `runs` (the rest read as URL options), `a%41.sqlite` to `aA.sqlite`, past the
    checks made on the file named (another program's database among them)."""
    args = _study(workdir, "--space", "fast=int:2:5", "--no-store")
    storage = workdir / "st" / name
    args[args.index("--storage") + 1] = str(storage)
    result = run_main(args)
    assert result.code == 0, result.err
    assert sorted(p.name for p in storage.parent.iterdir()) == [name]
    con = sqlite3.connect(storage)
    assert con.execute("SELECT study_name FROM studies").fetchall()
    con.close()
