"""Generated bad input (issue 11): hypothesis breaks a valid profile, the environment
or a valid command line in ONE named way (a defect class), with random places,
values and sizes, and the CLI must answer each case with one line under 300
characters and exit code 2 (tests.badinput.harness), and, where the class has one,
with the words that name the problem. Every generated case is bad for certain: a
valid input in disguise would fail the test, not pass it.

Each defect class is its own parametrized test with EXAMPLES generated cases, so
every class is exercised every run (one hypothesis search over all classes favours
a few). Everything runs in this process (main() of the CLI, a few ms a case), with
the generation derandomized: the suite's cases and cost are the same every run.
Data files: test_fuzz_bad_data_files.py.
"""

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.badinput.harness import EXAMPLES, FUZZ, NON_FINITE_TEXT, check_line
from tests.badinput.inputs import float_settings, nested

FLOATS = float_settings()
NON_FINITE_YAML = [".nan", ".NaN", ".inf", ".Inf", "-.inf", "+.inf", "1.0e+400", "-9.9e+999"]
DURATION_FIELDS = [
    "run.duration",
    "run.equity_interval",
    "exchange.poll_interval",
    "exchange.backoff_max",
    "mock.tick_interval",
    "mock.latency",
    "account.funding_interval",
    "strategy.timeframe",
    "risk.stale_after",
    "promotion.sharpe_period",
]
names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=400)
# (how to make the case, a fragment its line must contain: "" for none)
Defects = dict[str, tuple[st.SearchStrategy[object], str]]


# -- profiles -------------------------------------------------------------------------


def _yaml(data: dict[str, object], value: str | None = None) -> bytes:
    text = yaml.safe_dump(data, sort_keys=False)
    return (text if value is None else text.replace("VALUE", value)).encode()


@st.composite
def _non_finite_setting(draw: st.DrawFn) -> bytes:
    path, setter = draw(st.sampled_from(FLOATS))
    return _yaml(nested(path, setter("VALUE")), draw(st.sampled_from(NON_FINITE_YAML)))


@st.composite
def _bad_duration(draw: st.DrawFn) -> bytes:
    value = draw(
        st.one_of(
            st.integers(3653, 10**30).map(lambda n: f"{n}d"),
            st.integers(522, 10**9).map(lambda n: f"{n}w"),
            st.sampled_from(["0s", "0ms", "0.1ms", "-1m", "1y", "1 day", "", "7", "d7"]),
            st.text(string.ascii_letters, min_size=1, max_size=300).map(lambda t: "x" + t),
        )
    )
    return _yaml(nested(draw(st.sampled_from(DURATION_FIELDS)), value))


@st.composite
def _unknown_key(draw: st.DrawFn) -> bytes:
    section = draw(st.sampled_from(["run", "risk", "account", "fees", "mock", "strategy", ""]))
    key = "x_" + draw(names)
    return _yaml({key: 1} if not section else {section: {key: 1}})


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(51, 4000))
    if draw(st.booleans()):
        return f"run: {'[' * depth}{']' * depth}\n".encode()
    return f"run: {'{a: ' * depth}1{'}' * depth}\n".encode()


@st.composite
def _alias_bomb(draw: st.DrawFn) -> bytes:
    fan = draw(st.integers(4, 12))
    levels = draw(st.integers(2, 12))
    while fan**levels <= 100_000:  # the bound: more values than this once expanded
        levels += 1
    parts = ["&a0 [" + ", ".join(["x"] * fan) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels)]
    where = draw(st.sampled_from(["strategy:\n  name", "run:\n  symbols", "strategy:\n  params"]))
    return f"{where}: [{', '.join(parts)}]\n".encode()


@st.composite
def _not_utf8(draw: st.DrawFn) -> bytes:
    blob = draw(st.binary(max_size=300))
    cut = draw(st.integers(0, len(blob)))
    bad = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"]))
    return blob[:cut] + bad + blob[cut:]


@st.composite
def _broken_syntax(draw: st.DrawFn) -> bytes:
    good = _yaml({"run": {"seed": 1, "symbols": ["BTC-PERP"]}, "risk": {"max_leverage": 3}})
    junk = draw(st.sampled_from(["[oops", "{a: [}", "a: b: c", "\t- x", "&", "*nowhere", "!!x y"]))
    return good + f"fees: {junk}\n".encode()


