"""What the study scripts share: running their cells in worker processes, stopped cleanly by
SIGTERM or SIGINT, as is the study before its cells start; training one cell in such a worker;
and what they write beside their figures: files replaced atomically, so an interrupted write
leaves the previous version, the commit a result was measured at, and the machine it was
measured on."""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.resource_tracker
import os
import pickle
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def write_atomic(path: Path, text: str) -> None:
    """`text` as the file at `path` (gentool.engine.files.atomic_write): a write interrupted at
    any moment leaves the previous version and no temporary file."""
    from gentool.engine.files import atomic_write

    atomic_write(path, lambda f: f.write(text.encode()))


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
    from gentool.engine.checkpoint import load_checkpoint, run_checkpoint
    from gentool.engine.stop import RunStopped
    from gentool.errors import TrainingDiverged
    from gentool.train import run_train

    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    last = run_checkpoint(run_dir)
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
HAS_SIGMASK = hasattr(signal, "pthread_sigmask")   # POSIX; not Windows


class _StopNoted:
    """The study's SIGTERM and SIGINT handler while it runs cells: notes the first signal and
    ignores later ones. It never raises, so no line of `run_cells` is interrupted halfway (a
    process half started, a result half read); the loop acts on `signum` when it wakes, which
    the wakeup socket of `run_cells` makes at once."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self, signum, frame):
        if self.signum is None:
            self.signum = signum


class _StopBeforeCells:
    """The study's SIGTERM and SIGINT handler from `stop_cleanly_before_cells` until
    `end_stop_before_cells`: the first signal ends the study (SystemExit, 128 + the signal, as a
    stop during `run_cells` does) after one line on stderr; later ones, while it unwinds, are
    ignored. The line is written with os.write: print, in a handler, can interrupt a write to
    sys.stderr in progress (the feature classifier logs there as it trains), which its buffer
    refuses as a reentrant call."""

    def __init__(self):
        self.replaced: dict[int, Any] = {}   # signal -> the handler this one replaced
        self.signum: int | None = None

    def __call__(self, signum, frame):
        if self.signum is not None:
            return
        self.signum = signum
        line = (f"{Path(sys.argv[0]).name}: stopped by {signal.Signals(signum).name} before "
                "any cell started; no cell file or checkpoint was changed, and running the same "
                "command again runs the cells left to run.\n")
        # File descriptor 2 rather than sys.stderr, which may be replaced or None; a stderr
        # that is closed (a reader gone) loses the line but not the exit status.
        with contextlib.suppress(OSError):
            os.write(2, line.encode())
        raise SystemExit(128 + signum)


_BEFORE_CELLS = _StopBeforeCells()


def stop_cleanly_before_cells() -> None:
    """From now until `end_stop_before_cells`, SIGTERM or SIGINT ends this process with one line
    on stderr and exit status 128 + the signal, as a stop while the cells run does, rather than
    with a KeyboardInterrupt traceback (SIGINT) or without a word (SIGTERM): a stop while a
    study parses its arguments, lists its cells or trains the feature classifier they share.
    `run_cells` ends it as it starts the cells, and a study ends it where it would have run
    them, so that a stop while it writes its tables is the same whether cells ran or not
    (`--table-only`, no cell left to run). For a study script's `__main__` block: a process that
    imports the script (the tests, the cells' spawned processes) keeps its own handlers. A
    second call changes nothing."""
    _BEFORE_CELLS.signum = None
    for sig in STOP_SIGNALS:
        # Already installed, the handler would otherwise note itself as the one it replaced.
        if signal.getsignal(sig) is not _BEFORE_CELLS:
            _BEFORE_CELLS.replaced[sig] = signal.signal(sig, _BEFORE_CELLS)


def end_stop_before_cells() -> None:
    """The handlers `stop_cleanly_before_cells` replaced are back, where its own is still
    installed; a signal it replaced since is left as it is. A second call changes nothing."""
    for sig, handler in _BEFORE_CELLS.replaced.items():
        if signal.getsignal(sig) is _BEFORE_CELLS:
            signal.signal(sig, handler)
    _BEFORE_CELLS.replaced.clear()


@contextlib.contextmanager
def _stop_signals_blocked():
    """SIGTERM and SIGINT blocked in this thread while it starts a cell's process, delivered
    when the block ends. A process inherits its parent thread's signal mask through fork and
    exec, so the cell's process starts with both blocked until `_cell_process` ignores SIGINT
    and unblocks them: a Ctrl-C that reaches it while Python starts up in it (where SIGINT
    raises KeyboardInterrupt) is discarded rather than printed as a traceback, and a SIGTERM
    ends it once it can. Without pthread_sigmask nothing is blocked."""
    if not HAS_SIGMASK:
        yield
        return
    # The resource tracker, started by the first process start if it is not running, unblocks
    # these signals after starting: started first, it leaves the mask alone.
    multiprocessing.resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _watch_parent(study: int) -> None:
    """Send this process SIGTERM once if the study's process (`study`, its parent) dies, e.g. by
    `kill -9` of that process alone, so that its training loop checkpoints and stops rather than
    train on as an orphan; getppid changes when the process is re-parented. A thread that polls
    works on every POSIX system, unlike Linux's PR_SET_PDEATHSIG."""
    while os.getppid() == study:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def _cell_process(run_cell, job, study: int, results) -> None:
    """A cell's process: run `run_cell(job)` and send the study, through `results`, ("result",
    what it returned) or ("error", the exception it raised, its traceback as text)."""
    # Ctrl-C at a terminal reaches this process too, and the study's SIGTERM follows: until
    # gentool's training loop installs its own SIGINT handler, this process ends on that SIGTERM
    # rather than print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Blocked since the process started (`_stop_signals_blocked`): a SIGINT that arrived
    # meanwhile was discarded by SIG_IGN above; a SIGTERM ends the process here.
    if HAS_SIGMASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    threading.Thread(target=_watch_parent, args=(study,), name="study-parent-watch",
                     daemon=True).start()
    try:
        outcome = ("result", run_cell(job))
    except Exception as error:   # sent to the study, which raises it: not printed here
        outcome = ("error", _rebuildable(error), traceback.format_exc())
    try:
        results.send(outcome)
    except BrokenPipeError:      # the study has ended: no one is left to report to
        pass


def _rebuildable(error: Exception) -> Exception:
    """`error`, or a RuntimeError naming it where the study could not unpickle it (an exception
    class whose __init__ takes other arguments than its `args`)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


class _CellTraceback(Exception):
    """The traceback of a cell's error in its own process, shown as the cause of that error
    where the study raises it."""

    def __str__(self):
        return f'\n"""\n{self.args[0]}"""'


class _Cell:
    """A cell's process, started in `__init__`, and the pipe it sends its outcome through."""

    def __init__(self, context, run_cell, number: int, job):
        self.number, self.job = number, job
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_cell_process,
                                       args=(run_cell, job, os.getpid(), sender))
        try:
            with _stop_signals_blocked():
                self.process.start()
        finally:
            # The process has its own copy: once it ends, the pipe reads as closed.
            sender.close()

    def waitables(self) -> tuple:
        """What `multiprocessing.connection.wait` reports ready once the cell has sent its
        outcome or its process has ended (a child of it may hold the pipe open)."""
        return self.results, self.process.sentinel

    def finish(self) -> tuple | None:
        """What the process sent (`_cell_process`), or None if it ended without sending all of
        it; once `waitables` is ready. Then `close`."""
        outcome = None
        try:
            if self.results.poll():
                outcome = self.results.recv()
        except (EOFError, OSError):   # the process ended mid-message, e.g. on a stop
            pass
        finally:
            self.close()
        return outcome

    def close(self) -> None:
        """Wait for the process to end, note its `exitcode`, and release the pipe and the
        process's resources."""
        self.process.join()
        self.exitcode = self.process.exitcode
        self.results.close()
        self.process.close()


