"""A profile's name (its `profile:` line, or the file's name when it has none) names
its database (data/perps_bot.<profile>.sqlite) and its run ids, which the `--http-port`
dashboard and API use as the session id in /api/sessions/{id} (escaped: the name is
free text). A name with '/' put the database in another folder (`profile: ../x`:
outside data/), a control character or a name too long made no file name: it is
refused in one line, exit 2, before anything is written."""

import json
from pathlib import Path

import pytest

from perps_bot.config import ConfigError, load_settings
from tests.durable.helpers import cli

BAD = ["a/b", "../esc", "a\\b", "tab\there", "nul\x00", "", "  ", "x" * 201]


@pytest.mark.parametrize("name", BAD)
def test_a_profile_name_that_is_no_file_name_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(f"profile: {json.dumps(name)}\nrun:\n  dev_fast: true\n")
    with pytest.raises(ConfigError, match=r"^config error: profile: .* is no profile name: "):
        load_settings(str(path))


def test_the_run_is_refused_before_it_writes_anything(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    data = tmp_path / "data"
    path.write_text(f"profile: a/b\nrun:\n  dev_fast: true\n  data_dir: {data}\n")
    done = cli("--profile", str(path), "--duration", "2h", tmp=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "profile" in done.stderr and "'a/b'" in done.stderr
    assert not data.exists()


def test_free_text_names_stay_allowed(tmp_path: Path) -> None:
    path = tmp_path / "my desk #1.yaml"
    path.write_text("run:\n  dev_fast: true\n")
    assert load_settings(str(path)).profile == "my desk #1"
    named = tmp_path / "mine.yaml"
    named.write_text("profile: 'desk? 50% & co'\nrun:\n  dev_fast: true\n")
    assert load_settings(str(named)).profile == "desk? 50% & co"
    assert load_settings("dev").profile == "dev"
