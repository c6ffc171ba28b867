"""The known classes of bad input (issue 11), one case each: every one is ONE short
line on stderr and exit code 2, never a traceback, an "internal error", a silent
wrong result or a run that never ends; and bad input never changes a database that
already holds runs. Most cases run the CLI in this process; a few run the real
command in a child process (marked integration)."""

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main, run_subprocess
from tests.badinput.inputs import MINUTE, candle_rows, float_settings, nested, write_rows

T0 = 1_704_067_200_000  # 2024-01-01
Args = tuple[list[str], dict[str, str]]
BACKTEST = ["backtest", "--symbol", "BTC-PERP", "--strategy", "sma_cross", "--no-progress"]
DEV_RUN = ["--profile", "dev", "--dev-fast", "--duration", "1m"]
DOWNLOAD = ["data", "download", "--symbols", "BTC-PERP"]


def _profile(tmp: Path, content: str | bytes, name: str = "bad.yaml") -> Args:
    path = tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return ["config", "show", "--profile", str(path)], {}


def _profile_folder(tmp: Path) -> Args:
    (tmp / "folder.yaml").mkdir()
    return ["config", "show", "--profile", str(tmp / "folder.yaml")], {}


def _alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """Nine lines standing for 9**9 (387 million) strings, as a strategy's name."""
    parts = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        parts.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "strategy:\n  name: [" + ",\n    ".join(parts) + "]\n"


def _candles(tmp: Path, name: str = "c.csv", **changes: object) -> Path:
    rows = candle_rows(60, T0, MINUTE, 100.0)
    return write_rows(tmp / name, rows)


def _bad_candles(tmp: Path, name: str, edit: Callable[[list[list[object]]], None]) -> Args:
    rows = candle_rows(60, T0, MINUTE, 100.0)
    edit(rows)
    return [*BACKTEST, "--data", str(write_rows(tmp / name, rows))], {}


def _set(row: int, col: int, value: object) -> Callable[[list[list[object]]], None]:
    def edit(rows: list[list[object]]) -> None:
        rows[row][col] = value

    return edit


def _seconds(rows: list[list[object]]) -> None:
    for row in rows:
        row[0] = int(str(row[0])) // 1000


def _shifted_file(tmp: Path, name: str, shift: int, interval: int = MINUTE) -> Path:
    return write_rows(tmp / name, candle_rows(60, T0 + shift, interval, 100.0))


