"""Build the compiled hot path (mypyc) into .tools/compiled, or say why not and exit 0.

`make install` runs this after `poetry install`. The modules it compiles are
`perps_bot.compiled.COMPILED_MODULES`; the product loads the build only while every
source of the package hashes as it did here (see `perps_bot.compiled`), so a build never
stands in for an edited file: an edit turns the process back to pure Python until the
next `make install` rebuilds.

Where there is no C compiler or no Python headers (a fresh machine without gcc or
python3-dev), nothing is built and perps-bot runs as pure Python: same results, slower.

How: the sources are copied first and the copies are hashed and compiled, so a file
edited during the build cannot be recorded under the wrong hash. mypy runs with a
config of its own (strict, without the pydantic plugin, which mypyc does not need),
mypyc writes C, setuptools compiles it with the interpreter's compiler, and the new
build replaces the old one in one rename, manifest last.

Modes (`make install COMPILE=...`): `auto` builds where it can and otherwise says why and
goes on (exit 0: pure Python works everywhere); `required` exits 1 where it cannot build
(CI, so that a green run is a compiled run); `off` builds nothing.

Run: `.venv/bin/python scripts/compile_hot_path.py [--mode auto|required|off] [--force]
[--opt-level 2] [--jobs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from perps_bot import compiled  # noqa: E402  (the module list and manifest format)

GROUP = "perps_bot_hot"
MYPY_CONFIG = """[mypy]
python_version = 3.11
strict = True
mypy_path = {src}

[mypy-ccxt.*,ccxt,pyarrow,pyarrow.*]
ignore_missing_imports = True
"""


def missing_toolchain() -> str | None:
    """Why no extension can be built here, or None when a compiler and headers exist."""
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")[:1]
    if not compiler or shutil.which(compiler[0]) is None:
        return f"no C compiler ({' '.join(compiler) or 'cc'})"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        return f"no Python headers ({headers}; Debian: apt-get install python3-dev)"
    try:
        import mypyc.build  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as exc:
        return f"no mypyc or setuptools in this environment ({exc.name})"
    return None


def _parallel_compile(jobs: int) -> None:
    """setuptools compiles one extension's C files one after another; the hot path is
    one extension of many files, so compile them on `jobs` threads (gcc processes)."""
    from distutils import ccompiler  # setuptools' vendored distutils

    serial = ccompiler.CCompiler.compile

    def compile_parallel(self: Any, sources: list[str], *args: Any, **kwargs: Any) -> list[str]:
        with ThreadPoolExecutor(jobs) as pool:
            parts = pool.map(lambda src: serial(self, [src], *args, **kwargs), sources)
            return [obj for objs in parts for obj in objs]

    ccompiler.CCompiler.compile = compile_parallel  # type: ignore[method-assign]


def build(work: Path, opt_level: str, jobs: int) -> dict[str, Any]:
    """Compile the copies under `work`; the new build's directory and manifest."""
    import setuptools  # noqa: F401  (installs its distutils before mypyc imports it)
    from mypyc.build import mypycify
    from setuptools import setup

    src = work / "src"
    shutil.copytree(REPO / "src" / "perps_bot", src / "perps_bot",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    config = work / "mypy.ini"
    config.write_text(MYPY_CONFIG.format(src=src), encoding="utf-8")
    modules = list(compiled.COMPILED_MODULES)
    sources = compiled.source_digests(src / "perps_bot")  # of the copies compiled
    paths = [str(compiled.source_path(m, src / "perps_bot")) for m in modules]
    _parallel_compile(jobs)
    out = work / "out"
    here = Path.cwd()
    os.chdir(work)  # mypyc writes its C under ./build
    try:
        extensions = mypycify(
            ["--config-file", str(config), *paths],
            opt_level=opt_level, debug_level="0", multi_file=True, group_name=GROUP,
        )  # fmt: skip
        setup(
            name="perps-bot-hot-path", ext_modules=extensions, packages=[],
            script_args=["--quiet", "build_ext", "--build-lib", str(out), "--build-temp",
                         str(work / "tmp")],
        )  # fmt: skip
    finally:
        os.chdir(here)
    files = {
        ".".join(path.relative_to(out).parts).split(".cpython")[0].removesuffix(".so"): str(
            path.relative_to(out)
        )
        for path in sorted(out.rglob("*.so"))
    }
    for module in modules:  # what perps_bot.compiled.compiled_source reads
        rel = compiled.source_path(module, src / "perps_bot").relative_to(src)
        (out / compiled.SOURCES_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, out / compiled.SOURCES_DIR / rel)
    missing = set(modules) - set(files)
    if missing:
        raise SystemExit(f"compile_hot_path: no extension built for {sorted(missing)}")
    manifest = {
        "interpreter": compiled.interpreter_tag(),
        "modules": modules,
        "sources": sources,
        "files": files,
    }
    return {"dir": out, "manifest": manifest}


def install(built: dict[str, Any], root: Path) -> None:
    """Swap the new build in: old build away first, manifest written last, so an
    interrupted swap leaves no manifest and the product stays pure Python."""
    root.parent.mkdir(parents=True, exist_ok=True)
    (built["dir"] / compiled.MANIFEST_NAME).unlink(missing_ok=True)
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        (root / compiled.MANIFEST_NAME).unlink(missing_ok=True)
        root.rename(old)
    shutil.move(str(built["dir"]), root)
    shutil.rmtree(old, ignore_errors=True)
    text = json.dumps(built["manifest"], indent=2, sort_keys=True) + "\n"
    (root / compiled.MANIFEST_NAME).write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("auto", "required", "off"), default="auto")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--opt-level", default="2", choices=("0", "1", "2", "3"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.mode == "off":
        print("compiled hot path: off (COMPILE=off); perps-bot runs as pure Python")
        return 0
    root = compiled.build_dir()
    why = missing_toolchain()
    if why is not None:
        print(f"compiled hot path: not built, {why}; perps-bot runs as pure Python")
        return 1 if args.mode == "required" else 0
    if not args.force and compiled.build_mismatch(root) is None:
        print(f"compiled hot path: up to date ({len(compiled.COMPILED_MODULES)} modules)")
        return 0
    print(f"compiled hot path: building {len(compiled.COMPILED_MODULES)} modules with mypyc "
          "(about a minute, once per change to them)", flush=True)  # fmt: skip
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="perps-bot-mypyc-") as tmp:
            install(build(Path(tmp), args.opt_level, max(1, args.jobs)), root)
    except (Exception, SystemExit) as exc:  # any failure: pure Python
        print(f"compiled hot path: build failed ({exc}); perps-bot runs as pure Python")
        return 1 if args.mode == "required" else 0
    print(f"compiled hot path: built in {time.monotonic() - started:.0f} s into {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
