"""Bad input at the command line is one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bogus-flag"], "No such option"),
        (["--seed", "abc"], "--seed"),
        (["--profile", "staging"], "profile 'staging' not found"),
        (["--profile", "dev", "--dev-fast", "--strategy", "nope"], "unknown strategy"),
        (["--profile", "dev", "--dev-fast", "--param", "fast"], "bad --param"),
        (["--profile", "dev", "--dev-fast", "--duration", "forever"], "run.duration"),
        (["--profile", "canary", "--dev-fast"], "--dev-fast needs the mock broker"),
        (["config", "show", "--profile", "staging"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_broken_profile_file_is_one_line(tmp_path: Path) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text("risk:\n  max_leverage: [oops\n")
    result = _cli("--profile", str(profile), "--dev-fast")
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr and "Traceback" not in result.stderr


def test_version_and_help() -> None:
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("perps-bot ")
    help_text = _cli("--help")
    assert help_text.returncode == 0
    for option in (
        "--profile",
        "--dev-fast",
        "--dry-run",
        "--seed",
        "--duration",
        "--symbols",
        "--strategy",
        "--param",
        "--log-level",
    ):
        assert option in help_text.stdout


def test_config_show_masks_secrets() -> None:
    env_result = subprocess.run(
        [sys.executable, "-m", "perps_bot", "config", "show", "--profile", "prod"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PERPS_BOT__EXCHANGE__API_KEY": "very-secret-key"},
    )
    assert env_result.returncode == 0, env_result.stderr
    assert "very-secret-key" not in env_result.stdout
    assert "********" in env_result.stdout
