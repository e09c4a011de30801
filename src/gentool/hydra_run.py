"""What the command line adds to Hydra's handling of a run directory.

Hydra makes a run's directory, writes `.hydra/` into it and opens its log before the command's
function runs. gentool's configs set `hydra.output_subdir: null` and a `RunLogHandler`, so Hydra
only makes the directory; the command writes `.hydra/` itself (`config_snapshot`) once its start
is accepted, under the run lock (engine/run_directory.py). `NewFolders`, a Hydra callback, notes
which folders of the run directory did not exist before, so a refused start removes exactly those.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gentool.engine.files import atomic_write, stop_in_callback
from gentool.engine.run_directory import first_missing, refuse_inside_another_run
from gentool.errors import GentoolError

# The topmost folder of the current job's directory that Hydra is about to create (set in the
# process that runs the job, which is not the launching one under joblib or SLURM).
_created_from: Path | None = None


class NewFolders(Callback):
    """Before Hydra makes the run (or sweep) directory: note its first missing folder."""

    def __init__(self) -> None:
        self.first_missing: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.first_missing = _missing_of(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # A new sweep folder makes every job folder in it new as well.
        self.first_missing = _missing_of(config, "hydra.sweep.dir")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _created_from
        _created_from = self.first_missing


class RefuseOtherSweepDir(Callback):
    """Before the sweeper writes multirun.yaml into the sweep folder: the folder is refused
    when it is a run's directory (or inside one, or a train run's checkpoints folder), or holds
    the multirun.yaml of another command's sweep, so their files stay as they were."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.hydra.sweep.dir))
        job = str(config.hydra.job.name)
        try:
            if (folder / ".hydra").is_dir():
                raise GentoolError(f"hydra.sweep.dir={folder} is the directory of a run, which "
                                   "this sweep would write into; choose another "
                                   "hydra.sweep.dir= (or leave it out).")
            refuse_inside_another_run(folder, "hydra.sweep.dir")
            sweep = folder / "multirun.yaml"
            if sweep.exists() and job_name_in(sweep) != job:
                raise GentoolError(f"hydra.sweep.dir={folder} holds the multirun.yaml of another "
                                   f"sweep than a gentool {job} one, which this sweep would "
                                   "replace; choose another hydra.sweep.dir= (or leave it out).")
        except GentoolError as error:
            stop_in_callback(error)


def job_name_in(hydra_yaml: Path) -> str | None:
    """The Hydra job name (the gentool command: train, finetune, ...) that wrote `hydra_yaml` (a
    sweep's multirun.yaml, a run's .hydra/hydra.yaml), or None where the file is missing,
    unreadable or lacks it."""
    try:
        name = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.job.name",
                                throw_on_missing=False)
    except Exception:   # YAML syntax errors, undecodable bytes, a folder: a sweep of no known kind
        return None
    return name if isinstance(name, str) else None


def _missing_of(config: DictConfig, key: str) -> Path | None:
    try:
        return first_missing(Path(str(OmegaConf.select(config, key))))
    except Exception:   # an interpolation only Hydra's job can resolve: remove nothing
        return None


def created_from(run_dir: str | Path) -> Path | None:
    """The topmost folder that this start created for `run_dir`, if Hydra made one."""
    top = _created_from
    run_dir = Path(run_dir).absolute()
    if top is None or not (run_dir == top or top in run_dir.parents):
        return None
    return top


def config_snapshot(cfg: DictConfig) -> Callable[[Path], None]:
    """Hydra's three `.hydra/` files for this job, as Hydra would write them, to be written into
    a run directory later: `write(run_dir)`. Nothing when Hydra is not running the command."""
    if not HydraConfig.initialized():
        return lambda run_dir: None
    hydra_cfg = HydraConfig.instance().cfg
    texts = {"config.yaml": OmegaConf.to_yaml(cfg),
             "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
             "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task)}

    def write(run_dir: Path) -> None:
        for name, text in texts.items():
            atomic_write(run_dir / ".hydra" / name, lambda f, text=text: f.write(text.encode()))

    return write


# Hydra overrides that describe how this job was launched rather than what it computes.
_LAUNCH_OVERRIDES = re.compile(r"^(hydra\.(mode|run\.dir|sweep\.|launcher\.|sweeper\.|job\.num"
                               r"|job\.id)|hydra/(launcher|sweeper)=)")
# A value Hydra's override grammar reads unquoted (a path of plain names).
_PLAIN = re.compile(r"[\w./-]+")
# key=~/path, where the value is a plain path that starts with the home folder.
_HOME_VALUE = re.compile(r"(\+{0,2}[A-Za-z_][\w.\-/@]*)=(~[\w.\-/]*)")


def hydra_value(text: str) -> str:
    """`text` as a value of a Hydra override: as is when plain, else quoted."""
    if _PLAIN.fullmatch(text):
        return text
    quote = "'" if "'" not in text else '"'
    return quote + text.replace(quote, "\\" + quote) + quote


def expand_home(arg: str) -> str:
    """`key=~/path` -> `key=/home/me/path`. Hydra's override grammar has no unquoted `~`, and the
    shell leaves `~` after `=` in many words: bash expands it after the `=` of a plain-named key
    (`checkpoint=~/x`) but not of a dotted key (`hydra.run.dir=~/x`) or one after `+`, and sh
    and bash's POSIX mode not at all. So the command line expands it for every key, giving
    the same home folder whichever shell did or did not."""
    match = _HOME_VALUE.fullmatch(arg)
    if not match:
        return arg
    return f"{match.group(1)}={hydra_value(os.path.expanduser(match.group(2)))}"


def resume_command(command: str, run_dir: str | Path) -> str:
    """The shell command that resumes this job in `run_dir`: its own overrides (one job's, in a
    sweep), the user's Hydra options, and `hydra.run.dir=<run_dir>`."""
    hydra_cfg = HydraConfig.get()
    kept = [o for o in hydra_cfg.overrides.hydra if not _LAUNCH_OVERRIDES.match(o)]
    where = hydra_value(str(Path(run_dir).absolute()))
    return shlex.join(["gentool", command, *hydra_cfg.overrides.task, *kept,
                       f"hydra.run.dir={where}"])
