"""`perps_bot.__version__` is the installed metadata's Version, read without importing
importlib.metadata where the layout is the plain one, and by importlib.metadata
wherever it is not."""

import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import perps_bot


def _dist_info(folder: Path, name: str, text: str) -> None:
    info = folder / name
    info.mkdir(parents=True)
    (info / "METADATA").write_text(text, encoding="utf-8")


def test_the_installed_version_is_what_importlib_metadata_says() -> None:
    assert perps_bot._installed_version() == version("perps-bot")


def test_the_first_path_entry_naming_the_project_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist_info(
        first,
        "perps_bot-9.1.dist-info",
        "Metadata-Version: 2.4\nName: perps-bot\nVersion: 9.1\n\nbody\n",
    )
    _dist_info(second, "perps_bot-1.0.dist-info", "Name: perps-bot\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(first), str(second)])
    assert perps_bot._installed_version() == "9.1"


@pytest.mark.parametrize(
    "names",
    [
        ["perps_bot-1.0.dist-info", "perps_bot-2.0.dist-info"],  # two candidates
        ["perps_bot-1.0.egg-info"],  # an egg's metadata
        ["Perps-Bot-1.0.dist-info"],  # another spelling
    ],
)
def test_a_layout_that_is_not_the_plain_one_is_left_to_importlib(
    names: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in names:
        _dist_info(tmp_path, name, "Name: perps-bot\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert perps_bot._installed_version() is None


def test_a_zip_on_the_path_or_metadata_without_a_version_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "lib.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("perps_bot-3.0.dist-info/METADATA", "Version: 3.0\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert perps_bot._installed_version() is None
    _dist_info(tmp_path / "d", "perps_bot-1.0.dist-info", "Name: perps-bot\n\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "d")])
    assert perps_bot._installed_version() is None


def test_version_falls_back_to_importlib_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perps_bot, "_installed_version", lambda: None)
    monkeypatch.delitem(perps_bot.__dict__, "__version__", raising=False)
    assert perps_bot.__getattr__("__version__") == version("perps-bot")