CASES: dict[str, Callable[[Path], Args]] = {
    # profiles
    "non-UTF-8 profile": lambda t: _profile(t, b"run:\n  seed: \xff\xfe\n"),
    "binary profile": lambda t: _profile(t, bytes(range(256)) * 4),
    "NUL bytes in a profile": lambda t: _profile(t, "run: {seed: 1}\n\x00\x00\n"),
    "profile nested 5000 levels": lambda t: _profile(t, "run: " + "[" * 5000 + "]" * 5000),
    "mapping nested 3000 levels": lambda t: _profile(t, "run: " + "{a: " * 3000 + "1" + "}" * 3000),
    "YAML alias bomb": lambda t: _profile(t, _alias_bomb()),
    "alias inside its own anchor": lambda t: _profile(t, "strategy: &s {params: *s}\n"),
    "profile of 2 MB": lambda t: _profile(t, "# padding\n" * 200_000),
    "profile is a folder": lambda t: _profile_folder(t),
    "top-level key not a name": lambda t: _profile(t, "1: {seed: 2}\n"),
    "two YAML documents": lambda t: _profile(t, "--- {}\n--- {}\n"),
    "profile name of 5000 characters": lambda t: (["config", "show", "--profile", "p" * 5000], {}),
    "unknown key of 5000 characters": lambda t: _profile(t, "run: {" + "k" * 5000 + ": 1}\n"),
    "initial_balance .inf": lambda t: _profile(t, "account: {initial_balance: .inf}\n"),
    "initial_balance 1e400": lambda t: _profile(t, "account: {initial_balance: 1.0e+400}\n"),
    "NaN fee": lambda t: _profile(t, "fees: {taker_bps: .nan}\n"),
    "NaN funding rate": lambda t: _profile(t, "account: {default_funding_rate: .nan}\n"),
    "NaN threshold": lambda t: _profile(t, "risk: {max_drawdown: .nan}\n"),
    "NaN strategy param": lambda t: _profile(t, "strategy: {params: {threshold: .nan}}\n"),
    "-inf sharpe threshold": lambda t: _profile(t, "promotion: {min_sharpe: -.inf}\n"),
    "seed beyond 64 bits": lambda t: _profile(t, f"run: {{seed: {2**64}}}\n"),
    "negative seed": lambda t: _profile(t, "run: {seed: -1}\n"),
    "mock.start in year 9999": lambda t: _profile(t, "mock: {start: '9999-12-31T00:00:00Z'}\n"),
    "duration of 10 years and a day": lambda t: _profile(t, "run: {duration: 3653d}\n"),
    "timeframe below a millisecond": lambda t: _profile(t, "strategy: {timeframe: 0.5ms}\n"),
    # environment
    "env list that is not JSON": lambda t: (DEV_RUN, {"PERPS_BOT__RUN__SYMBOLS": "BTC-PERP,["}),
    "env section that is not JSON": lambda t: (DEV_RUN, {"PERPS_BOT__RISK": "x"}),
    "env inf balance": lambda t: (DEV_RUN, {"PERPS_BOT__ACCOUNT__INITIAL_BALANCE": "inf"}),
    "env NaN fee": lambda t: (DEV_RUN, {"PERPS_BOT__FEES__MAKER_BPS": "nan"}),
    # flags
    "--seed 2**64": lambda t: ([*DEV_RUN, "--seed", str(2**64)], {}),
    "--seed 2**63": lambda t: ([*DEV_RUN, "--seed", str(2**63)], {}),
    "--seed -1": lambda t: ([*DEV_RUN, "--seed", "-1"], {}),
    "--seed of 5000 digits": lambda t: ([*DEV_RUN, "--seed", "9" * 5000], {}),
    "--duration 400 digits": lambda t: ([*DEV_RUN[:-1], "9" * 400 + "d"], {}),
    "--param nan": lambda t: ([*DEV_RUN, "--param", "fast=nan"], {}),
    "--param 1e400": lambda t: ([*DEV_RUN, "--param", "slow=1e400"], {}),
    "--strategy of 5000 characters": lambda t: ([*DEV_RUN, "--strategy", "s" * 5000], {}),
    "--symbols of 5000 characters": lambda t: ([*DEV_RUN, "--symbols", "S" * 5000], {}),
    "--param key of 5000 characters": lambda t: ([*DEV_RUN, "--param", "k" * 5000 + "=1"], {}),
    "--http-port 70000": lambda t: ([*DEV_RUN, "--http-port", "70000"], {}),
    "--symbols no portfolio trades": lambda t: _own_symbols_run(t, "--symbols", "XRP-PERP"),
    # paths
    "unwritable log dir": lambda t: (DEV_RUN, {"PERPS_BOT__RUN__LOG_DIR": str(t / "afile/logs")}),
    "unwritable data dir": lambda t: (DEV_RUN, {"PERPS_BOT__RUN__DATA_DIR": str(t / "afile/d")}),
    "unwritable --db": lambda t: ([*DEV_RUN, "--db", str(t / "afile" / "x.sqlite")], {}),
    "--db is a folder": lambda t: ([*DEV_RUN, "--db", str(t)], {}),
    # databases
    "report on a 0-byte database": lambda t: _database(t, b"", "report"),
    "report on a non-SQLite file": lambda t: _database(t, b"not a database\n" * 100, "report"),
    "promote from a 0-byte database": lambda t: _database(t, b"", "promote", "--to", "canary"),
    "run on a non-SQLite file": lambda t: _database(t, b"\x00garbage" * 512, *DEV_RUN),
    # candle, funding and mark files
    "10**400 in a JSON candle file": lambda t: _bad_candles(t, "c.json", _set(5, 2, 10**400)),
    "1e400 in a CSV candle file": lambda t: _bad_candles(t, "c.csv", _set(5, 4, "1e400")),
    "inf price": lambda t: _bad_candles(t, "c.csv", _set(7, 2, "inf")),
    "-inf low": lambda t: _bad_candles(t, "c.json", _set(7, 3, "-Infinity")),
    "inf volume": lambda t: _bad_candles(t, "c.csv", _set(9, 5, "inf")),
    "price 1e300": lambda t: _bad_candles(t, "c.csv", _set(3, 1, 1e300)),
    "timestamp 1e23": lambda t: _bad_candles(t, "c.csv", _set(0, 0, "99999999999999999999999")),
    "timestamp beyond year 9999": lambda t: _bad_candles(t, "c.csv", _set(0, 0, 10**16)),
    "timestamp 2**63 in JSON": lambda t: _bad_candles(t, "c.json", _set(0, 0, 2**63)),
    "timestamp of 50 digits as text": lambda t: _bad_candles(t, "c.csv", _set(1, 0, "9" * 50)),
    "epoch seconds in CSV": lambda t: _bad_candles(t, "c.csv", _seconds),
    "epoch seconds in JSON": lambda t: _bad_candles(t, "c.json.gz", _seconds),
    "JSON nested 100000 deep": lambda t: _raw_file(t, "c.json", b"[" * 100_000 + b"]" * 100_000),
    "CSV with a column twice": lambda t: _raw_file(t, "c.csv", _two_closes("close,close")),
    "CSV with Close and close": lambda t: _raw_file(t, "c.csv", _two_closes("Close,close")),
    "CSV with a column twice and a bad cell": lambda t: _raw_file(
        t, "c.csv", _two_closes("close,close").replace(b",101,", b",abc,", 1)
    ),
    "binary data as CSV": lambda t: _raw_file(t, "c.csv", bytes(range(256)) * 64),
    "mark file covering no candle": lambda t: (
        [
            *BACKTEST,
            "--data",
            str(_candles(t)),
            "--mark",
            str(_shifted_file(t, "m.csv", 20_000 * MINUTE)),
        ],
        {},
    ),
    "mark file of another market": lambda t: (
        [
            *BACKTEST,
            "--data",
            str(_candles(t)),
            "--mark",
            str(write_rows(t / "m.csv", candle_rows(60, T0, MINUTE, 2_000.0))),
        ],
        {},
    ),
    "mark file off the grid by 30s": lambda t: (
        [*BACKTEST, "--data", str(_candles(t)), "--mark", str(_shifted_file(t, "m.csv", 30_000))],
        {},
    ),
    "funding file covering no settlement": lambda t: (
        [*BACKTEST, "--data", str(_candles(t)), "--funding", str(_funding_far(t))],
        {"PERPS_BOT__ACCOUNT__FUNDING_INTERVAL": "30m"},
    ),
    "mark file with nothing in --timerange": lambda t: (
        [
            *BACKTEST,
            "--data",
            str(_candles(t)),
            "--timerange",
            "202401010030-",
            "--mark",
            str(write_rows(t / "m.csv", candle_rows(20, T0, MINUTE, 100.0))),
        ],
        {},
    ),
    "funding file with nothing in --timerange": lambda t: (
        [
            *BACKTEST,
            "--data",
            str(_candles(t)),
            "--timerange",
            "202401010030-",
            "--funding",
            str(_funding_rows(t, T0 - 30 * MINUTE, 2)),
        ],
        {"PERPS_BOT__ACCOUNT__FUNDING_INTERVAL": "30m"},
    ),
    "funding file with the rate in fundingRate": lambda t: _side_file(
        t, "--funding", b"timestamp,fundingRate\n1704067200000,0.0001\n"
    ),
    "funding file at 04:00, 12:00 and 20:00": lambda t: _side_file(
        t, "--funding", b"timestamp,open\n1704081600000,0.0001\n1704110400000,0.0001\n"
    ),
    "mark file without a close": lambda t: _side_file(
        t, "--mark", b"timestamp,open,high,low\n1704067200000,1,1,1\n"
    ),
    "--initial-balance inf": lambda t: _backtest_flags(t, "--initial-balance", "inf"),
    "--initial-balance nan": lambda t: _backtest_flags(t, "--initial-balance", "nan"),
    "--order-size nan": lambda t: _backtest_flags(t, "--order-size", "nan"),
    "--timeframe of 20 digits": lambda t: _backtest_flags(t, "--timeframe", "9" * 20 + "d"),
    # research and data (issue 14)
    "--timerange of 5000 characters": lambda t: _backtest_flags(t, "--timerange", "2" * 5000),
    "--space of 5000 characters": lambda t: _study(t, "optimize", "--space", "x" * 5000),
    "--objective of 5000 characters": lambda t: _study(t, "optimize", "--objective", "y" * 5000),
    "walkforward --train of 400 digits": lambda t: _study(
        t, "walkforward", "--train", "9" * 400 + "d", "--test", "1d"
    ),
    "walkforward --test not a duration": lambda t: _study(
        t, "walkforward", "--train", "1d", "--test", "soon"
    ),
    "download --since in year 9999": lambda t: ([*DOWNLOAD, "--since", "9999-01-01"], {}),
    "download --since of 5000 characters": lambda t: ([*DOWNLOAD, "--since", "2" * 5000], {}),
    "download --timeframe nan": lambda t: (
        [*DOWNLOAD, "--since", "2024-01-01", "--timeframe", "nan"],
        {},
    ),
}


