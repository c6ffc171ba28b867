"""Running the CLI on bad input and checking the product's rule for it (issue 11):
ONE short line on stderr, exit code 2, no traceback, no "internal error".

`run_main` calls `perps_bot.cli.app.main` in this process (milliseconds a case, so
hundreds of generated cases fit in the suite); `run_subprocess` runs the installed
command for the few cases that must be seen from outside (about a second each).
"""

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

from perps_bot.cli.app import main

#: The longest acceptable error line (issue 11: "one short clear line").
MAX_LINE = 300
#: Generated cases per defect class; derandomized, so every run has the same cases.
EXAMPLES = 20
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Non-finite numbers as text (flags, environment, CSV cells, JSON tokens).
NON_FINITE_TEXT = ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e999"]


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set variables for one in-process run and restore the environment after it
    (hypothesis runs many examples inside one test, so monkeypatch does not fit)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class TookTooLong(Exception):
    """Bad input that was not refused at once (e.g. a run of 99999999999999999999 days)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise TookTooLong in this (main) thread after `seconds`: a case that regresses
    into a run that never ends fails the test instead of hanging the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_main(
    args: list[str], env: Mapping[str, str] | None = None, *, timeout: float = 15
) -> Outcome:
    """`perps-bot ARGS` in this process; stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with (
        environment(env or {}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        deadline(timeout),
    ):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(code, out.getvalue(), err.getvalue())


def run_subprocess(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> Outcome:
    """`python -m perps_bot ARGS` in a child process (the real console entry point)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "perps_bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def bad_input_problems(outcome: Outcome) -> list[str]:
    """What is wrong with how the CLI answered bad input (empty: it followed the rule)."""
    problems = []
    if outcome.code != 2:
        problems.append(f"exit code {outcome.code}, not 2")
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines, not 1")
    elif len(lines[0]) >= MAX_LINE:
        problems.append(f"a {len(lines[0])}-character line, not under {MAX_LINE}")
    elif not lines[0].startswith("perps-bot: "):
        problems.append("the line does not start with 'perps-bot: '")
    if "Traceback" in outcome.err or "internal error" in outcome.err:
        problems.append("a traceback or an internal error")
    return problems


def assert_bad_input(outcome: Outcome, case: object = "") -> str:
    """Assert the rule; return the one stderr line."""
    problems = bad_input_problems(outcome)
    assert not problems, f"{case}: {'; '.join(problems)}\nstderr: {outcome.err[:2000]!r}"
    return outcome.err.strip()


def check_line(
    defect: str, fragment: str, args: list[str], env: dict[str, str] | None = None
) -> None:
    """Run `args` in this process; assert the rule and that the line says `fragment`."""
    line = assert_bad_input(run_main(args, env), defect)
    assert fragment in line, f"{defect}: {fragment!r} not in {line!r}"
