"""A run's `metrics.json`: its final metrics, written atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gentool.engine.files import atomic_write

log = logging.getLogger("gentool")


def write_metrics(run_dir: Path, metrics: dict[str, Any], merge: bool = False,
                  kept: str | None = None, then: str = "run the same command again") -> Path:
    """Write `metrics` to <run_dir>/metrics.json; with `merge`, over the keys already there (an
    eval keeps training's keys). `kept` and `then` say, on a refused write, what is intact and
    how to go on (engine.files.atomic_write)."""
    path = Path(run_dir) / "metrics.json"
    record: dict[str, Any] = {}
    if merge and path.is_file():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("%s was not valid JSON; writing the new metrics over it", path)
    record.update(metrics)
    text = json.dumps(record, indent=2).encode() + b"\n"
    atomic_write(path, lambda f: f.write(text), kept=kept, then=then)
    return path