#: What each line must say, where a case's message is worth pinning down.
FRAGMENTS = {
    "mark file of another market": "BTC-PERP: the mark file does not price these candles:"
    " 60 of 60 marks are more than 10% from the candle's close",
    "funding file with the rate in fundingRate": "missing column open (header must be"
    " timestamp,open; found timestamp, fundingRate)",
    "funding file at 04:00, 12:00 and 20:00": "side.csv: row 1 (2024-01-01T04:00:00.000Z):"
    " 4h past the 8h funding grid",
    "mark file without a close": "missing column close (header must be"
    " timestamp,open,high,low,close; found timestamp, open, high, low)",
    "mark file with nothing in --timerange": "the mark file covers none of the candles",
    "funding file with nothing in --timerange": "the funding file has none of the 1 funding",
    "mark file off the grid by 30s": "m.csv: row 1 (2024-01-01T00:00:30.000Z): not on the 1m grid",
    "non-UTF-8 profile": "not UTF-8 text",
    "binary profile": "not UTF-8 text",
    "NUL bytes in a profile": "unacceptable character #x0000",
    "profile nested 5000 levels": "levels deep",
    "mapping nested 3000 levels": "levels deep",
    "YAML alias bomb": "aliases are expanded",
    "alias inside its own anchor": "its own anchor",
    "profile of 2 MB": "larger than",
    "profile is a folder": "cannot read",
    "top-level key not a name": "not a section name",
    "initial_balance .inf": "account.initial_balance: Input should be a finite number",
    "initial_balance 1e400": "finite number",
    "NaN fee": "fees.taker_bps",
    "NaN funding rate": "account.default_funding_rate",
    "NaN threshold": "risk.max_drawdown",
    "NaN strategy param": "finite number",
    "-inf sharpe threshold": "promotion.min_sharpe",
    "seed beyond 64 bits": "run.seed",
    "negative seed": "run.seed",
    "mock.start in year 9999": "mock.start",
    "duration of 10 years and a day": "at most 10 years",
    "timeframe below a millisecond": "at least 1ms",
    "env list that is not JSON": "PERPS_BOT__RUN__SYMBOLS",
    "env section that is not JSON": "PERPS_BOT__RISK",
    "env inf balance": "finite number",
    "env NaN fee": "finite number",
    "--seed 2**64": "run.seed",
    "--seed 2**63": "9223372036854775807",
    "--seed -1": "run.seed",
    "--duration 400 digits": "at most 10 years",
    "--param nan": "not a finite number",
    "--symbols no portfolio trades": "every portfolio of this profile names its own symbols",
    "--param 1e400": "not a finite number",
    "unwritable log dir": "log directory",
    "unwritable data dir": "afile",
    "unwritable --db": "afile",
    "report on a 0-byte database": "not a perps-bot database",
    "report on a non-SQLite file": "not a database",
    "10**400 in a JSON candle file": "too large",
    "1e400 in a CSV candle file": "infinite close",
    "inf price": "infinite high",
    "-inf low": "infinite low",
    "inf volume": "infinite volume",
    "price 1e300": "implausible open",
    "timestamp 1e23": "not between 1970-01-01 and 3000-01-01",
    "timestamp beyond year 9999": "not between 1970-01-01 and 3000-01-01",
    "timestamp 2**63 in JSON": "not between 1970-01-01 and 3000-01-01",
    "timestamp of 50 digits as text": "not between",
    "epoch seconds in CSV": "epoch seconds",
    "epoch seconds in JSON": "epoch seconds",
    "JSON nested 100000 deep": "cannot read JSON",
    "CSV with a column twice": "column close appears twice",
    "CSV with Close and close": "column close appears twice",
    "CSV with a column twice and a bad cell": "column close appears twice",
    "mark file covering no candle": "covers none of the candles",
    "funding file covering no settlement": "none of the",
    "--initial-balance inf": "finite number",
    "--initial-balance nan": "finite number",
    "--timeframe of 20 digits": "at most 10 years",
    "--timerange of 5000 characters": "bad --timerange",
    "--space of 5000 characters": "bad --space",
    "--objective of 5000 characters": "unknown objective",
    "walkforward --train of 400 digits": "bad --train",
    "walkforward --test not a duration": "bad --test",
    "download --since in year 9999": "between 1970 and 3000",
    "download --since of 5000 characters": "bad --since",
    "download --timeframe nan": "bad --timeframe",
}


