"""The two study scripts that run their cells through scripts/study_files.py (gan_study.py and
mode_collapse.py) behind one description, so that what they share is tested once per script: one
4-step cell of each, the job `run_cell` takes for it, where its file and run directory are, and
the command line that runs that cell alone.

The scripts are imported by name from scripts/, which must be on sys.path (the `study_cell`
fixture puts it there): their worker processes, spawned, import `run_cell` the same way."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
STEPS = 4


@dataclass(frozen=True)
class StudyCell:
    study: ModuleType           # the script, imported
    job: object                 # run_cell's job for the cell
    names: dict                 # the keys naming the cell in what run_cell returns
    out: Path                   # the cell's file
    run_dir: Path               # the cell's run directory (its checkpoints)
    argv: list[str]             # the script's arguments that run this cell alone
    report: Callable[[object], str]   # main's return value -> the cell's table


def gan_study_cell(tmp_path: Path) -> StudyCell:
    """The `supports` claim's `plain` configuration, seed 0."""
    study = importlib.import_module("gan_study")
    claim, config, seed = "supports", "plain", 0
    out = study.cell_path(tmp_path / "cells", claim, config, STEPS, seed)
    run_dir = tmp_path / "runs" / claim / config / f"steps{STEPS}" / f"seed{seed}"
    extra = ("trainer.scatter_examples=32",)   # fewer points to plot: a faster cell
    job = study.Job(claim, config, seed, STEPS, str(run_dir), str(out), str(tmp_path / "data"),
                    40, extra)
    argv = ["--claims", claim, "--configs", config, "--seeds", "1", "--steps", str(STEPS),
            "--cells", str(tmp_path / "cells"), "--runs", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "study.md"),
            "--override", *extra]
    return StudyCell(study, job, {"claim": claim, "config": config, "seed": seed}, out,
                     run_dir, argv, report=lambda bodies: bodies[claim])


def mode_collapse_cell(tmp_path: Path) -> StudyCell:
    """The `plain` configuration on `ring`, seed 0."""
    study = importlib.import_module("mode_collapse")
    config, dataset, seed = "plain", "ring", 0
    out = study.cell_path(tmp_path / "cells", dataset, config, seed)
    run_dir = tmp_path / "runs" / dataset / config / f"seed{seed}"
    job = (config, dataset, seed, STEPS, str(run_dir), str(out))
    argv = ["--configs", config, "--datasets", dataset, "--seeds", "1", "--steps", str(STEPS),
            "--workers", "1", "--cells", str(tmp_path / "cells"), "--runs",
            str(tmp_path / "runs"), "--out", str(tmp_path / "table.md")]
    return StudyCell(study, job, {"config": config, "dataset": dataset, "seed": seed}, out,
                     run_dir, argv, report=lambda body: body)


STUDY_CELLS = {"gan_study": gan_study_cell, "mode_collapse": mode_collapse_cell}
