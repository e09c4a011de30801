"""Where a train run keeps its checkpoints, without torch: the commands that only check an
output path (`gentool report --out`, `gentool train --help`) stay torch-free."""

from __future__ import annotations

from pathlib import Path

# What checkpoint files are named: gentool writes .pt, and .pth is PyTorch's other usual suffix.
CHECKPOINT_SUFFIXES = (".pt", ".pth")
# The folder of a train run directory that holds its checkpoints.
CHECKPOINTS_FOLDER = "checkpoints"


def is_run_checkpoints(folder: Path) -> bool:
    """Whether `folder` is a train run directory's checkpoints folder: named so, and its run
    directory has the `.hydra` config snapshot or it holds a checkpoint file."""
    if folder.name != CHECKPOINTS_FOLDER:
        return False
    if (folder.parent / ".hydra").is_dir():
        return True
    return folder.is_dir() and any(p.suffix.lower() in CHECKPOINT_SUFFIXES
                                   for p in folder.iterdir())


def checkpoints_folder_holding(path: Path) -> Path | None:
    """The train run's checkpoints folder that `path` is or lies inside, if any: the folder no
    command writes its outputs into, as it holds what resume= and `checkpoint=<run>` read."""
    path = path.expanduser().resolve()
    for folder in (path, *path.parents):
        if is_run_checkpoints(folder):
            return folder
    return None
