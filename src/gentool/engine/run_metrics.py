"""A run's `metrics.json`: its final metrics, written atomically, as standard JSON."""

from __future__ import annotations

import json
import logging
import math
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
    text = json_text(record, indent=2).encode() + b"\n"
    atomic_write(path, lambda f: f.write(text), kept=kept, then=then)
    return path


def json_text(record: Any, indent: int | None = None) -> str:
    """`record` as standard JSON, with every non-finite float (NaN, an undefined metric such as
    the reverse KL of samples with no high-quality one; or infinity) as null: json.dumps would
    write bare NaN and Infinity, which strict JSON parsers refuse. Readers take null as "not
    available"."""
    return json.dumps(_finite(record), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
