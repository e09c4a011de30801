"""What the study scripts share: running their cells in worker processes, stopped cleanly by
SIGTERM or SIGINT; and what they write beside their figures: files replaced atomically, so an
interrupted write leaves the previous version, the commit a result was measured at, and the
machine it was measured on."""

from __future__ import annotations

import functools
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def commit() -> str | None:
    """The short hash of the repository's HEAD, or None outside a git checkout."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> str:
    """The CPU model (Linux: /proc/cpuinfo; else what platform knows) and its core count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                          if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


class _Stopped(Exception):
    """SIGTERM or SIGINT to the study's own process."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise _Stopped(signum)


def _numbered(run_cell, numbered_job):
    number, job = numbered_job
    return number, run_cell(job)


def run_cells(run_cell, jobs: list, workers: int, name, on_result) -> None:
    """Run `run_cell(job)` for every job, `workers` at a time, each in a fresh process, and call
    `on_result(result)` in this process as each one finishes.

    SIGTERM or SIGINT to this process stops the study: every worker gets SIGTERM, on which
    gentool's training loop writes `checkpoints/last.pt` after its current step and ends the run;
    once the workers have exited, one line on stderr names the stopped cells (`name(job)`) and
    this process exits 128 + the signal. A second signal while the workers stop ends them at once
    (their previous checkpoint is kept).
    """
    unfinished = dict(enumerate(jobs))
    # The handler raises wherever this process is (waiting for a result or in `on_result`);
    # leaving the `with Pool` block then terminates the pool: SIGTERM to each worker, then a
    # join of each, so this process exits after the workers' checkpoints are written. A second
    # signal interrupts that join; at exit, multiprocessing sends the workers (daemons) SIGTERM
    # again, which gentool's training loop takes as "stop at once".
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # spawn: each worker imports torch afresh; one run per process keeps them independent.
        # setsid: a worker gets its signal only from this process, once. Ctrl-C at a terminal
        # signals the whole foreground process group; the pool's SIGTERM would then be a
        # worker's second signal and end its run at once, before it writes its checkpoint.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=getattr(os, "setsid", None),
                          maxtasksperchild=1) as pool:
            # A list: the pool's task thread reads it while this loop deletes from `unfinished`.
            for number, result in pool.imap_unordered(functools.partial(_numbered, run_cell),
                                                       list(unfinished.items())):
                del unfinished[number]
                on_result(result)
        return
    except _Stopped as stopped:
        signum = stopped.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # The pool hands out jobs in order and a worker takes one job only, so the unfinished jobs
    # that had started are among the first `workers` of them.
    left = list(unfinished.values())
    names = ", ".join(name(job) for job in left[:workers])
    waiting = f" ({len(left) - workers} more not started)" if len(left) > workers else ""
    print(f"{Path(sys.argv[0]).name}: stopped by {signal.Signals(signum).name}: "
          f"{names or 'no cell left to run'}"
          f"{waiting}; running the same command again resumes them from their checkpoints.",
          file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)
