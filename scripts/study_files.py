"""What the study scripts share: running their cells in worker processes, stopped cleanly by
SIGTERM or SIGINT; training one cell in such a worker; and what they write beside their figures:
files replaced atomically, so an interrupted write leaves the previous version, the commit a
result was measured at, and the machine it was measured on."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.resource_tracker
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, record: Any, indent: int = 1) -> None:
    """`record` as a JSON file (write_atomic), non-finite figures as null, as gentool writes
    metrics.json (gentool.engine.run_metrics.json_text)."""
    from gentool.engine.run_metrics import json_text

    write_atomic(path, json_text(record, indent=indent) + "\n")


def commit() -> str | None:
    """The short hash of the repository's HEAD, with "+changes" when the code that a run uses
    (src/, scripts/) differs from it, so that a result names code it can be reproduced from;
    None outside a git checkout or without git. Results and documents the studies write do not
    count. Callers take it when a run starts: the code may change while it runs."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return None
        # The refresh makes diff-index compare contents: a file touched but not changed is
        # otherwise reported until some git command refreshes the index. diff-index exits 1 on
        # a difference (any other code is an error, not a change) and also sees staged changes;
        # untracked files (a new config) need ls-files.
        git("update-index", "-q", "--refresh")
        changed = git("diff-index", "--quiet", "HEAD", "--", "src", "scripts").returncode == 1
        untracked = git("ls-files", "--others", "--exclude-standard", "--", "src", "scripts")
        return head.stdout.strip() + ("+changes" if changed or untracked.stdout.strip() else "")
    except OSError:
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


