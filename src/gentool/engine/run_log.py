"""The log file of a command, created only once the command has accepted its start.

Hydra configures logging before a command's function runs, and its file handler would create
(or append to) `<run>/train.log` right away: a refused start would leave a log behind, and a second
process refused by the run lock would write into the first one's log. `RunLogHandler` (named by
the `hydra.job_logging` of every command config) holds the records in memory until
`start_run_log()`; a command that never starts it writes no file.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# Records held before the start; a start takes a few dozen, this only bounds a runaway.
_MAX_HELD = 10_000


class RunLogHandler(logging.FileHandler):
    """A FileHandler that opens its file at `start()`, writing the records held until then."""

    def __init__(self, filename, mode: str = "a", encoding: str | None = None,
                 delay: bool = True, errors: str | None = None):
        super().__init__(filename, mode, encoding, delay=True, errors=errors)
        self._held: list[logging.LogRecord] | None = []
        self._failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._failed:
            return
        if self._held is not None:
            if len(self._held) < _MAX_HELD:
                self._held.append(record)
            return
        super().emit(record)

    def start(self, filename: str | Path | None = None) -> None:
        """Open the file (at `filename` when given) and write the records held so far."""
        if self._held is None:
            return
        held, self._held = self._held, None
        self.acquire()
        try:
            if filename is not None:
                self.baseFilename = os.path.abspath(os.path.expanduser(str(filename)))
            Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
            self.stream = self._open()
        except OSError as error:
            # The command itself does not depend on its log file: say so once and go on.
            self._failed = True
            print(f"gentool: warning: cannot write the log {self.baseFilename} "
                  f"({error.strerror}); continuing without it.", file=sys.stderr)
            return
        finally:
            self.release()
        for record in held:
            super().emit(record)


def _handlers() -> list[RunLogHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, RunLogHandler)]


def start_run_log(filename: str | Path | None = None) -> None:
    """Start writing the command's log file (a no-op where logging has no RunLogHandler)."""
    for handler in _handlers():
        handler.start(filename)


def write_to_run_log(message: str, level: int = logging.INFO) -> None:
    """One record in the log file only, for what the command also prints on the console."""
    record = logging.getLogger("gentool").makeRecord("gentool", level, __file__, 0, message,
                                                     None, None)
    for handler in _handlers():
        handler.handle(record)
