"""A second Python process that does a backtest's bookkeeping I/O beside its main thread:
the store's batches of rows (storage.writer_process) and the run log's and journal's
lines (monitoring.text_process). The GIL keeps a thread from running beside the
orchestrator; a process runs on the second core.

The protocol, the same for both: the main process starts `python -m MODULE ARGS...`
and sends it frames on its stdin, each an 8-byte length and then a `marshal`led value.
`marshal`, not `pickle`: frames hold only what it writes (str, int, float, None, bytes,
tuples, lists, dicts), it writes them about three times faster (no memo, no class
lookup), and both ends are the same interpreter binary, which is all its format
promises to read back. The child handles the frames in the order sent and answers each
with one line: `ok`, `fault <one line>` (a fault of a file or its disk: the text the
inline path would have raised) or `error <one line>`. After a failure it answers every
later frame the same, without doing it (what came after a gap would make a file that
looks complete). The main end raises the first failure on the main thread, as the
inline path would have raised it.

The child runs in a process group of its own, so Ctrl-C at the terminal reaches only
the run, which stops gracefully and still needs the child for its last frames. If the
main process dies, the child finishes the frames it holds and exits at the end of its
input. Its stderr goes to a temporary file: a pipe nobody reads while the run goes on
could fill up and stall it; its last line says why a child that died stopped.
"""

import contextlib
import fcntl
import marshal
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NoReturn

_LENGTH = 8


class ChildProcess:
    """The main process's end: sends frames, and reads the answers."""

    def __init__(
        self, module: str, args: list[str], *, what: str, fault: Callable[[str], Exception]
    ) -> None:
        """`what` names what the child writes, in the line of a child that stopped
        ("database X"); `fault` makes the exception a failure answered is raised as."""
        self._what = what
        self._make_fault = fault
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=_same_package(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            process_group=0,  # Ctrl-C at the terminal reaches the run, not the child
        )
        self._unanswered = 0
        self._sent = 0
        self._fault: Exception | None = None
        #: what the last `ok` said after the word (a child may report its state)
        self.answer = ""
        assert self._proc.stdin is not None
        _widen(self._proc.stdin)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, value: Any) -> None:
        """Hand a frame to the process (handled after those sent before)."""
        if self._fault is not None:
            raise self._fault
        try:
            frame = marshal.dumps(value, marshal.version)
        except ValueError:  # a str, int or float of a subclass (an enum's member)
            frame = marshal.dumps(_plain(value), marshal.version)
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(len(frame).to_bytes(_LENGTH, "big"))
            stdin.write(frame)
            stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self._stopped() from None
        self._unanswered += 1
        self._sent += 1

    def answered(self) -> None:
        """Read the answers already there, without waiting: a failure is raised at the
        next frame, not only when the run drains at its end."""
        stdout = self._proc.stdout
        assert stdout is not None
        while self._unanswered and select.select([stdout], [], [], 0)[0]:
            self._read_answer()
        if self._fault is not None:
            raise self._fault

    def drain(self) -> None:
        """Wait until every frame sent is handled; raise the fault the first that failed
        met (once: later calls go on; `send` refuses)."""
        known = self._fault
        while self._unanswered:
            self._read_answer()
        if self._fault is not known and self._fault is not None:
            raise self._fault

    def _read_answer(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        line = stdout.readline().decode("utf-8", "replace").rstrip("\n")
        self._unanswered -= 1
        if not line:
            raise self._stopped()
        kind, _, text = line.partition(" ")
        if kind == "ok":
            self.answer = text
        elif kind == "fault" and self._fault is None:
            self._fault = self._make_fault(text)
        elif kind != "ok" and self._fault is None:
            self._fault = self._make_fault(f"{self._what}: writing failed: {text}")

    def close(self) -> None:
        """Drain, then end the process (its input ends; it exits). A process that was
        never sent a frame has nothing to finish: it is stopped at once, not waited for
        while it may still be starting."""
        if not self._sent:
            self._proc.kill()
        try:
            self.drain()
        finally:
            if self._proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    self._proc.stdin.close()
            self._reap()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._stderr.close()

    def _reap(self) -> int:
        """Wait for the process to exit (it does once its input ends); its status. Woken
        as it exits (Linux: a pidfd), not by `Popen.wait`'s polling, which sleeps in
        doubling steps: a process that took a few milliseconds to exit was waited for
        15.5 ms, twice at the end of every backtest."""
        timeout = 30.0
        if self._proc.returncode is None:  # not reaped yet: its pid is still its own
            with contextlib.suppress(AttributeError, OSError):  # no pidfd here: polling
                pidfd = os.pidfd_open(self._proc.pid)
                try:
                    select.select([pidfd], [], [], timeout)
                finally:
                    os.close(pidfd)
                timeout = 0.1  # exited (or not within the 30 s)
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def _stopped(self) -> Exception:
        """The process is gone: why, in one line (its last line of stderr)."""
        self._unanswered = 0
        code = self._reap()
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {code}"
        self._fault = self._make_fault(f"{self._what}: the writer process stopped ({why})")
        return self._fault


#: how much lower the child's CPU priority is than the run's: where the cores are busy
#: (three runnable processes on two cores), the orchestrator's thread, which the run's
#: time is, keeps its core, and the child takes what is left
NICE = 10


def settle() -> None:
    """What a child does first: ignore Ctrl-C (the run stops gracefully and still needs
    it for its last frames) and give the run's main thread the CPU first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICE)


def leave() -> NoReturn:
    """A child's end, its input ended and its files closed: exit without the
    interpreter's teardown, which the run waits for at its end (10-20 ms a child)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(handle: Callable[[Any], str], stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop: handle each frame as it comes (`handle` returns the answer
    line: `ok`, perhaps followed by what the child reports), answer each, until the
    input ends; after a failure every later frame gets the same answer without being
    handled."""
    failed: str | None = None
    while (frame := _read_frame(stdin)) is not None:
        answer = failed or handle(marshal.loads(frame))
        if answer != "ok" and not answer.startswith("ok "):
            failed = answer
        stdout.write(answer.replace("\n", " ").encode() + b"\n")
        stdout.flush()


def _widen(pipe: IO[bytes]) -> None:
    """A frame is megabytes: a pipe of 1 MB (Linux's usual most for a user) instead of
    64 KB passes it in a sixteenth of the handovers between the two processes (a
    third of the main thread's cost of a send, measured). Elsewhere, or where the
    most is lower, the pipe stays as it is."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _plain(value: Any) -> Any:
    """`value` with every str, int and float of a subclass (a `StrEnum`'s member, which
    `marshal` refuses) as the plain one it holds: the value orjson and `%s` read from
    it."""
    kind = type(value)
    if kind is tuple or kind is list:
        return kind(_plain(item) for item in value)
    if kind is dict:
        return {_plain(key): _plain(item) for key, item in value.items()}
    if kind is bool or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _same_package() -> dict[str, str]:
    """The environment for the child: this one, with the folder this perps_bot was
    imported from first on its path (a source checkout run by path, or a test's path,
    imports the same code; never another installed copy)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the input (a cut frame included)."""
    head = stream.read(_LENGTH)
    if len(head) < _LENGTH:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    return body if len(body) == size else None