@st.composite
def _not_sections(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        top = draw(st.one_of(st.lists(st.integers(), min_size=1), st.integers(), names))
        return yaml.safe_dump(top).encode()
    key = draw(st.integers() | st.booleans() | st.floats(allow_nan=False))
    return yaml.safe_dump({key: {"seed": 1}}).encode()


@st.composite
def _wrong_type(draw: st.DrawFn) -> bytes:
    path, setter = draw(st.sampled_from(FLOATS))
    value = draw(st.sampled_from([[1, 2], {"a": 1}, "lots", True, False, "2024-01-01"]))
    if path.startswith("strategy.params") and isinstance(value, str | bool):
        value = [1, 2]  # a string or a bool is a valid strategy param
    return _yaml(nested(path, setter(value)))


PROFILE_DEFECTS: Defects = {
    "non-finite float": (_non_finite_setting(), "finite number"),
    "bad duration": (_bad_duration(), "duration"),
    "seed out of range": (
        st.integers(min_value=2**63).map(lambda seed: _yaml({"run": {"seed": seed}}))
        | st.integers(max_value=-1).map(lambda seed: _yaml({"run": {"seed": seed}})),
        "run.seed",
    ),
    "unknown key": (_unknown_key(), "unknown key"),
    "nested too deep": (_deep(), "levels deep"),
    "alias bomb": (_alias_bomb(), "aliases are expanded"),
    "not UTF-8": (_not_utf8(), "not UTF-8"),
    "invalid YAML": (_broken_syntax(), "invalid YAML"),
    "top level not sections": (_not_sections(), ""),
    "wrong type": (_wrong_type(), "config error"),
}


@pytest.mark.parametrize("defect", sorted(PROFILE_DEFECTS))
@FUZZ
@given(data=st.data())
def test_generated_bad_profiles(workdir: Path, defect: str, data: st.DataObject) -> None:
    strategy, fragment = PROFILE_DEFECTS[defect]
    path = workdir / "fuzz.yaml"
    path.write_bytes(data.draw(strategy))  # type: ignore[arg-type]
    check_line(defect, fragment, ["config", "show", "--profile", str(path)])


# -- flags and environment ------------------------------------------------------------

RUN = ["--profile", "dev", "--dev-fast", "--duration", "1m"]
KNOWN_SYMBOLS = {"BTC-PERP", "ETH-PERP", "XRP-PERP"}
Case = tuple[list[str], dict[str, str]]  # (argv, environment)


def _flag(*flags: str) -> Case:
    return [*RUN, *flags], {}


def _env(path: str, value: str) -> Case:
    return RUN, {"PERPS_BOT__" + path.replace(".", "__").upper(): value}


FLAG_DEFECTS: Defects = {
    "--seed out of range": (
        (st.integers(min_value=2**63) | st.integers(max_value=-1)).map(
            lambda seed: _flag("--seed", str(seed))
        ),
        "",
    ),
    "--duration beyond 10 years": (
        st.builds(
            lambda n, unit: ([*RUN[:-1], f"{n}{unit}"], {}),
            st.integers(10**4, 10**40),
            st.sampled_from(["d", "w"]),
        ),
        "at most 10 years",
    ),
    "--param not finite": (
        st.builds(
            lambda key, value: _flag("--param", f"{key}={value}"),
            st.sampled_from(["fast", "slow", "x"]),
            st.sampled_from(NON_FINITE_TEXT),
        ),
        "not a finite number",
    ),
    "--param malformed": (
        (st.text(string.ascii_letters, max_size=300) | st.sampled_from(["=5", "k=", " = "])).map(
            lambda text: _flag("--param", text)
        ),
        "bad --param",
    ),
    "--strategy unknown": (names.map(lambda n: _flag("--strategy", "nosuch_" + n)), "strategy"),
    "--symbols unknown": (
        names.map(str.upper)
        .filter(lambda s: s not in KNOWN_SYMBOLS)
        .map(lambda s: _flag("--symbols", s)),
        "unknown symbol",
    ),
    "--log-level unknown": (
        names.filter(lambda s: s.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR")).map(
            lambda s: _flag("--log-level", s)
        ),
        "run.log_level",
    ),
    "--http-port out of range": (
        (st.integers(max_value=0) | st.integers(min_value=65536)).map(
            lambda port: _flag("--http-port", str(port))
        ),
        "run.http_port",
    ),
    "unknown flag": (names.map(lambda n: _flag("--x-" + n)), "No such option"),
    "--profile unknown": (names.map(lambda n: (["--profile", "nosuch_" + n], {})), "not found"),
    "environment not finite": (
        st.builds(
            _env,
            st.sampled_from([path for path, _ in FLOATS if "[" not in path]),
            st.sampled_from(NON_FINITE_TEXT),
        ),
        "",
    ),
    "environment not JSON": (
        st.sampled_from(["[", "BTC-PERP,[", "{", '["a",', "[1,,2]"]).map(
            lambda value: _env("run.symbols", value)
        ),
        "PERPS_BOT__RUN__SYMBOLS",
    ),
}


@pytest.mark.parametrize("defect", sorted(FLAG_DEFECTS))
@FUZZ
@given(data=st.data())
def test_generated_bad_flags_and_environment(
    workdir: Path, defect: str, data: st.DataObject
) -> None:
    strategy, fragment = FLAG_DEFECTS[defect]
    case: Case = data.draw(strategy)  # type: ignore[assignment]
    check_line(defect, fragment, *case)


def test_case_counts() -> None:
    """The figures these tests stand for: classes x EXAMPLES generated cases."""
    classes = len(PROFILE_DEFECTS) + len(FLAG_DEFECTS)
    assert classes >= 20
    assert classes * EXAMPLES >= 400
