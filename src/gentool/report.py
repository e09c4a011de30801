"""`gentool report PATH...`: one markdown table over many runs' metrics.json.

Runs are found under every PATH (a run directory, a folder of runs, a Hydra multirun folder).
Each run's overrides come from its `.hydra/overrides.yaml`; runs that differ only in `seed` form
one row, and the columns show mean ± std over them. The override keys that take more than one
value across the runs label the rows, so a sweep `-m model=vae,ae seed=0,1,2` becomes a table
with a `model` column and n = 3 in each row.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from omegaconf import ListConfig, OmegaConf

from gentool.errors import GentoolError
from gentool.options import closest

IGNORED_OVERRIDES = ("seed",)   # what varies within a row


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float | None]     # None: not available (report.figures)

    def setting(self, key: str) -> str:
        """What the run used for an override key: the value given on its command line, else
        the default it ran with, read from its saved config (`.hydra/hydra.yaml` holds the
        config group choices, such as `model`, and `.hydra/config.yaml` the values); "" when
        the run has neither."""
        if key in self.overrides:
            return self.overrides[key]
        choices = self._choices
        if isinstance(choices, dict) and choices.get(key) is not None:
            return str(choices[key])
        config = self._config
        value = _select(config, key) if isinstance(config, dict) else None
        return "" if value is None else _shown(value)

    @cached_property
    def _choices(self):
        return _saved(self.path / ".hydra" / "hydra.yaml", "hydra.runtime.choices")

    @cached_property
    def _config(self):
        return _saved(self.path / ".hydra" / "config.yaml", "")


def _saved(file: Path, key: str):
    """The node at `key` ("" for all) of a saved Hydra file, as plain Python; None when the file
    is missing or unreadable (the run's row then leaves that cell empty, as without the file)."""
    if not file.is_file():
        return None
    try:
        node = OmegaConf.select(OmegaConf.load(file), key) if key else OmegaConf.load(file)
        return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
    except Exception:   # YAML syntax errors, undecodable bytes, interpolations
        return None


def _select(config: dict, key: str):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _shown(value) -> str:
    """A config value as it is written on the command line (true, null, [1,2])."""
    if isinstance(value, (bool, type(None), list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def find_runs(paths: list[str]) -> list[Run]:
    runs = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise GentoolError(f"{given} does not exist; give run directories or folders that "
                               "hold them.")
        files = [root / "metrics.json"] if (root / "metrics.json").is_file() else \
            sorted(root.rglob("metrics.json"))
        runs += [load_run(file.parent) for file in files]
    if not runs:
        raise GentoolError(f"No metrics.json under {', '.join(paths)}; give the folders of "
                           "finished runs (gentool train writes metrics.json at the end).")
    return runs


def load_run(folder: Path) -> Run:
    file = folder / "metrics.json"
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GentoolError(f"{file} is not valid JSON ({getattr(error, 'msg', error)}); remove "
                           "that run or re-run it.") from error
    if not isinstance(metrics, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(metrics), "a number")
        raise GentoolError(f"{file} holds {kind}, not the JSON object of metric names and values "
                           "gentool writes; remove that run or re-run it.")
    return Run(folder, load_overrides(folder / ".hydra" / "overrides.yaml"), figures(metrics))


def figures(metrics: dict) -> dict[str, float | None]:
    """The metrics of a metrics.json, by key, without `step` and the flags; None where a metric
    is not available: null (gentool writes an undefined metric such as the reverse KL of samples
    with no high-quality one so) or, in a file written before, NaN or infinity."""
    found: dict[str, float | None] = {}
    for key, value in metrics.items():
        if key == "step" or isinstance(value, bool):
            continue
        if value is None:
            found[key] = None
        elif isinstance(value, (int, float)):
            found[key] = float(value) if math.isfinite(value) else None
    return found


def load_overrides(file: Path) -> dict[str, str]:
    """A run's command-line overrides (Hydra's list of key=value strings), by key."""
    if not file.is_file():
        return {}
    try:
        items = OmegaConf.load(file)
    except Exception as error:   # YAML syntax errors, undecodable bytes
        raise GentoolError(f"{file} is not valid YAML ({_first_line(error)}); fix it, or delete "
                           "it to tabulate that run without its overrides.") from error
    if items is None:
        return {}
    if not isinstance(items, ListConfig) or not all(isinstance(i, str) for i in items):
        raise GentoolError(f"{file} is not the list of key=value overrides Hydra writes; fix "
                           "it, or delete it to tabulate that run without its overrides.")
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def table_path(out: str) -> Path:
    """Where --out writes the table; its folder must exist (a typo there is refused, not
    created), checked before any run is read."""
    path = Path(out).expanduser()
    if path.is_dir():
        raise GentoolError(f"--out {out} is a folder; give a file path such as {out}/table.md.")
    if not path.parent.is_dir():
        raise GentoolError(f"--out {out}: the folder {path.parent} does not exist; create it or "
                           "give another path.")
    return path


def write_table(path: Path, text: str) -> Path:
    from gentool.engine.files import atomic_write

    return atomic_write(path, lambda f: f.write(text.encode() + b"\n"),
                        kept="the table was printed above", then="run the command again")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def group_runs(runs: list[Run]) -> tuple[list[str], dict[tuple[str, ...], list[Run]]]:
    """The override keys that tell rows apart, and the runs of each row (keyed by their values)."""
    keys = sorted({k for run in runs for k in run.overrides} - set(IGNORED_OVERRIDES))
    # A run that left a key at its default is labelled with the default it used, so `model=ae`
    # beside a run of the default model reads ae | vae, and model=vae beside it is one row.
    settings = [{k: run.setting(k) for k in keys} for run in runs]
    varying = [k for k in keys if len({setting[k] for setting in settings}) > 1]
    if not varying and len(runs) > 1 and not any(run.overrides for run in runs):
        varying = ["run"]   # runs without Hydra overrides: one row each, by folder
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run, setting in zip(runs, settings):
        label = tuple(run.path.name if k == "run" else setting[k] for k in varying)
        groups.setdefault(label, []).append(run)
    return varying, groups


def default_metrics(runs: list[Run]) -> list[str]:
    """eval/* keys when any run was evaluated, else the final test/* metrics."""
    present = sorted({k for run in runs for k in run.metrics})
    evaluated = [k for k in present if k.startswith("eval/")]
    return evaluated or [k for k in present if k.startswith("test/")] or present


def _closest_key(key: str, keys: list[str]) -> str | None:
    """The key `key` was likely meant to be: judged on the name after a prefix it shares with
    others (test/los -> test/loss), as the shared "test/" would make any test/* key look close."""
    prefix, slash, name = key.partition("/")
    same = [k.partition("/")[2] for k in keys if slash and k.startswith(prefix + "/")]
    if not same:
        return closest(key, keys)
    match = closest(name, same)
    return f"{prefix}/{match}" if match else None


def metric_keys(keys: list[str]) -> str:
    """Every metric key, grouped by its prefix (eval/, test/, val/, ...):
    "eval/ 2 keys: fd, is; test/ 1 key: loss" """
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        prefix, slash, rest = key.partition("/")
        groups[prefix + slash if slash else ""].append(rest if slash else key)
    return "; ".join(f"{prefix or 'other'} {len(names)} key{'s' if len(names) > 1 else ''}: "
                     f"{', '.join(names)}" for prefix, names in groups.items())


def mean_std(values: list[float], runs: int | None = None) -> str:
    """Mean ± sample std of `values`; when only some of a row's `runs` have a value, the cell
    says over how many it is taken, since the row's n counts them all."""
    if not values:
        return "—"
    mean = statistics.fmean(values)
    text = f"{mean:.4g}" if len(values) == 1 else \
        f"{mean:.4g} ± {statistics.stdev(values):.2g}"
    if runs is not None and len(values) < runs:
        text += f" ({len(values)} of {runs})"
    return text


def report(paths: list[str], metrics: list[str] | None = None) -> str:
    runs = find_runs(paths)
    columns = metrics or default_metrics(runs)
    unknown = [m for m in columns if not any(m in run.metrics for run in runs)]
    if unknown:
        present = sorted({k for run in runs for k in run.metrics})
        matches = {key: _closest_key(key, present) for key in unknown}
        meant = [f"{match} (for {key})" if len(unknown) > 1 else match
                 for key, match in matches.items() if match]
        hint = f"; did you mean {' and '.join(meant)}?" if meant else ""
        raise GentoolError(f"No run has the metric{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown)}{hint} (the runs have {metric_keys(present)}).")
    varying, groups = group_runs(runs)
    head = [*varying, "n", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, members in sorted(groups.items()):
        cells = [*label, str(len(members)),
                 *(mean_std([run.metrics[m] for run in members
                             if run.metrics.get(m) is not None], len(members))
                   for m in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
