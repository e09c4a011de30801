"""`gentool report PATH...`: one markdown table over many runs' metrics.json.

Runs are found under every PATH (a run directory, a folder of runs, a Hydra multirun folder).
Each run's overrides come from its `.hydra/overrides.yaml`; runs that differ only in `seed` form
one row, and the columns show mean ± std over them. The override keys that take more than one
value across the runs label the rows, so a sweep `-m model=vae,ae seed=0,1,2` becomes a table
with a `model` column and n = 3 in each row. Values are compared as Hydra reads them, so
`optimizer.lr=1e-3` and `optimizer.lr=0.001` are one row; where two rows would print alike
(the number 1 and the string '1'), the string is shown quoted.
"""

from __future__ import annotations

import functools
import json
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from omegaconf import ListConfig, OmegaConf

from gentool.errors import GentoolError
from gentool.options import closest

IGNORED_OVERRIDES = ("seed",)   # what varies within a row
# The resolvers whose value follows from the saved config alone. Any other (oc.env, gentool's
# uid and started, hydra) gave a value of the run's environment or time, which no .hydra file
# keeps.
SAVED_RESOLVERS = ("oc.select", "oc.decode", "oc.create", "oc.dict.keys", "oc.dict.values",
                   "sum")
# An interpolation opens with `${` after an even number of backslashes, as OmegaConf reads a
# string: `\${` is an escaped, literal `${`, and `\\${` a backslash before an interpolation.
_OPENS = r"(?<!\\)(?:\\\\)*\$\{"
INTERPOLATION = re.compile(_OPENS)
# `${name:` of a resolver call inside an interpolation (`${a.b}` names a key, not a resolver).
RESOLVER_CALL = re.compile(_OPENS + r"\s*([\w.]+)\s*:")
UNRESOLVED = " (unresolved)"   # follows an interpolation whose value the run did not save
# The value of a key a run's files do not hold: apart from every value, null included.
_ABSENT = object()


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float | None]     # None: not available (report.figures)

    def setting(self, key: str) -> str:
        """What the run used for an override key, as its label shows it (`value` gives it to
        compare)."""
        return self._setting(key)[0]

    def quoted_setting(self, key: str) -> str:
        """`setting`, with a string value quoted as JSON writes it (the string "1" beside the
        number 1)."""
        label, value = self._setting(key)
        return json.dumps(value) if isinstance(value, str) else label

    def value(self, key: str):
        """What the run used for an override key, as a value that equals another run's where
        Hydra reads the two as the same (1e-3 and 0.001)."""
        return _comparable(self._setting(key)[1])

    def _setting(self, key: str) -> tuple[str, object]:
        """The label and the value of what the run used for an override key: the value given on
        its command line, else the default it ran with, read from its saved config
        (`.hydra/hydra.yaml` holds the config group choices, such as `model`, and
        `.hydra/config.yaml` the values); "" (and the value _ABSENT) when the run has neither.
        An interpolation is shown as what it resolves to in the saved config, or marked
        unresolved where the run's value was not saved (an environment variable, the time); an
        escaped one (`\\${x}`) is the text `${x}`."""
        if key in self.overrides:
            text = self.overrides[key]
            if _holds_interpolation(text):
                return self._resolved(key, text)
            return _literal(text), _literal(_override_value(text))
        choices = self._choices
        if isinstance(choices, dict) and choices.get(key) is not None:
            return str(choices[key]), str(choices[key])
        config = self._config
        value = _select(config, key) if isinstance(config, dict) else None
        if value is None:
            return "", _ABSENT
        if _holds_interpolation(value):
            return self._resolved(key, _shown(value))
        value = _literal(value)
        return _shown(value), value

    def _resolved(self, key: str, given: str) -> tuple[str, object]:
        """The label and value of `key` resolved in the saved config, or `given` (its text)
        marked unresolved."""
        unresolved = (given + UNRESOLVED, given + UNRESOLVED)
        saved = self._saved_config
        try:
            # _ABSENT: no such key, or a value the run did not save (`???`)
            node = OmegaConf.select(saved, key, default=_ABSENT) if saved is not None \
                else _ABSENT
            value = OmegaConf.to_container(node, resolve=True, throw_on_missing=True) \
                if OmegaConf.is_config(node) else node
        except Exception:   # it reaches a value the run did not save
            return unresolved
        # A resolved value holds no interpolation: a `${` in it is text an escape gave.
        if value is _ABSENT:
            return unresolved
        return _shown(value), value

    @cached_property
    def _saved_config(self):
        """The saved config, every value that a resolver of the run's environment or time gave
        left as `???`, so resolving through one fails instead of giving today's value."""
        from gentool.config import setup

        setup()   # the resolvers gentool's configs use (`sum` of derived_pairs)
        config = self._config
        return OmegaConf.create(_unsaved_as_missing(config)) if isinstance(config, dict) \
            else None

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


