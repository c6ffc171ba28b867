"""The compiled hot path (perps_bot.compiled, scripts/compile_hot_path.py).

Two promises: a build is used only while it matches every source it was built from
(all or none; never a stale extension in place of an edited file), and the compiled run
and the pure-Python run are the same program (byte-identical stored results)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perps_bot import compiled
from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "compile_hot_path.py"


@pytest.fixture
def restore_activation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """activate() changes the process (its finder, its state): put both back. And it
    looks as from a fresh process, where none of the engine is imported yet."""
    for module in compiled.COMPILED_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    finders = list(sys.meta_path)
    saved = compiled._state, compiled._active
    yield
    sys.meta_path[:] = finders
    compiled._state, compiled._active = saved


def _fake_build(root: Path) -> dict[str, object]:
    """A build directory whose manifest matches the sources (placeholder files)."""
    files = {}
    for module in compiled.COMPILED_MODULES:
        rel = Path(*module.split(".")).with_suffix(".so")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
        files[module] = str(rel)
    manifest: dict[str, object] = {
        "interpreter": compiled.interpreter_tag(),
        "modules": list(files),
        "sources": compiled.source_digests(),
        "files": files,
    }
    _write(root, manifest)
    return manifest


def _write(root: Path, manifest: dict[str, object]) -> None:
    (root / compiled.MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.usefixtures("restore_activation")
def test_a_build_that_matches_every_source_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    _fake_build(tmp_path)
    before = len(sys.meta_path)
    assert compiled.activate(tmp_path)
    assert len(sys.meta_path) == before + 1
    assert compiled.describe() == f"compiled hot path ({len(compiled.COMPILED_MODULES)} modules)"
    spec = sys.meta_path[0].find_spec(compiled.COMPILED_MODULES[0], None)  # type: ignore[call-arg]
    assert spec is not None and spec.origin == str(
        tmp_path / Path(*compiled.COMPILED_MODULES[0].split(".")).with_suffix(".so")
    )


@pytest.mark.usefixtures("restore_activation")
@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        # one compiled module edited after the build: none of the build is used
        ("compiled source", "ledger/ledger.py changed since the build"),
        # nor when a module it imports changed (mypyc copies its Final constants in)
        ("other source", "domain/enums.py changed since the build"),
        ("new source", "domain/brand_new.py changed since the build"),
        ("interpreter", "built for another Python"),
        ("modules", "built from another module list"),
        ("file", "an extension of the build is missing"),
        ("manifest", "no compiled build"),
    ],
)
def test_a_build_that_does_not_match_is_not_used_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: str, reason: str
) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    manifest = _fake_build(tmp_path)
    modules, sources, files = manifest["modules"], manifest["sources"], manifest["files"]
    assert isinstance(modules, list) and isinstance(sources, dict) and isinstance(files, dict)
    if spoil == "compiled source":
        sources["ledger/ledger.py"] = "0" * 64
    elif spoil == "other source":
        assert "perps_bot.domain.enums" not in compiled.COMPILED_MODULES
        sources["domain/enums.py"] = "0" * 64
    elif spoil == "new source":  # the build knew of a module the package no longer has
        sources["domain/brand_new.py"] = "0" * 64
    elif spoil == "interpreter":
        manifest["interpreter"] = "cpython-39.so"
    elif spoil == "modules":
        modules.pop()
    elif spoil == "file":
        (tmp_path / files[compiled.COMPILED_MODULES[-1]]).unlink()
    if spoil == "manifest":
        (tmp_path / compiled.MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    else:
        _write(tmp_path, manifest)
    finders = list(sys.meta_path)
    assert not compiled.activate(tmp_path)
    assert sys.meta_path == finders
    assert compiled.describe().startswith("pure Python (") and reason in compiled.describe()


@pytest.mark.usefixtures("restore_activation")
def test_a_build_is_not_used_once_one_of_its_modules_runs_as_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or none: a command that imported part of the engine before activating would
    mix compiled and plain classes."""
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    _fake_build(tmp_path)
    monkeypatch.setitem(sys.modules, compiled.COMPILED_MODULES[0], sys.modules[__name__])
    assert not compiled.activate(tmp_path)
    assert (
        compiled.describe() == f"pure Python ({compiled.COMPILED_MODULES[0]} was imported before)"
    )


@pytest.mark.usefixtures("restore_activation")
def test_perps_bot_pure_turns_a_matching_build_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_build(tmp_path)
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert not compiled.activate(tmp_path)
    assert compiled.describe() == f"pure Python ({compiled.PURE_ENV} is set)"


def _script() -> object:
    spec = importlib.util.spec_from_file_location("compile_hot_path", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("mode", "code"), [("auto", 0), ("required", 1), ("off", 0)])
def test_without_a_compiler_install_goes_on_unless_the_build_is_required(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str, code: int
) -> None:
    script = _script()
    monkeypatch.setattr(script, "missing_toolchain", lambda: "no C compiler (cc)")
    monkeypatch.setattr(sys, "argv", ["compile_hot_path.py", "--mode", mode])
    assert script.main() == code  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "pure Python" in out
    assert ("no C compiler" in out) == (mode != "off")


