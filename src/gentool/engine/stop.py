"""Stopping a run on a signal: checkpoint after the current step, then exit 128 + the signal.

SIGTERM (a scheduler, `kill`), SIGINT (Ctrl-C) and SIGUSR2 (what SLURM sends before a time limit
or preemption when submitit asks it to, `--signal=USR2@90`) are noted by `StopRequested`; the
loop finishes its step, writes `checkpoints/last.pt` and raises `RunStopped`, which the command
line reports as one line (where the checkpoint is, the command that resumes) rather than as an
error. A second signal while stopping exits at once, unless it comes within `SAME_REQUEST_S`
seconds of the first: then it is the same request delivered twice (see `StopRequested`).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from time import monotonic

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR2")
                     if hasattr(signal, name))
# One stop request can reach a process twice within milliseconds: Ctrl-C at a terminal signals
# the whole foreground process group (a study's workers and the study, which then sends them
# SIGTERM), and schedulers signal every process of a job (systemd, SLURM's scancel and time
# limit). A signal this soon after the first is that request again, not "stop at once".
SAME_REQUEST_S = 1.5


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class RunStopped(Exception):
    """The run stopped on a signal after writing its checkpoint: not an error.

    `exit_status` is 128 + the signal, the shell's convention for "ended by this signal".
    """

    def __init__(self, signum: int, step: int, checkpoint: Path, stop: "StopRequested"):
        super().__init__(f"stopped at step {step} by {signal_name(signum)}; checkpoint "
                         f"{checkpoint}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self._stop = stop

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def hand_over(self) -> None:
        """Call the handler that was installed before (submitit's requeue on SIGUSR2)."""
        self._stop.hand_over()


class StopRequested:
    """Notes SIGTERM/SIGINT/SIGUSR2 so the loop can checkpoint after the current step; a
    further signal more than `SAME_REQUEST_S` seconds after the first exits at once.

    A handler that was installed before (submitit's requeue on SIGUSR2) is called after the
    checkpoint is written, by `hand_over`: the job is requeued with its checkpoint in place and
    resumes from it in the same run directory.
    """

    def __init__(self):
        self.signal: int | None = None
        self._noted_at = 0.0
        self._previous = {}

    def hand_over(self) -> None:
        previous = self._previous.get(self.signal)
        if self.signal != getattr(signal, "SIGINT", None) and callable(previous):
            previous(self.signal, None)   # submitit: requeue, then exit

    def __enter__(self):
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is None:
            self.signal, self._noted_at = signum, monotonic()
            return
        if monotonic() - self._noted_at < SAME_REQUEST_S:
            return   # the first request, delivered again
        # A later signal means now: no checkpoint of this step (an interrupted write leaves the
        # previous one intact), and no traceback.
        print(f"gentool: {signal_name(signum)} again: stopped at once; the last checkpoint "
              "written is kept.", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