def _strings(value):
    """Every string of a config value (strings, lists, mappings)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _holds_interpolation(value) -> bool:
    return any(INTERPOLATION.search(text) for text in _strings(value))


def _literal(value):
    """A config value that holds no interpolation as OmegaConf reads it: an escaped `\\${` is
    the text `${`."""
    if not any("${" in text for text in _strings(value)):
        return value
    return OmegaConf.to_container(OmegaConf.create({"value": value}), resolve=True)["value"]


def _unsaved_as_missing(node):
    """`node` (plain containers) with every string that calls a resolver outside
    SAVED_RESOLVERS replaced by `???`."""
    if isinstance(node, dict):
        return {key: _unsaved_as_missing(item) for key, item in node.items()}
    if isinstance(node, list):
        return [_unsaved_as_missing(item) for item in node]
    if isinstance(node, str) and any(name not in SAVED_RESOLVERS
                                     for name in RESOLVER_CALL.findall(node)):
        return "???"
    return node


def _override_value(text: str):
    """The value of an override as Hydra's grammar reads it (1e-3 -> 0.001, true, [1,2],
    'quoted' -> quoted); the text itself where it does not parse as one value."""
    try:
        value = _override_parser().parse_override(f"key={text}").value()
    except Exception:   # the grammar reads no single value from it
        return text
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else text


@functools.cache
def _override_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _comparable(value):
    """`value` as something to compare and hash: numbers by their value (1 and 1.0 alike,
    true apart from 1), lists and mappings item by item; _ABSENT apart from them all."""
    if value is _ABSENT:
        return ("absent",)
    if isinstance(value, bool) or value is None:
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", "nan" if value != value else value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_comparable(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(key), _comparable(item))
                                     for key, item in value.items())))
    return ("text", str(value))


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
        runs += [load_run(file.parent) for file in metrics_files(root)]
    if not runs:
        raise GentoolError(f"no metrics.json under {', '.join(paths)}; give the folders of "
                           "finished runs (gentool train writes metrics.json at the end).")
    return runs


def metrics_files(root: Path) -> list[Path]:
    """The metrics.json of the run at `root`, or of every run below it."""
    if (root / "metrics.json").is_file():
        return [root / "metrics.json"]
    return sorted(root.rglob("metrics.json")) if root.is_dir() else []


def holds_runs(given: str) -> bool:
    """Whether `given` is a folder that find_runs reads runs from."""
    return bool(metrics_files(Path(given)))


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
    if isinstance(items, ListConfig):
        # The items as written: a value may be an interpolation (${model.latent_dim}), which
        # reading an item of the loaded list would resolve against the list itself.
        items = OmegaConf.to_container(items)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise GentoolError(f"{file} is not the list of key=value overrides Hydra writes; fix "
                           "it, or delete it to tabulate that run without its overrides.")
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def table_path(out: str) -> Path:
    """Where --out writes the table: a .md file outside any run's checkpoints folder, its folder
    made if missing (engine.files.output_file), checked before any run is read."""
    from gentool.engine.files import output_file

    return output_file(out, "--out", ".md", "gentool report writes its markdown table",
                       "table.md")


def write_table(path: Path, text: str) -> Path:
    from gentool.engine.files import atomic_write

    return atomic_write(path, lambda f: f.write(text.encode() + b"\n"),
                        kept="the table was printed above", then="run the command again")


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def group_runs(runs: list[Run]) -> tuple[list[str], list[tuple[tuple[str, ...], list[Run]]]]:
    """The override keys that tell rows apart, and the rows (each one's label and runs) in the
    order of their labels."""
    keys = sorted({k for run in runs for k in run.overrides} - set(IGNORED_OVERRIDES))
    # A run that left a key at its default is labelled with the default it used, so `model=ae`
    # beside a run of the default model reads ae | vae, and model=vae beside it is one row.
    values = [{k: run.value(k) for k in keys} for run in runs]
    varying = [k for k in keys if len({value[k] for value in values}) > 1]
    if not varying and len(runs) > 1 and not any(run.overrides for run in runs):
        varying = ["run"]   # runs without Hydra overrides: one row each, by folder
    # Runs whose values are the same share a row, labelled as the first of them spells them.
    groups: dict[tuple, list[Run]] = {}
    for run, value in zip(runs, values):
        same = tuple(run.path.name if k == "run" else value[k] for k in varying)
        groups.setdefault(same, []).append(run)
    return varying, _labelled_apart(list(groups.values()), varying)


def _label(run: Run, varying: list[str]) -> tuple[str, ...]:
    return tuple(run.path.name if k == "run" else run.setting(k) for k in varying)


def _labelled_apart(groups: list[list[Run]], varying: list[str]
                    ) -> list[tuple[tuple[str, ...], list[Run]]]:
    """Each group of runs with its label, in the order of the labels. Groups whose labels print
    alike hold values that differ only in type or quoting (the number 1 and the string '1', true
    and 'true', no value and ''): in the columns where their values differ, their strings are
    shown quoted ("1"), which tells them apart; every other label is left as it prints. The
    order is that of the labels as they print unquoted, so such rows stay side by side."""
    alike: dict[tuple[str, ...], list[list[Run]]] = defaultdict(list)
    for members in groups:
        alike[_label(members[0], varying)].append(members)
    rows = []   # (label unquoted, label shown, runs)
    for label, same_label in alike.items():
        if len(same_label) == 1:
            rows.append((label, label, same_label[0]))
            continue
        differ = {k for k in varying
                  if len({members[0].value(k) for members in same_label}) > 1}
        for members in same_label:
            apart = tuple(members[0].quoted_setting(k) if k in differ else shown
                          for k, shown in zip(varying, label))
            rows.append((label, apart, members))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [(shown, members) for _, shown, members in rows]


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
    match = closest(name, same) or _longest_start(name, same)
    return f"{prefix}/{match}" if match else None


def _longest_start(name: str, names: list[str]) -> str | None:
    """The longest of `names` that `name` starts with (mse_typo -> mse), which difflib's ratio
    misses when the rest is longer than the name itself."""
    starts = [n for n in names if name.startswith(n)]
    return max(starts, key=len) if starts else None


def metric_keys(keys: list[str]) -> str:
    """Every metric key as it is given to --metrics: "eval/fd, step_time, test/loss"."""
    return ", ".join(sorted(keys))


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
        raise GentoolError(f"no run has the metric{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown)}{hint} (the runs have {metric_keys(present)}).")
    varying, rows = group_runs(runs)
    head = [*varying, "n", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, members in rows:
        # A value's `|` would end its cell: escaped, markdown shows it in the cell.
        cells = [*(shown.replace("|", "\\|") for shown in label), str(len(members)),
                 *(mean_std([run.metrics[m] for run in members
                             if run.metrics.get(m) is not None], len(members))
                   for m in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
