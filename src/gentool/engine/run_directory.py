"""A run's directory from its start to its end: one writer, and a refused start leaves no trace.

    run = RunDirectory(path)
    with run.held(is_main):      # the lock: a second process stops here at once
        ...check the request: data, model, the checkpoint to resume...
        run.start()              # accepted: stale temporaries go, the start hooks run
        ...train, write checkpoints and metrics...

Nothing in the directory is modified before `start()`: the lock comes first, and the things a
start writes (the `.hydra` config snapshot and the log file, as hooks from the command line) wait
for `start()`. A start that ends before it (a refused resume, a bad option, Ctrl-C) removes the
lock file it created and the folders this start created, so the directory, or its absence, is as
it was. In a data-parallel run only the main process (rank 0) locks and writes; the others learn
through `agree` whether it was refused.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from gentool.engine.files import remove_stale_temporaries
from gentool.engine.run_layout import CHECKPOINTS_FOLDER, checkpoints_folder_holding
from gentool.engine.run_lock import RunLock
from gentool.errors import GentoolError

log = logging.getLogger("gentool")


class RunDirectory:
    """`path`, held by this process; `created_from` is the topmost folder this start created
    (known to the command line, which saw the folders before Hydra made them), if any."""

    def __init__(self, path: str | Path, created_from: str | Path | None = None,
                 on_start: Sequence[Callable[[Path], None]] = ()):
        self.path = Path(path)
        self.created_from = Path(created_from).absolute() if created_from else None
        self.on_start = list(on_start)
        self.started = False
        self._lock: RunLock | None = None

    @contextmanager
    def held(self, is_main: bool = True,
             agree: Callable[[bool], bool] | None = None) -> Iterator["RunDirectory"]:
        """Hold the directory (main process) for the block; undo a start refused inside it.

        `agree(refused)` is called on every process of a data-parallel run and returns whether
        any of them was refused, so that all stop together.
        """
        refusal = None
        if is_main:
            try:
                refuse_inside_another_run(self.path)
                self._make()
                self._lock = RunLock(self.path).acquire()
            except GentoolError as error:
                refusal = error
        if agree is not None and agree(refusal is not None) and refusal is None:
            refusal = GentoolError(f"{self.path} is in use by another gentool process; wait for "
                                   "it to end, or choose another hydra.run.dir=.")
        if refusal is not None:
            if is_main:
                self._remove_new_folders()
            raise refusal
        if self._lock is not None and not self._lock.supported:
            log.warning("%s: this file system cannot lock files, so nothing stops a second "
                        "gentool process from writing this run directory too", self.path)
        try:
            yield self
        except BaseException:
            if not self.started and self._lock is not None:
                self._lock.release(remove=self._lock.created)
                self._remove_new_folders()
            raise
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def start(self) -> None:
        """The run is accepted: from here on it writes its directory."""
        if self.started:
            return
        self.started = True
        if self._lock is None:   # not the main process: it writes nothing here
            return
        # Where a run's own atomic writes happen (see engine/files.py): metrics.json and the
        # checkpoints.
        for folder in (".", CHECKPOINTS_FOLDER):
            for tmp in remove_stale_temporaries(self.path / folder):
                log.info("Removed %s, left by a run killed while writing it", tmp)
        for hook in self.on_start:
            hook(self.path)

    def _make(self) -> None:
        if self.path.is_dir():
            return
        missing = first_missing(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise GentoolError(f"cannot create the run directory {self.path} "
                               f"({error.strerror}); choose another hydra.run.dir=.") from error
        if self.created_from is None:
            self.created_from = missing

    def _remove_new_folders(self) -> None:
        """Remove the run directory and its parents up to `created_from`, where they are empty
        (rmdir never removes anything else, so a folder another process filled stays)."""
        if self.created_from is not None:
            remove_empty_folders(self.path.absolute(), self.created_from)


def refuse_inside_another_run(path: Path, option: str = "hydra.run.dir") -> None:
    """A run directory is never a train run's checkpoints folder, nor inside one, nor inside
    another run's directory (one holding a `.hydra` config snapshot): what this run writes
    there would mix with, or replace, that run's files. A sweep's folder holds multirun.yaml,
    not `.hydra`, so its jobs' directories (<sweep>/<n>) are not inside a run."""
    resolved = path.expanduser().resolve()
    checkpoints = checkpoints_folder_holding(resolved)
    if checkpoints is not None:
        where = "" if checkpoints == resolved else f"inside {checkpoints}, "
        raise GentoolError(f"{option}={path} is {where}the checkpoints folder of a train run; "
                           f"choose another {option}= (or leave it out).")
    for parent in resolved.parents:
        if (parent / ".hydra").is_dir():
            raise GentoolError(f"{option}={path} is inside {parent}, the directory of another "
                               f"run; choose another {option}= (or leave it out).")


def remove_empty_folders(folder: Path, top: Path) -> None:
    """Remove `folder` and its parents up to `top` while they are empty (rmdir removes nothing
    else, so a file left there, or a folder another process filled, stays)."""
    while folder == top or top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def first_missing(path: Path) -> Path | None:
    """The topmost folder of `path` that does not exist yet (None when `path` exists)."""
    path = path.absolute()
    if path.exists():
        return None
    first = path
    for parent in path.parents:
        if parent.exists():
            break
        first = parent
    return first
