"""Fetching a data set with torchvision's downloader, quietly and without failing loudly.

torchvision writes each file at its final path while it downloads it, and truncates a file it
downloads again. Several processes fetching the same data set at once (the jobs of a sweep
starting together) would then read, check or unpack each other's half-written files. So each
download goes into a folder of the process's own inside the destination, and its files are
moved into place with os.replace: another process sees a whole file or none.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from gentool.engine.run_directory import first_missing, remove_empty_folders

log = logging.getLogger("gentool")

# Attempts at making the private folder, each undone at most once by another process's
# failed download removing the still empty destination it had made.
_FOLDER_ATTEMPTS = 5


def try_download(title: str, destination, download: Callable[[Path], object]) -> bool:
    """Run `download(folder)`, which fetches into `folder` what belongs in `destination`, in
    the same layout; True if it worked. torchvision prints each mirror it tries to stdout,
    which offline is a screen of retries before our one-sentence error, so that is captured and
    only our own lines are shown (its progress bar goes to stderr and stays).

    The download's own folder is removed afterwards, with whatever a failed attempt left in it;
    so are the folders of `destination` that did not exist before, where they are empty (rmdir
    removes nothing else, so a folder holding another process's files or download stays)."""
    log.info("Downloading %s to %s", title, destination)
    destination = Path(destination).absolute()
    created_from = first_missing(destination)
    captured = io.StringIO()
    private = None
    try:
        private = _private_folder(destination)
        with contextlib.redirect_stdout(captured):
            download(private)
        _move_files(private, destination)
        return True
    except Exception:  # noqa: BLE001 - any failure (offline, HTTP, disk) ends in the caller's message
        log.debug("Download of %s failed:\n%s", title, captured.getvalue())
        return False
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        if created_from is not None:
            remove_empty_folders(destination, created_from)


def _private_folder(destination: Path) -> Path:
    """A new folder of this process's own inside `destination`, made with its parents."""
    for _ in range(_FOLDER_ATTEMPTS - 1):
        try:
            return _make_folder_inside(destination)
        except FileNotFoundError:   # another process removed `destination` in between
            pass
    return _make_folder_inside(destination)


def _make_folder_inside(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".download-{os.getpid()}-", dir=destination))


def _move_files(source: Path, destination: Path) -> None:
    """Move every file under `source` to the same place under `destination`, each in one
    os.replace (both are on one file system: `source` is inside `destination`)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