def _own_symbols_run(tmp: Path, *flags: str) -> Args:
    """A dev run of a profile whose every portfolio names its symbols (a flag's symbols
    would change none of them: ignored without a word)."""
    path = tmp / "own.yaml"
    path.write_text("portfolios:\n  - {id: a, strategy: sma_cross, symbols: [BTC-PERP]}\n"
                    "  - {id: b, strategy: sma_cross, symbols: [ETH-PERP]}\n")  # fmt: skip
    return ["--profile", str(path), *DEV_RUN[2:], *flags], {}


def _database(tmp: Path, content: bytes, *command: str) -> Args:
    path = tmp / "given.sqlite"
    path.write_bytes(content)
    return [*command, "--db", str(path)], {}


def _raw_file(tmp: Path, name: str, content: bytes) -> Args:
    (tmp / name).write_bytes(content)
    return [*BACKTEST, "--data", str(tmp / name)], {}


def _side_file(tmp: Path, flag: str, content: bytes) -> Args:
    """Good candles and a --funding or --mark file of `content`."""
    path = tmp / "side.csv"
    path.write_bytes(content)
    return [*BACKTEST, "--data", str(_candles(tmp)), flag, str(path)], {}


def _two_closes(closes: str) -> bytes:
    """A CSV whose header names the close twice (which of the two is the close?)."""
    rows = [f"{T0 + i * MINUTE},100,101,99,100,{50 + i},5" for i in range(30)]
    return "\n".join([f"timestamp,open,high,low,{closes},volume", *rows, ""]).encode()


