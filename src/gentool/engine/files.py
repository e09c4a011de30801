"""Atomic file writes: a kill at any moment leaves the old file or the new one, never half.

A write the file system refuses (disk full, quota, read-only, no permission) ends as one
sentence naming the file, what is still intact and how to go on (`WriteFailed`), not as the
OSError of whichever library was writing.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable

from hydra.experimental.callback import Callback

from gentool.engine.run_layout import checkpoints_folder_holding
from gentool.errors import GentoolError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


class WriteFailed(GentoolError):
    """The file system refused a write; the message says what was kept and what to do."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *,
                 kept: str | None = None, then: str = "run the same command again") -> Path:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    If the file system refuses (see `write_failed`), the temporary file is removed, `path` is as
    before, and the WriteFailed message says `kept` (what is intact) and `then` (how to go on).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise write_failed(path, error, kept, then) from error
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        cause = None if isinstance(error, GentoolError) or not isinstance(error, Exception) \
            else os_error_in(error)
        if cause is not None:
            raise write_failed(path, cause, kept, then) from error
        raise
    _fsync_dir(path.parent)
    return path


def os_error_in(error: BaseException) -> OSError | None:
    """The OSError behind an exception: itself, or one it was raised from or while handling
    (torch.save reports its file's ENOSPC as a RuntimeError raised during that OSError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def write_failed(path: Path, error: OSError, kept: str | None = None,
                 then: str = "run the same command again") -> WriteFailed:
    """One sentence for a refused write of `path`: the problem, what is intact, the fix."""
    # The folder written in (the nearest that exists), not the temporary file inside it.
    where = path if path.is_dir() else next(
        (p for p in (path.parent, *path.parent.parents) if p.exists()), path.parent)
    if error.errno in NO_SPACE:
        problem = f"no space left on the device holding {path}"
        fix = "free some space"
    elif error.errno == errno.EROFS:
        problem = f"{where} is on a read-only file system"
        fix = "make it writable or write elsewhere"
    elif error.errno in NOT_WRITABLE:
        problem = f"no permission to write {where}"
        fix = "make it writable or write elsewhere"
    else:
        problem = f"could not write {path} ({error.strerror or error})"
        fix = "fix that"
    return WriteFailed(f"{problem}; {kept + '; ' if kept else ''}{fix}, then {then}.")


def quiet_refused_writes_in_threads() -> None:
    """Keep threads whose write the file system refused from printing a traceback: the
    TensorBoard writer's thread dies of ENOSPC and its owner reports the error as one sentence
    on its next write. Other thread errors are shown as before."""
    previous = threading.excepthook
    if getattr(previous, "gentool_quiet", False):
        return

    def hook(args):
        error = args.exc_value
        if isinstance(error, OSError) and error.errno in NO_SPACE + NOT_WRITABLE:
            return
        previous(args)

    hook.gentool_quiet = True
    threading.excepthook = hook


def unwritable_folder(folder: str | Path) -> str | None:
    """Why `folder` (existing or to be made) cannot be written, or None when it can."""
    folder = Path(folder).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if os.access(existing, os.W_OK):
        return None
    read_only = hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY
    return f"{existing} is on a read-only file system" if read_only else \
        f"{existing} is not writable"


def output_file(given: str, option: str, suffix: str, writes: str, example: str) -> Path:
    """The file that `option` (a command's --out, given as `given`) writes `writes` to: a new or
    existing file named `suffix`, the kind written, so it never replaces a checkpoint, a run's
    metrics.json or .hydra config, or a file of any other kind; and, as sample's out=, outside
    every train run's checkpoints folder. Checked before the command reads anything; a missing
    folder is made when the file is written (atomic_write), as for sample's out=."""
    if not given.strip():
        raise GentoolError(f"{option} is empty; give it a {suffix} file path (e.g. {option} "
                           f"{example}).")
    path = Path(given).expanduser()
    if path.is_dir():
        raise GentoolError(f"{option} {given} is a folder; give a file path such as "
                           f"{given}/{example}.")
    if path.suffix.lower() != suffix:
        raise GentoolError(f"{option} {given} is not a {suffix} file, and {writes} only to a "
                           f"{suffix} file, never over a checkpoint, metrics.json or config; "
                           f"give {option} a {suffix} path (e.g. {option} {example}).")
    checkpoints = checkpoints_folder_holding(path.parent)
    if checkpoints is not None:
        raise GentoolError(f"{option} {given} is inside {checkpoints}, the checkpoints folder of "
                           f"a train run; choose another {option} (e.g. {option} {example}).")
    return path


class RefuseUnwritableRunDir(Callback):
    """Hydra callback (each command's `hydra.callbacks`): a run or sweep folder that cannot be
    written ends as one sentence before Hydra writes its .hydra/ files and log into it."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def _check(folder: str, key: str) -> None:
        problem = unwritable_folder(folder)
        if problem is None:
            return
        stop_in_callback(GentoolError(f"cannot write the run folder {folder}: {problem}; run "
                                      f"from a writable folder or set {key}= to one."))


def stop_in_callback(error: GentoolError) -> None:
    """End the command with `error` as one sentence from a Hydra callback, which runs before
    gentool's own error handling."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"gentool: error: {error}", file=sys.stderr)
    sys.exit(1)   # SystemExit passes Hydra's error printer, which would add a traceback


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that a killed atomic_write left in `folder` (`.<name>.*.tmp`).

    Only the one writer of a folder may call this: another writer's file in progress looks the
    same. Returns what was removed.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (the folder entry), where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
