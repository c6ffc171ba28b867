"""A command loads its profile twice (checked, then with its options): the second load
of the same text is a copy of the first parse, which the caller may change freely, and
an edited file is parsed again."""

from pathlib import Path

import pytest
import yaml

from perps_bot.config import load_settings
from perps_bot.config.profile_yaml import load_profile_file


def test_the_same_text_is_parsed_once_and_handed_out_as_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("run:\n  symbols: [BTC-PERP]\nrisk:\n  max_drawdown: 0.2\n")
    first = load_profile_file(path)
    first["run"]["symbols"].append("ETH-PERP")  # the caller's own copy
    monkeypatch.setattr(yaml, "load", lambda *a, **k: pytest.fail("parsed again"))
    assert load_profile_file(path) == {
        "run": {"symbols": ["BTC-PERP"]},
        "risk": {"max_drawdown": 0.2},
    }
    monkeypatch.undo()
    path.write_text("run:\n  symbols: [ETH-PERP]\n")
    assert load_profile_file(path) == {"run": {"symbols": ["ETH-PERP"]}}


def test_a_profile_loaded_twice_gives_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "dev2.yaml"
    path.write_text("profile: dev2\nrun:\n  symbols: [BTC-PERP]\n  seed: 7\n")
    first = load_settings(str(path))
    second = load_settings(str(path), {"run": {"seed": 8}})
    assert (first.run.seed, second.run.seed) == (7, 8)
    assert load_settings(str(path)) == first