def _funding_far(tmp: Path) -> Path:
    """Funding times 100 days after the candles (on the 30m grid)."""
    return _funding_rows(tmp, T0 + 100 * 86_400_000, 10)


def _funding_rows(tmp: Path, start: int, n: int) -> Path:
    """n half-hourly funding rates from `start`."""
    rows = candle_rows(n, start, 30 * MINUTE, 100.0)
    for row in rows:
        row[1] = 0.0001
    return write_rows(tmp / "f.csv", rows)


def _backtest_flags(tmp: Path, *flags: str) -> Args:
    return [*BACKTEST, "--data", str(_candles(tmp)), *flags], {}


def _study(tmp: Path, command: str, *flags: str) -> Args:
    """`optimize` or `walkforward` of sma_cross over a small file, with `flags`."""
    study = ["--strategy", "sma_cross", "--space", "fast=int:2:9", "--trials", "1", "-j", "1"]
    return [command, "--data", str(_candles(tmp)), "--symbol", "BTC-PERP", *study, *flags], {}


@pytest.mark.parametrize("case", sorted(CASES))
def test_known_bad_input_is_one_line_and_exit_2(workdir: Path, case: str) -> None:
    args, env = CASES[case](workdir)
    started = time.perf_counter()
    line = assert_bad_input(run_main(args, env), case)
    assert FRAGMENTS.get(case, "") in line, f"{case}: {FRAGMENTS[case]!r} not in {line!r}"
    assert time.perf_counter() - started < 10, f"{case}: too slow for bad input"


