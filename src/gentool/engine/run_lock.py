"""One writer per run directory: an exclusive lock on `<run>/.gentool.lock`.

The lock is `flock`, so the OS releases it when the process ends, however it ends (`kill -9`
included): a requeued or resumed job in the same directory takes it over. The lock file stays
empty and stays in place: deleting a lock file that another process may have opened would let two
processes hold "the" lock on two different files. Only a refused start that created the file
deletes it again, while still holding it, so that it leaves the directory as it found it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from gentool.errors import GentoolError

try:
    import fcntl
except ImportError:   # Windows: no flock; the directory is used without a lock
    fcntl = None

LOCK_FILE = ".gentool.lock"
# Errors of a file system that cannot lock (some network mounts): run without the lock.
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
# The descriptors of the locks this process holds. A flock belongs to the open file, which a
# forked child (a DataLoader worker) shares: the child closes its copies, so the lock ends with
# this process and not with the last of its workers. (Python's descriptors are not inherited
# across exec.)
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


class RunLock:
    """Hold `run_dir` exclusively, or refuse at once when another process holds it."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.created = False      # this process made the lock file (a refused start removes it)
        self.supported = True     # False where the file system cannot lock
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self._fd, self.created = _open_lock_file(self.path)
        except OSError as error:
            raise GentoolError(f"cannot write in {self.run_dir} ({error.strerror}); choose a "
                               "writable hydra.run.dir=.") from error
        if fcntl is None:
            self.supported = False
            return self
        _HELD.add(self._fd)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in _NO_LOCKS:
                self.supported = False
                return self
            self.release(remove=self.created)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise GentoolError(f"{self.run_dir} is in use by another gentool process (one "
                                   "process writes a run directory at a time); wait for it to "
                                   "end, or choose another hydra.run.dir=.") from None
            raise
        return self

    def release(self, remove: bool = False) -> None:
        """Unlock; `remove` also deletes the lock file (only a refused start that made it)."""
        if self._fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        _HELD.discard(self._fd)
        os.close(self._fd)   # closing the only descriptor drops the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _open_lock_file(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether this call created it."""
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            pass
        try:
            return os.open(path, os.O_RDWR), False
        except FileNotFoundError:   # removed between the two calls: try again
            continue
