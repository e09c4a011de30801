"""Fetching a data set with torchvision's downloader, quietly and without failing loudly."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Callable

from gentool.engine.run_directory import first_missing, remove_empty_folders

log = logging.getLogger("gentool")


def try_download(title: str, destination, download: Callable[[], object],
                 writes_into=None) -> bool:
    """Run `download()`; True if it worked. torchvision prints each mirror it tries to stdout,
    which offline is a screen of retries before our one-sentence error, so that is captured and
    only our own lines are shown (its progress bar goes to stderr and stays).

    torchvision makes the folder it downloads into (`writes_into`, default `destination`:
    e.g. data/MNIST/raw) before it tries the network, so a failed download removes the folders
    that did not exist before it, where they are still empty."""
    log.info("Downloading %s to %s", title, destination)
    folder = Path(writes_into if writes_into is not None else destination).absolute()
    created_from = first_missing(folder)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            download()
        return True
    except Exception:  # noqa: BLE001 - any failure (offline, HTTP, disk) ends in the caller's message
        log.debug("Download of %s failed:\n%s", title, captured.getvalue())
        if created_from is not None:
            remove_empty_folders(folder, created_from)
        return False