@dataclass(frozen=True)
class CellRun:
    """How one cell's training run (`train_cell`) ended, and what its cell file records about it.

    `interrupted` is the message of a run stopped by a signal after writing its checkpoint (the
    cell gets no file; the next sitting resumes it); `status` is "finished", or the message of a
    run whose loss diverged, which the study tables as a failed run."""

    cfg: Any                    # the composed train config
    status: str
    interrupted: str | None
    train_seconds: float        # wall seconds of `run_train`, to 0.1 s
    resumed_from_step: int      # the step of the checkpoint the run resumed from; 0: a fresh run
    commit: str | None          # `commit()` as the run started
    started: float              # time.perf_counter() as training started
    started_cpu: float          # time.process_time() then

    def seconds(self) -> float:
        """Wall seconds since training started, to 0.1 s."""
        return round(time.perf_counter() - self.started, 1)

    def facts(self) -> dict:
        """The run's facts as a cell file records them, taken now: the CPU seconds of this
        process since training started (its evaluation included where the caller evaluates
        first), the step it resumed from, torch's threads and version, the machine, the commit
        and the time."""
        import torch

        return {"cpu_seconds": round(time.process_time() - self.started_cpu, 1),
                "resumed_from_step": self.resumed_from_step,
                "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                "machine": machine(), "commit": self.commit,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def train_cell(overrides: list[str], run_dir: str | Path) -> CellRun:
    """Compose `gentool train` with `overrides` and train it in `run_dir` through the real
    training path (`run_train`), resuming from the run's `checkpoints/last.pt` if it has one; on
    one torch thread, as a worker of `run_cells` shares the cores with the others.

    A signal that stops the run (`RunStopped`: its checkpoint is written) and a loss that
    diverged (`TrainingDiverged`) end it as `CellRun.interrupted` and `CellRun.status` say; any
    other error propagates."""
    import torch

    # One core per worker, whatever OMP_NUM_THREADS the worker's torch started with.
    torch.set_num_threads(1)
    from hydra import compose, initialize_config_module

    from gentool.config import setup
    from gentool.engine.checkpoint import load_checkpoint
    from gentool.engine.stop import RunStopped
    from gentool.errors import TrainingDiverged
    from gentool.train import run_train

    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    last = Path(run_dir) / "checkpoints" / "last.pt"
    resumed_from = int(load_checkpoint(last)["step"]) if last.exists() else 0
    code = commit()   # at the start: the code may change while the cell trains
    started, started_cpu = time.perf_counter(), time.process_time()
    status, interrupted = "finished", None
    try:
        run_train(cfg, run_dir)
    except RunStopped as stop:
        interrupted = str(stop)
    except TrainingDiverged as error:
        status = str(error)
    return CellRun(cfg, status, interrupted, round(time.perf_counter() - started, 1),
                   resumed_from, code, started, started_cpu)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Stopped(Exception):
    """The first SIGTERM or SIGINT to the study's own process, raised where that process is."""


class _StopHandler:
    """The study's SIGTERM and SIGINT handler: notes the first signal and, while `raising`,
    raises `_Stopped` wherever this process is; it ignores later ones, so no signal raises in
    the lines that stop the pool, restore the handlers and report."""

    def __init__(self):
        self.signum: int | None = None
        self.raising = True

    def __call__(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            if self.raising:
                raise _Stopped

    def resume(self) -> None:
        """Raise from here on, and now if a signal was noted while not raising."""
        self.raising = True
        if self.signum is not None:
            raise _Stopped


HAS_SIGMASK = hasattr(signal, "pthread_sigmask")   # POSIX; not Windows


@contextlib.contextmanager
def _stop_signals_blocked():
    """SIGTERM and SIGINT blocked in this thread while the pool starts, delivered when the block
    ends. A process inherits its parent thread's signal mask through fork and exec, and a thread
    its creator's, so the workers, the pool's threads and the workers those threads start to
    replace the ones that finished a cell all start with both signals blocked, until
    `_start_worker` unblocks them: a Ctrl-C that reaches a worker while Python starts up in it
    (where SIGINT raises KeyboardInterrupt) is discarded rather than printed as a traceback, and
    the pool's SIGTERM ends it once it can. Without pthread_sigmask nothing is blocked."""
    if not HAS_SIGMASK:
        yield
        return
    # The resource tracker, started on the pool's first lock if it is not running, unblocks
    # these signals after starting: started first, it leaves the mask alone.
    multiprocessing.resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(study: int) -> None:
    """A worker's start: a thread that sends the worker SIGTERM once if the study's process
    (`study`, its parent) dies, e.g. by `kill -9` of that process alone, so that its training
    loop checkpoints and stops rather than train on as an orphan; getppid changes when the
    worker is re-parented. (Linux's PR_SET_PDEATHSIG would fire when the pool's thread that
    started the worker exits, which it does in `Pool.terminate`.)"""
    # Ctrl-C at a terminal reaches the workers too, and the study's SIGTERM follows: a worker
    # that has not installed gentool's handlers yet ends on that SIGTERM rather than print a
    # KeyboardInterrupt traceback. gentool's training loop installs its own SIGINT handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Blocked since the worker started (`_stop_signals_blocked`): a SIGINT that arrived meanwhile
    # was discarded by SIG_IGN above; a SIGTERM from the pool ends the worker here.
    if HAS_SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def watch():
        while os.getppid() == study:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="study-parent-watch", daemon=True).start()


def _numbered(run_cell, numbered_job):
    number, job = numbered_job
    return number, run_cell(job)


def run_cells(run_cell, jobs: list, workers: int, name, on_result) -> None:
    """Run `run_cell(job)` for every job, `workers` at a time, each in a fresh process of one
    thread (OMP_NUM_THREADS=1), and call `on_result(result)` in this process as each one finishes.

    SIGTERM or SIGINT to this process stops the study: every worker gets SIGTERM, on which
    gentool's training loop writes `checkpoints/last.pt` after its current step and ends the run;
    once the workers have exited, one line on stderr says how many cells had not reported back,
    naming the first few (`name(job)`), and this process exits 128 + the signal. Further signals
    to this process are ignored while it waits. A signal while the pool starts its workers
    stops the study the same way once they have started. A worker stops at once, keeping its previous
    checkpoint, on a signal of its own more than 1.5 s after its first (`SAME_REQUEST_S` in
    gentool.engine.stop): Ctrl-C again at a terminal, or `kill -- -<process group>`. A worker
    whose study process dies (`kill -9` of that process alone) checkpoints and stops by itself.

    The clean stop is POSIX only: on Windows `Pool.terminate` is TerminateProcess, which ends a
    worker without its checkpoint.
    """
    unfinished = dict(enumerate(jobs))
    stop, previous = _StopHandler(), {}
    try:
        # Installed one at a time inside the try: a signal right after an install is caught
        # below, and the finally restores whatever was installed.
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, stop)
        # spawn: each worker imports torch afresh; one run per process keeps them independent.
        # The handler raises wherever this process is (waiting for a result or in `on_result`);
        # leaving the `with Pool` block then terminates the pool: SIGTERM to each worker, then a
        # join of each, so this process exits after the workers' checkpoints are written. The
        # workers stay in this process's group, so a kill of the group reaches them too.
        context = multiprocessing.get_context("spawn")
        # Read by each worker's torch when it is imported there: the workers share the cores.
        os.environ["OMP_NUM_THREADS"] = "1"
        # No raise while the pool starts: one between starting a worker and writing it what it
        # starts from leaves that worker, outside the pool's list of workers to terminate, to
        # print an EOFError. A signal meanwhile is noted, and raised in the `with` block.
        stop.raising = False
        with _stop_signals_blocked():
            pool = context.Pool(workers, initializer=_start_worker, initargs=(os.getpid(),),
                                maxtasksperchild=1)
        with pool:
            stop.resume()
            # A list: the pool's task thread reads it while this loop deletes from `unfinished`.
            for number, result in pool.imap_unordered(functools.partial(_numbered, run_cell),
                                                       list(unfinished.items())):
                del unfinished[number]
                on_result(result)
            # The pool's terminate on leaving the block is not interrupted either: a signal now
            # is noted and reported below.
            stop.raising = False
    except _Stopped:
        pass
    finally:
        stop.raising = False   # first: from here on a signal is only noted (and reported below)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.signum is None:
        return
    # `unfinished` also holds cells whose results had arrived but were not read: those have
    # finished (and written their files), hence "not reported back" rather than "unfinished".
    left = [name(job) for job in unfinished.values()]
    names = ", ".join(left[:5]) + (", …" if len(left) > 5 else "")
    cells = f"{len(left)} cell{'s' if len(left) != 1 else ''}"
    print(f"{Path(sys.argv[0]).name}: stopped by {signal.Signals(stop.signum).name} with " +
          (f"{cells} not reported back ({names}); running the same command again runs those "
           "left unfinished, resuming those that had started from their checkpoints."
           if left else "every cell reported back."),
          file=sys.stderr, flush=True)
    raise SystemExit(128 + stop.signum)
