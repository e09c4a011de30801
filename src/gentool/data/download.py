"""Fetching a data set with torchvision's downloader, quietly and without failing loudly."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Callable

log = logging.getLogger("gentool")


def try_download(title: str, destination, download: Callable[[], object]) -> bool:
    """Run `download()`; True if it worked. torchvision prints each mirror it tries to stdout,
    which offline is a screen of retries before our one-sentence error, so that is captured and
    only our own lines are shown (its progress bar goes to stderr and stays)."""
    log.info("Downloading %s to %s", title, destination)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            download()
        return True
    except Exception:  # noqa: BLE001 - any failure (offline, HTTP, disk) ends in the caller's message
        log.debug("Download of %s failed:\n%s", title, captured.getvalue())
        return False
