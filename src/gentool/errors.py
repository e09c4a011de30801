"""The one exception type for user mistakes.

Anything raised as `GentoolError` is shown to the user as its message alone (one sentence that
names the problem and the fix) with a non-zero exit status, and no traceback unless
HYDRA_FULL_ERROR=1. Programming errors stay ordinary exceptions so they keep their traceback.
"""


class GentoolError(Exception):
    """A mistake the user can fix: bad option, missing file, foreign checkpoint, ..."""


class TrainingDiverged(GentoolError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
