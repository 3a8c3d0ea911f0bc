"""Run one benchmark step in a fresh Python process and measure that process's own peak memory.

Each step runs as `python -m pipelines.bench.process IN OUT`: the parent pickles the step (a module-level
function and its arguments) to IN, the child runs it and pickles the result or its traceback to OUT. The parent
reaps the child with `os.wait4`, whose rusage is that child's alone, so one step's memory never hides another's.
A memory limit is enforced by polling the child's resident set and killing it (by its pid) when it is exceeded.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_POLL_SECONDS = 0.1


class StepFailed(RuntimeError):
    """A benchmark step raised in its child process; the message carries the child's traceback."""


@dataclass
class StepResult:
    """What a step returned (None when it was killed), its wall time, its peak RSS, and whether it was killed."""

    value: Any
    seconds: float
    peak_rss_bytes: int
    killed: bool = False


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _wait(proc: subprocess.Popen, memory_limit_bytes: int | None) -> tuple[int, int, bool]:
    """Wait for the child; return (exit code, peak RSS in bytes, killed for exceeding the limit)."""
    sampled, killed = 0, False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, max(usage.ru_maxrss * 1024, sampled), killed
        sampled = max(sampled, _rss_bytes(proc.pid))
        if memory_limit_bytes and sampled > memory_limit_bytes and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(_POLL_SECONDS)


def run_step(function: str, *args: Any, memory_limit_bytes: int | None = None) -> StepResult:
    """Run `module:function(*args)` in a fresh process; return its value, wall time and peak RSS.

    Args:
        function: "package.module:name" of a module-level function.
        memory_limit_bytes: kill the child when its resident set exceeds this (the result is then `killed`).

    Raises:
        StepFailed: the step raised (or the child died) without being killed for memory.
    """
    with tempfile.TemporaryDirectory(prefix="bench_step_") as folder:
        request, response = Path(folder) / "in.pkl", Path(folder) / "out.pkl"
        request.write_bytes(pickle.dumps((function, args)))
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.bench.process", str(request), str(response)])
        try:
            code, peak, killed = _wait(proc, memory_limit_bytes)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        seconds = time.perf_counter() - start
        if killed:
            return StepResult(None, seconds, peak, killed=True)
        if not response.exists():
            raise StepFailed(f"{function}: the child process exited with code {code} without a result")
        ok, value = pickle.loads(response.read_bytes())
    if not ok:
        raise StepFailed(f"{function} failed in its child process:\n{value}")
    return StepResult(value, seconds, peak)


def _main(request: Path, response: Path) -> int:
    function, args = pickle.loads(request.read_bytes())
    module, name = function.split(":")
    try:
        outcome = (True, getattr(importlib.import_module(module), name)(*args))
    except BaseException:  # the parent re-raises it with the child's traceback
        outcome = (False, traceback.format_exc())
    response.write_bytes(pickle.dumps(outcome))
    return 0 if outcome[0] else 1


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1]), Path(sys.argv[2])))
