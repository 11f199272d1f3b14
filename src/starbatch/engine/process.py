"""The worker's process, as its supervisor sees it: messages in, a schedule out, how it
ended, and how much memory it holds.

``ForkedWorker`` forks the supervisor, which has imported numpy and astropy but never
the analysis (nor torch, nor CUDA), so the fork is cheap and safe; the child runs the
worker's generator (engine/worker.py) and sends each message as a JSON line. It leads a
process group of its own (so a stuck fit's own children go with it) and dies with its
supervisor (PR_SET_PDEATHSIG on Linux). ``InProcessWorker`` runs the same generator in
the supervisor itself (supervise: false): no isolation, no limits, no fork."""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

# How ``receive`` answers: a message, nothing within the timeout, or the process's end.
MESSAGE, QUIET, ENDED = "message", "quiet", "ended"
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How often a silent worker is checked for having ended (seconds).
LOOK_S = 1.0


@dataclass(frozen=True)
class Ending:
    """How the worker's process ended (os.wait4's status), and its peak memory."""

    signal: int = 0
    code: int = 0
    peak_mb: float = 0.0  # largest resident set

    @property
    def stopped_from_outside(self) -> bool:
        """Ended by the signal that stops the whole job (SLURM, scancel, Ctrl-C)."""
        return self.signal in STOPPING

    def __str__(self) -> str:
        if self.signal:
            return f"was killed by {signal.Signals(self.signal).name} (signal {self.signal})"
        return f"exited with status {self.code}"


class InProcessWorker:
    def __init__(self, make: Callable[[], Generator]):
        self._gen = make()
        self._schedule = None
        self.pid = os.getpid()

    def receive(self, timeout: float | None = None):
        try:
            if self._schedule is not None:
                message, self._schedule = self._gen.send(self._schedule), None
            else:
                message = next(self._gen)
        except StopIteration:
            return ENDED, Ending()
        return MESSAGE, message

    def send(self, schedule: list) -> None:
        self._schedule = schedule

    def kill(self) -> Ending:
        self._gen.close()
        return Ending(peak_mb=own_peak_mb())

    def anonymous_mb(self) -> float:
        return 0.0  # no limit applies to the supervisor itself


class ForkedWorker:
    def __init__(self, make: Callable[[], Generator]):
        up_r, up_w = os.pipe()  # worker -> supervisor
        down_r, down_w = os.pipe()  # supervisor -> worker
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child repeats what is buffered
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 70
            try:
                os.close(up_r)
                os.close(down_w)
                os.setpgid(0, 0)
                _die_with_parent(parent)
                for signum in STOPPING:
                    signal.signal(signum, signal.SIG_DFL)
                code = _serve(make, down_r, up_w)
            except SystemExit as exc:  # sys.exit() in the analysis
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                for stream in (sys.stdout, sys.stderr):  # what the analysis printed
                    try:
                        stream.flush()
                    except Exception:  # noqa: S110 (a closed stream: nothing to keep)
                        pass
                os._exit(code)
        try:
            os.setpgid(pid, pid)  # also here: a kill may come before the child's own call
        except OSError:
            pass
        os.close(up_w)
        os.close(down_r)
        self.pid = pid
        self._up, self._down = up_r, down_w
        self._buffer = b""
        self._ending: Ending | None = None

    def receive(self, timeout: float | None = None):
        """(MESSAGE, dict), (QUIET, None) after ``timeout`` seconds of silence, or
        (ENDED, Ending) once the process is gone and every message has been read."""
        waited = 0.0
        while b"\n" not in self._buffer:
            # In slices: a child the analysis started may hold the pipe open after the
            # worker is gone, so its end is also looked for, not only the pipe's.
            step = LOOK_S if timeout is None else min(LOOK_S, timeout - waited)
            ready, _, _ = select.select([self._up], [], [], max(0.0, step))
            if not ready:
                if self._wait(block=False) is not None:
                    return ENDED, self._ending
                waited += step
                if timeout is not None and waited >= timeout:
                    return QUIET, None
                continue
            data = os.read(self._up, 1 << 20)
            if not data:
                return ENDED, self._wait()
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return MESSAGE, json.loads(line)

    def send(self, schedule: list) -> None:
        data = json.dumps(schedule).encode() + b"\n"
        try:
            while data:
                data = data[os.write(self._down, data) :]
        except BrokenPipeError:
            pass  # the worker is gone: receive() says how it ended

    def kill(self) -> Ending:
        """Stop the worker and whatever it started (SIGKILL to its process group, also
        when the worker itself has ended: its children may not have)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self._wait()

    def _wait(self, block: bool = True) -> Ending | None:
        """How the worker ended, reaping it (None: still running, when not ``block``)."""
        if self._ending is None:
            pid, status, usage = os.wait4(self.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                return None
            peak = usage.ru_maxrss / 1024  # kB on Linux
            if os.WIFSIGNALED(status):
                self._ending = Ending(signal=os.WTERMSIG(status), peak_mb=peak)
            else:
                self._ending = Ending(code=os.WEXITSTATUS(status), peak_mb=peak)
            for fd in (self._up, self._down):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return self._ending

    def anonymous_mb(self) -> float:
        """The memory the worker allocated (resident, not file-backed: a memory-mapped
        grid it shares with other batches does not count)."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def _serve(make: Callable[[], Generator], down: int, up: int) -> int:
    """Run the worker's generator, one JSON line per message; 0 when done, 1 after an
    error it reported."""
    out = os.fdopen(up, "wb")
    commands = os.fdopen(down, "rb")
    gen = make()

    def send(message: dict) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    try:
        send(next(gen))
        message = gen.send(json.loads(commands.readline()))
        while True:
            send(message)
            message = next(gen)
    except StopIteration:
        return 0
    except Exception as exc:
        send(
            {
                "kind": "error",
                "message": str(exc),
                "type": type(exc).__name__,
                "traceback": traceback.format_exc(),
            }
        )
        return 1


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kill -9 of the batch
    job), so that no worker outlives its supervisor."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request (reparented)
        os._exit(70)


def own_peak_mb() -> float:
    """This process's own peak resident memory (MB; ru_maxrss is kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def oom_kills() -> int | None:
    """How many processes the kernel's OOM killer has stopped in this process's memory
    cgroup (a SLURM job's memory limit is one); None where that cannot be read."""
    try:
        groups = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in groups:
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":  # cgroup v2: memory.events
            candidates = [
                ("/sys/fs/cgroup", "memory.events"),
                ("/sys/fs/cgroup/unified", "memory.events"),
            ]
        elif "memory" in controllers.split(","):  # cgroup v1
            candidates = [("/sys/fs/cgroup/memory", "memory.oom_control")]
        else:
            continue
        for root, name in candidates:
            try:
                text = Path(root, path, name).read_text()
            except OSError:
                continue
            for entry in text.splitlines():
                key, _, value = entry.partition(" ")
                if key == "oom_kill":
                    return int(value)
    return None