def run_cells(run_cell, jobs: list, workers: int, name, on_result) -> None:
    """Run `run_cell(job)` for every job, `workers` at a time, each in a fresh process of one
    thread (OMP_NUM_THREADS=1), and call `on_result(result)` in this process as each one finishes.
    An error a cell raises is raised here, with its traceback in the cell's process as its cause,
    once the other cells are stopped as below; so is a cell process that ends without a result.

    SIGTERM or SIGINT to this process stops the study: every cell process gets SIGTERM, on which
    gentool's training loop writes `checkpoints/last.pt` after its current step and ends the run;
    once they have exited, one line on stderr says how many cells had not reported back, naming
    the first few (`name(job)`), and this process exits 128 + the signal. Further signals to this
    process are ignored while it waits. The same holds for a signal to the whole process group
    (Ctrl-C at a terminal, `kill -- -<process group>`, schedulers), which reaches the cell
    processes too: a cell process stops at once, keeping its previous checkpoint, only on a
    signal of its own more than 1.5 s after its first (`SAME_REQUEST_S` in gentool.engine.stop).
    A cell process whose study process dies (`kill -9` of that process alone) checkpoints and
    stops by itself.

    The clean stop is POSIX only: on Windows `Process.terminate` is TerminateProcess, which ends
    a process without its checkpoint.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    # spawn: each cell's process imports torch afresh; one run per process keeps them
    # independent. The cell processes stay in this process's group, so a kill of the group
    # reaches them too. Each has a pipe of its own and nothing else is shared between processes:
    # a signal that kills any of them at any moment leaves nothing (a lock, a queue) for this
    # process to wait on.
    context = multiprocessing.get_context("spawn")
    # Read by each cell's torch when it is imported there: the cells share the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    unfinished = dict(enumerate(jobs))
    waiting = collections.deque(unfinished.items())
    running: list[_Cell] = []
    stop, previous = _StopNoted(), {}
    # The handler only notes a signal; Python also writes a byte to this socket for it
    # (set_wakeup_fd), which wakes the wait below.
    wakeup, wakeup_sender = socket.socketpair()
    wakeup.setblocking(False)
    wakeup_sender.setblocking(False)
    previous_wakeup = signal.set_wakeup_fd(wakeup_sender.fileno(), warn_on_full_buffer=False)
    try:
        # From here a stop is no longer one before the cells: the handlers restored after the
        # cells are those the study had before `stop_cleanly_before_cells`.
        end_stop_before_cells()
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, stop)
        while stop.signum is None and (waiting or running):
            if waiting and len(running) < workers:
                number, job = waiting.popleft()
                running.append(_Cell(context, run_cell, number, job))
                continue
            ready = multiprocessing.connection.wait(
                [wakeup, *(waitable for cell in running for waitable in cell.waitables())])
            with contextlib.suppress(BlockingIOError):
                wakeup.recv(4096)   # read, or the next wait would return at once
            for cell in [cell for cell in running if set(cell.waitables()) & set(ready)]:
                running.remove(cell)
                outcome = cell.finish()
                if stop.signum is not None:
                    # No result is reported once a stop is noted (the stop line counts this cell
                    # as not reported back), and a process that a signal to the whole group
                    # ended without a result is part of the stop, not a failed cell.
                    break
                if outcome is None:
                    raise RuntimeError(f"the process of cell {name(cell.job)} ended with exit "
                                       f"status {cell.exitcode} without a result")
                if outcome[0] == "error":
                    raise outcome[1] from _CellTraceback(outcome[2])
                del unfinished[cell.number]
                on_result(outcome[1])
    finally:
        # SIGTERM to every cell process left, then a wait for each: this process exits after
        # their checkpoints are written. Signals meanwhile are only noted.
        for cell in running:
            cell.process.terminate()
        for cell in running:
            cell.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_wakeup)
        wakeup.close()
        wakeup_sender.close()
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
