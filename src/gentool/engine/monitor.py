"""Model selection during training: the monitored metric, the best checkpoint, early stopping.

`trainer.monitor` names a key the periodic evaluation reports (`val/loss`, `test/elbo`, ...),
`trainer.monitor_mode` whether it improves downwards (min) or upwards (max). An evaluation that
improves on the best value so far (strictly) makes the engine write `checkpoints/best.pt`; with
`trainer.early_stopping=P`, a run ends after P evaluations in a row without improvement. The
state (best value, its step, evaluations since) is plain data saved in every checkpoint, so a
resumed run stops exactly where an uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Any

from gentool.errors import GentoolError

MODES = ("min", "max")
# The splits whose metrics an evaluation reports, as the prefixes of their keys.
SPLITS = ("val/", "test/")


class Monitor:
    """The monitored key's best value so far; `key` None monitors nothing (the default)."""

    def __init__(self, key: str | None, mode: str = "min", patience: int | None = None,
                 has_validation: bool = False):
        if mode not in MODES:
            raise GentoolError(f"trainer.monitor_mode is '{mode}' but must be min or max; set "
                               "trainer.monitor_mode=min (a loss) or max (an ELBO, an accuracy).")
        if patience is not None and key is None:
            raise GentoolError(f"trainer.early_stopping is {patience} but nothing is monitored; "
                               "set trainer.monitor (e.g. trainer.monitor=val/loss) or "
                               "trainer.early_stopping=null.")
        if key is not None and not key.startswith(SPLITS):
            raise GentoolError(f"trainer.monitor is '{key}' but must name a metric of the "
                               "periodic evaluation, val/<metric> or test/<metric>; e.g. "
                               "trainer.monitor=val/loss.")
        if key is not None and key.startswith("val/") and not has_validation:
            raise GentoolError(f"trainer.monitor is '{key}' but the data set has no validation "
                               "split; hold one out with dataset.validation=N (e.g. 10000) or "
                               "monitor a test/ metric.")
        self.key, self.mode, self.patience = key, mode, patience
        self.best: float | None = None         # the best value so far (None: no evaluation yet)
        self.best_step: int | None = None      # the step whose weights gave it (best.pt)
        self.since_best = 0                    # evaluations since the best one

    @property
    def active(self) -> bool:
        return self.key is not None

    def check_reported(self, reported) -> None:
        """Refuse a monitored key the evaluation does not report, naming those it does."""
        if self.active and self.key not in reported:
            raise GentoolError(f"trainer.monitor is '{self.key}' but the evaluation reports "
                               f"only {', '.join(sorted(reported))}; monitor one of those.")

    def update(self, metrics: dict[str, float], step: int) -> bool:
        """Record an evaluation's metrics (full keys, `val/loss`); True when it is a new best."""
        if not self.active:
            return False
        self.check_reported(metrics)
        value = float(metrics[self.key])
        improved = math.isfinite(value) and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best))
        if improved:
            self.best, self.best_step, self.since_best = value, step, 0
        else:
            self.since_best += 1
        return improved

    @property
    def should_stop(self) -> bool:
        """Early stopping: `patience` evaluations in a row have not improved on the best."""
        return self.patience is not None and self.since_best >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"key": self.key, "mode": self.mode, "best": self.best,
                "best_step": self.best_step, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any] | None) -> bool:
        """Restore a checkpoint's state when it monitored the same key the same way (True);
        a checkpoint without one, or of another key or mode, starts the record afresh."""
        if not state or state.get("key") != self.key or state.get("mode") != self.mode:
            return False
        self.best = None if state["best"] is None else float(state["best"])
        self.best_step = None if state["best_step"] is None else int(state["best_step"])
        self.since_best = int(state["since_best"])
        return True