def test_every_pinned_message_belongs_to_a_case() -> None:
    assert set(FRAGMENTS) <= set(CASES)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize(
    ("path", "setter"), [pytest.param(path, setter, id=path) for path, setter in float_settings()]
)
def test_every_float_setting_refuses_non_finite(
    workdir: Path, path: str, setter: Callable[[object], object], value: str
) -> None:
    """Every float of the config (found by walking the models) refuses NaN and infinity,
    and the line names where it is."""
    import yaml

    text = yaml.safe_dump(nested(path, setter("VALUE")), sort_keys=False)
    args, _ = _profile(workdir, text.replace("VALUE", value))
    line = assert_bad_input(run_main(args), path)
    assert "finite number" in line, line
    assert path.split("[")[0].replace("BTC-PERP.", "").split(".")[-1] in line, line


def test_the_float_walk_finds_the_float_settings() -> None:
    """The walk above must find every float section, or the test proves nothing."""
    paths = {path.split(".")[0] for path, _ in float_settings()}
    assert {"account", "fees", "instruments", "mock", "promotion", "risk", "strategy"} <= paths
    assert len(float_settings()) >= 45


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_input_leaves_a_database_with_runs_as_it_was(workdir: Path) -> None:
    """State already written is never lost or changed by bad input given afterwards."""
    db = workdir / "runs.sqlite"
    assert run_main([*DEV_RUN, "--db", str(db)]).code == 0
    before = _digest(db)
    bad = [
        _profile(workdir, "account: {initial_balance: .inf}\n")[0][2:] + DEV_RUN[1:],
        [*DEV_RUN, "--seed", str(2**64)],
        [*DEV_RUN, "--duration", "99999999999999999999d"],
        [*DEV_RUN, "--strategy", "nope"],
        [*DEV_RUN, "--symbols", "NOPE-PERP"],
        _bad_candles(workdir, "c.csv", _seconds)[0],
        _bad_candles(workdir, "c.csv", _set(7, 2, "inf"))[0],
    ]
    for args in bad:
        outcome = run_main([*args, "--db", str(db)])
        assert_bad_input(outcome, args[:3])
        assert _digest(db) == before, args[:3]


@pytest.mark.parametrize(
    "command", [["report"], ["promote", "--to", "canary"], DEV_RUN], ids=lambda c: c[0]
)
def test_another_programs_database_is_refused_untouched(workdir: Path, command: list[str]) -> None:
    """A --db that is some other program's SQLite file gets no tables of ours."""
    db = workdir / "theirs.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (text TEXT)")
        con.execute("INSERT INTO notes VALUES ('keep me')")
    con.close()
    before = _digest(db)
    line = assert_bad_input(run_main([*command, "--db", str(db)]), command)
    assert "not a perps-bot database" in line
    assert _digest(db) == before


@pytest.mark.integration
@pytest.mark.parametrize(
    "case",
    [
        "non-UTF-8 profile",
        "YAML alias bomb",
        "--duration 400 digits",
        "report on a 0-byte database",
        "epoch seconds in CSV",
    ],
)
def test_known_bad_input_through_the_installed_command(workdir: Path, case: str) -> None:
    """The same rule seen from outside: the real entry point, exit code and stderr."""
    args, env = CASES[case](workdir)
    env = {"PERPS_BOT__RUN__LOG_DIR": str(workdir / "logs"), **env}
    started = time.perf_counter()
    line = assert_bad_input(run_subprocess(args, cwd=workdir, env=env), case)
    assert FRAGMENTS.get(case, "") in line, f"{case}: {FRAGMENTS[case]!r} not in {line!r}"
    assert time.perf_counter() - started < 20, f"{case}: too slow for bad input"


@pytest.mark.integration
def test_duration_beyond_ten_years_is_refused_not_run(workdir: Path) -> None:
    """`--duration 99999999999999999999d` used to start a run that never ends."""
    outcome = run_subprocess(
        ["--profile", "dev", "--dev-fast", "--duration", "99999999999999999999d"], cwd=workdir
    )
    line = assert_bad_input(outcome)
    assert "at most 10 years" in line