def _backtest(tmp_path: Path, data: Path, pure: bool) -> tuple[Path, str]:
    db = tmp_path / ("pure.sqlite" if pure else "compiled.sqlite")
    env = {**os.environ, compiled.PURE_ENV: "1" if pure else "0"}
    command = [
        sys.executable, "-m", "perps_bot", "backtest", "--profile", "dev",
        "--data", str(data), "--symbol", "XRP-PERP", "--strategy", "sma_cross",
        "--param", "fast=5", "--param", "slow=20", "--order-size", "100", "--db", str(db),
        "--no-progress",
    ]  # fmt: skip
    version = subprocess.run(
        [sys.executable, "-m", "perps_bot", "--version"], env=env, capture_output=True, text=True
    )
    assert ("pure Python" if pure else "compiled hot path for backtest") in version.stdout
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return db, done.stdout.replace(str(db), "DB").split("\n", 2)[-1]


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        names = ["fills", "orders", "funding", "equity_blocks", "excursions", "positions"]
        return {
            name: conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall() for name in names
        }


@pytest.mark.integration
def test_the_compiled_run_stores_the_same_bytes_as_pure_python(tmp_path: Path) -> None:
    if not compiled.describe().startswith("compiled"):
        pytest.skip(f"no compiled build here: {compiled.describe()}")
    candles = SHARED_DATA / "futures" / "XRP_USDT_USDT-5m-futures.feather"
    pure_db, pure_report = _backtest(tmp_path, candles, pure=True)
    compiled_db, compiled_report = _backtest(tmp_path, candles, pure=False)
    pure, built = _tables(pure_db), _tables(compiled_db)
    assert len(pure["fills"]) > 10
    run_ids = {row[0] for row in pure["fills"]} | {row[0] for row in built["fills"]}
    assert len(run_ids) == 2  # two runs: compare all but the run id
    for name in pure:
        assert [row[1:] for row in built[name]] == [row[1:] for row in pure[name]], name
    assert compiled_report == pure_report


def _package(root: Path) -> Path:
    """A small package whose files were last modified a minute ago."""
    package = root / "pkg"
    (package / "sub").mkdir(parents=True)
    minute_ago = time.time_ns() - 60_000_000_000
    for rel, text in (("a.py", "A = 1\n"), ("sub/b.py", "B = 2\n")):
        (package / rel).write_text(text, encoding="utf-8")
        os.utime(package / rel, ns=(minute_ago, minute_ago))
    return package


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_digests_read_a_file_again_once_its_size_or_time_changed(tmp_path: Path) -> None:
    package, cache = _package(tmp_path), tmp_path / compiled.DIGEST_CACHE
    assert compiled.source_digests(package, cache) == compiled.source_digests(package)
    entries = json.loads(cache.read_text(encoding="utf-8"))
    assert entries["a.py"][2] == _sha(package / "a.py")
    # a recorded digest stands for the file while its size and time are as recorded
    entries["a.py"][2] = "recorded"
    cache.write_text(json.dumps(entries), encoding="utf-8")
    assert compiled.source_digests(package, cache)["a.py"] == "recorded"
    # an edit of the same size moves the time: the file is read again
    (package / "a.py").write_text("A = 3\n", encoding="utf-8")
    digests = compiled.source_digests(package, cache)
    assert digests["a.py"] == _sha(package / "a.py") != entries["a.py"][2]
    assert digests["sub/b.py"] == _sha(package / "sub" / "b.py")
    # a file added or removed since is seen as such
    (package / "c.py").write_text("C = 4\n", encoding="utf-8")
    (package / "sub" / "b.py").unlink()
    assert sorted(compiled.source_digests(package, cache)) == ["a.py", "c.py"]


def test_a_file_modified_just_before_its_digest_was_recorded_is_read_again(
    tmp_path: Path,
) -> None:
    """An edit in the same clock tick as the recording would keep the recorded time:
    a file that recent is not trusted to its stat (git's 'racily clean' entries)."""
    package, cache = _package(tmp_path), tmp_path / compiled.DIGEST_CACHE
    compiled.source_digests(package, cache)
    entries = json.loads(cache.read_text(encoding="utf-8"))
    entries["a.py"][2] = "recorded"
    cache.write_text(json.dumps(entries), encoding="utf-8")
    recorded_ns = entries["a.py"][1] + compiled.RACY_NS // 2  # the cache's own time
    os.utime(cache, ns=(recorded_ns, recorded_ns))
    assert compiled.source_digests(package, cache)["a.py"] == _sha(package / "a.py")


@pytest.mark.parametrize("text", ["{not json", '["a list"]', '{"a.py": [1, 2]}'])
def test_an_unreadable_digest_cache_is_hashed_over(tmp_path: Path, text: str) -> None:
    package, cache = _package(tmp_path), tmp_path / compiled.DIGEST_CACHE
    cache.write_text(text, encoding="utf-8")
    assert compiled.source_digests(package, cache) == compiled.source_digests(package)
    assert json.loads(cache.read_text(encoding="utf-8"))["a.py"][2] == _sha(package / "a.py")
