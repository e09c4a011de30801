"""Structured-config schemas for the fixed keys, the one setup of resolvers and schemas, and the
single instantiate helper.

The schemas give every command typed top-level keys (`trainer.max_steps=abc` is refused while Hydra
composes, in one sentence naming the key and its type: gentool.overrides); their ranges
(`Annotated[int, Range(min=1)]`) are checked by `check_config` when a command starts. Model,
dataset, loss and optimizer nodes stay free-form: their shape is fixed by the `_target_` they name,
whose annotated parameters type them (gentool.options), and `instantiate` below is the only way
such a node becomes an object.

A config is data: it may come from a stranger's checkpoint or a shared config folder, so what a
`_target_` names is checked on the object the dotted name resolves to (`resolve_target`), never
on its spelling, and Hydra is handed that checked object rather than the name.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import MISSING, OmegaConf

from gentool.errors import GentoolError
from gentool.options import (NonNegativeFloat, NonNegativeInt, OpenUnitFloat, PositiveFloat,
                             PositiveInt, UnitFloat, check_options, check_schema)

# What a `_target_` may resolve to: a class or function defined in one of these packages (what
# configs build: methods, networks, losses, data sources), or an optimizer class of torch.optim.
# The rest of gentool (commands, engine, file writing) is never a config's to call.
TARGET_PACKAGES = ("gentool.methods", "gentool.nets", "gentool.losses", "gentool.data")
OPTIMIZERS = "torch.optim"
ALLOWED_TARGETS = (f"a class or function of {', '.join(TARGET_PACKAGES[:-1])} or "
                   f"{TARGET_PACKAGES[-1]}, or an optimizer class of {OPTIMIZERS}")
# Hydra's switches that must be booleans (Hydra raises a bare TypeError on anything else).
BOOLEAN_FLAGS = ("_partial_", "_recursive_")
_ABSENT = object()


class UnsafeConfig(GentoolError):
    """A config node that names something gentool does not build, or that would be rewritten
    while it is built. `key` is the dotted path of the node, `reason` a clause that follows its
    value ("walks through the module os, ..."), `fix` what to do instead."""

    action = "build"   # what is refused: "refusing to <action> <key>: ..."

    def __init__(self, key: str, value: Any, reason: str, fix: str):
        self.key, self.value, self.reason, self.fix = key, value, reason, fix
        super().__init__(f"refusing to {self.action} {key}: {_shown(value)} {reason}; {fix}.")


# The keys of a data set's config (the `dataset` node) that gentool reads: gentool.data loads
# the data with them, gentool.methods and gentool.evaluate read `values`. `values` (image data
# sets leave it out), `input_channels` and `pair` (image pairs only) may be absent. The loader
# that `source` names takes its own options, typed by its signature (gentool.options).
DATASET_KEYS = ("name", "shape", "num_classes", "range", "binarize", "validation", "values",
                "input_channels", "pair", "source")
# The keys of DATASET_KEYS read of image pairs alone: model=pix2pix reads `input_channels`, and
# gentool.data reads `pair` of a data set derived from another (whose `source` is that data
# set's config). The shipped pair data sets (derived_pairs, paired_folder) hold the ones they
# use, so either key added to a data set has no effect, or for `pair` breaks its loading.
PAIR_DATASET_KEYS = ("input_channels", "pair")
# The keys of a derived data set's `pair` node (configs/dataset/pair): gentool.data builds
# `transform` (whose own options its signature types), and dataset.input_channels follows
# `input_channels`.
PAIR_KEYS = ("name", "input_channels", "transform")


@dataclass
class ScheduleConfig:
    """The types and ranges of `trainer.schedule`; its values are in configs/trainer/default.yaml
    (MISSING here, so that file is their one source)."""
    name: str = MISSING   # checked by engine.schedule.check_schedule
    warmup_steps: NonNegativeInt = MISSING
    min_lr_ratio: UnitFloat = MISSING
    step_size: PositiveInt = MISSING
    gamma: PositiveFloat = MISSING


@dataclass
class TrainerConfig:
    """The types and ranges of `trainer`; the values and what each does are in
    configs/trainer/default.yaml (MISSING here, so that file is their one source)."""
    max_steps: PositiveInt = MISSING
    batch_size: PositiveInt = MISSING
    log_every: PositiveInt = MISSING
    eval_every: PositiveInt = MISSING
    checkpoint_every: PositiveInt = MISSING
    keep_checkpoints: NonNegativeInt = MISSING
    precision: str = MISSING   # checked by engine.device.autocast_for
    grad_clip: Optional[PositiveFloat] = MISSING
    eval_examples: Optional[PositiveInt] = MISSING
    image_examples: PositiveInt = MISSING
    scatter_examples: PositiveInt = MISSING
    progress_bar: bool = MISSING
    monitor: Optional[str] = MISSING   # checked by engine.monitor.Monitor
    monitor_mode: str = MISSING        # checked by engine.monitor.Monitor
    early_stopping: Optional[PositiveInt] = MISSING
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


@dataclass
class TrainConfig:
    model: Any = None
    dataset: Any = None
    loss: Any = None
    optimizer: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    resume: Optional[str] = None
    # Lets all convolution algorithms be picked for speed; resume is then exact only on CPU.
    deterministic: bool = True


@dataclass
class SampleConfig:
    checkpoint: Optional[str] = None
    n: PositiveInt = 64
    out: Optional[str] = None   # null: samples.png, samples.npy or samples/ by format=
    format: Optional[str] = None   # null: from out= (.png grid, .npy, a folder); gentool.sample
    mode: str = "sample"
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    nrow: Optional[PositiveInt] = None
    steps: PositiveInt = 10
    # auto or [i, j]; auto or a whole factor >= 1 (checked by gentool.sample, since OmegaConf
    # types no union of a string and a list or int)
    dims: Any = "auto"
    scale: Any = "auto"
    temperature: NonNegativeFloat = 1.0
    labels: Optional[list] = None
    input: Optional[str] = None
    # null: the model's own model.rejection; a share in [0, 1) overrides it
    rejection: Optional[float] = None


@dataclass
class NaiveMonteCarloConfig:
    k_max: int = 100_000
    examples: int = 100


@dataclass
class EvalConfig:
    checkpoint: Optional[str] = None
    metrics: Optional[list] = None
    n_samples: int = 10_000
    batch_size: int = 500
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    iwae_k: int = 5000
    # null: the whole test split; a count below 1 is refused (take() would read -1 as "all but
    # the last")
    likelihood_examples: Optional[PositiveInt] = None
    naive_mc: NaiveMonteCarloConfig = field(default_factory=NaiveMonteCarloConfig)
    max_pairs: int = 32_768
    neighbours: int = 3
    probe_examples: int = 10_000
    classifier_steps: int = 6000
    scale: Any = "auto"   # auto or a whole factor >= 1, for the PNGs under <run>/eval/
    # null: the model's own model.rejection; a share in [0, 1) overrides it
    rejection: Optional[float] = None


@dataclass
class SpreadingOptions:
    """finetune.head=label_spreading: the k-NN graph and the spreading (gentool.label_spreading)."""
    neighbours: PositiveInt = 10      # k of the graph and of a test point's vote
    alpha: OpenUnitFloat = 0.99       # the share of a point's labels that comes from its neighbours
    iterations: PositiveInt = 200
    # Also spread on the codes of a random encoder of the same architecture (metrics.json's
    # test/accuracy_control): what the pretraining adds over using the unlabelled images at all.
    control: bool = True
    # Also spread on the standardised pixels (test/accuracy_control_pixels): no encoder at all.
    pixel_control: bool = False


@dataclass
class FinetuneOptions:
    freeze_encoder: bool = True
    head: str = "label_spreading"
    # The network trained on the labels alone: null is the pretrained classifier's head, or a
    # linear head when that is label spreading (no network to repeat from scratch).
    scratch_head: Optional[str] = None
    spreading: SpreadingOptions = field(default_factory=SpreadingOptions)
    hidden: PositiveInt = 256
    steps: PositiveInt = 1000
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-2
    # The pretrained encoder's codes shifted and scaled by their mean and std over the whole
    # (unlabelled) train split, measured once before training, before they reach the head.
    standardize_codes: bool = True
    # The pretrained encoder's learning rate as a multiple of `lr` when fine-tuned end to end;
    # the model trained from scratch keeps `lr` everywhere.
    encoder_lr_scale: PositiveFloat = 1.0


@dataclass
class FinetuneConfig:
    checkpoint: Optional[str] = None
    labels_per_class: int = 10
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)


# Run directories are <started time>_<uid>. The short random tag keeps two runs that start within
# the same second apart; both are cached, so every reference within one run agrees. The processes
# of one torchrun launch take rank 0's time and tag from the environment (set by
# gentool.cli.agree_on_run_name), so they share one run directory.
STARTED = datetime.now()


def run_started() -> datetime:
    shared = os.environ.get("GENTOOL_RUN_STARTED")
    return datetime.fromisoformat(shared) if shared else STARTED


def _run_tag() -> str:
    return os.environ.get("GENTOOL_RUN_TAG") or secrets.token_hex(3)


def _sum(*values: int) -> int:
    """`${sum:a,b}`: the channels of a pair (dataset/derived_pairs.yaml) add up."""
    return sum(values)


def config_groups() -> str:
    """`${config_groups:}`: the groups of gentool's config tree and their options, one group a
    line, as `train --help` lists them. Folders starting with `_` hold parts that model configs
    include (`model/_parts`), not choices, and `hydra` is Hydra's own, so neither is listed."""
    root = Path(__file__).resolve().parent / "configs"
    lines = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        group = folder.relative_to(root)
        if group.parts[0] == "hydra" or any(part.startswith(("_", ".")) for part in group.parts):
            continue
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options:
            lines.append(f"{group.as_posix()}: {', '.join(options)}")
    return "\n".join(lines)


def setup() -> None:
    """Register the resolvers gentool's configs use and the command schemas their defaults lists
    name. Idempotent; the command line calls it before Hydra composes a command's config, and
    anything else that composes gentool's configs (tests, scripts) calls it first."""
    resolvers = (("uid", _run_tag, True),
                 ("started", lambda pattern: run_started().strftime(pattern), True),
                 ("sum", _sum, False),
                 ("config_groups", config_groups, True))
    for name, resolver, cached in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="sample_schema", node=SampleConfig)
    store.store(name="eval_schema", node=EvalConfig)
    store.store(name="finetune_schema", node=FinetuneConfig)


# What a value left as `???` looks like, by the last part of its key, for the sentence that asks
# for it (the shipped configs leave dataset.shape, dataset.source.path, dataset.num_classes).
_MISSING_EXAMPLES = {"shape": "[<features>]", "path": "<path>", "num_classes": "<classes>"}


def check_config(cfg: DictConfig) -> None:
    """Refuse a command's config with a value left as `???` (dataset.shape of dataset=vectors)
    or values outside the ranges its schema declares (trainer.checkpoint_every=0, n=0, ...):
    one sentence naming the key, before anything runs. The commands that start from a
    checkpoint have `???` refused by gentool.trained.start_from_checkpoint and check the ranges
    alone (options.check_schema)."""
    check_complete(cfg)
    check_schema(cfg)


def check_complete(cfg: DictConfig) -> None:
    """Refuse a config with mandatory values (`???`) not given. Anything that reads one, or an
    interpolation of one (model.data_shape: ${dataset.shape}), would otherwise raise OmegaConf's
    MissingMandatoryValue or InterpolationToMissingValueError."""
    missing = sorted(_missing_keys(cfg))
    if not missing:
        return
    group = missing[0].split(".")[0]
    name = OmegaConf.select(cfg, f"{group}.name", default=None) \
        if all(key.split(".")[0] == group for key in missing) else None
    owner = f"{group}={name} needs" if isinstance(name, str) else f"{_command()} needs"
    keys = missing[0] if len(missing) == 1 else \
        f"{', '.join(missing[:-1])} and {missing[-1]}"
    which, them = ("which has", "it") if len(missing) == 1 else ("which have", "them")
    examples = " ".join(dict.fromkeys(_missing_example(key) for key in missing))
    raise GentoolError(f"{owner} {keys}, {which} no value; set {them} on the command line, "
                       f"e.g. {examples}.")


def _command() -> str:
    """`gentool <command>` of the running Hydra job (its job name), else "This command"."""
    from hydra.core.hydra_config import HydraConfig

    name = HydraConfig.get().job.name if HydraConfig.initialized() else None
    return f"gentool {name}" if name in ("train", "sample", "eval", "finetune") else "This command"


def _missing_example(key: str) -> str:
    """`key=<what>`; an item of a list (model.encoder.hidden[0]) is set as the whole list."""
    if key.endswith("]"):
        return f"{key[:key.index('[')]}=[...]"
    return f"{key}={_MISSING_EXAMPLES.get(key.split('.')[-1], '<value>')}"


def _missing_keys(node: Any, prefix: str = "") -> list[str]:
    """The full keys of the values left as `???` under a config node, read without resolving
    anything (OmegaConf.missing_keys resolves interpolations, and one that points at a missing
    value raises instead of naming it)."""
    if OmegaConf.is_dict(node):
        keys: Any = [str(key) for key in node.keys()]
    elif OmegaConf.is_list(node):
        keys = range(len(node))
    else:
        return []
    found = []
    for key in keys:
        full = f"{prefix}[{key}]" if isinstance(key, int) else \
            (f"{prefix}.{key}" if prefix else key)
        if OmegaConf.is_missing(node, key):
            found.append(full)
        elif not OmegaConf.is_interpolation(node, key):
            # Neither missing nor an interpolation: reading it resolves nothing, and a nested
            # node comes back as the node itself.
            found += _missing_keys(node[key], full)
    return found


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Build the object a config node describes, refusing anything but ALLOWED_TARGETS.

    The node is resolved first (interpolations included), every `_target_` in it is resolved and
    checked (`check_targets`), its options are checked against the annotations of those targets
    (gentool.options), and Hydra receives the checked objects themselves, so it looks no name up.
    `kwargs` are objects the caller built (a loss, parameters, a path); they may not carry config
    nodes to build. Errors raised by the target's constructor as GentoolError reach the user
    unchanged; Hydra otherwise wraps them in a message with its own internals.
    """
    if OmegaConf.is_config(node):
        key = str(node._get_full_key(None))
        container = OmegaConf.to_container(node, resolve=True)
    else:
        key, container = "", node
    checked = check_targets(container, key)
    check_options(container, key)
    _check_arguments(kwargs)
    if isinstance(checked, (dict, list)):
        checked = OmegaConf.create(checked, flags={"allow_objects": True})
    try:
        return hydra_instantiate(checked, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, GentoolError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise GentoolError(f"could not build {_target_of(container)}: {_first_line(error)}; "
                           "check the options given for it.") from error


def check_targets(node: Any, key: str = "") -> Any:
    """`node` (plain containers) with every `_target_` replaced by the object it resolves to.

    Raises UnsafeConfig, naming the node's dotted path, for a target outside ALLOWED_TARGETS
    (wherever it sits: nested, in `_args_`, in lists), a Hydra switch that is not a boolean, or a
    string that still holds an interpolation: Hydra resolves a config again while building it,
    so an escaped `\\${...}` that survived the first resolution would be resolved there, after
    the check.
    """
    if isinstance(node, dict):
        checked = {}
        for name, value in node.items():
            path = f"{key}.{name}" if key else str(name)
            if name == "_target_":
                checked[name] = _as_node_value(resolve_target(value, path))
            elif name in BOOLEAN_FLAGS and not isinstance(value, bool):
                raise UnsafeConfig(path, value, "is not true or false",
                                   f"set {path} to true or false")
            else:
                checked[name] = check_targets(value, path)
        return checked
    if isinstance(node, (list, tuple)):
        return [check_targets(value, f"{key}[{i}]") for i, value in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        raise UnsafeConfig(key or "the config", node, "still holds an interpolation after "
                           "resolving, which building would resolve again",
                           "give the value itself")
    return node


def check_stored_config(config: Any, source: str) -> None:
    """Refuse `source` (a checkpoint) unless its stored config passes `check_targets` whole.

    Called right after reading, before anything is built from it. A stored config was resolved
    when it was written, so it holds no interpolations either.
    """
    if not isinstance(config, dict):
        raise GentoolError(f"{source} is refused: its stored config is a "
                           f"{type(config).__name__}, not a mapping of options; use a checkpoint "
                           "written by gentool train.")
    try:
        check_targets(config)
    except UnsafeConfig as error:
        raise GentoolError(f"{source} is refused: its stored config sets {error.key} to "
                           f"{_shown(error.value)}, which {error.reason}; use a checkpoint "
                           "written by gentool train.") from error


def resolve_target(target: Any, key: str = "_target_") -> Callable[..., Any]:
    """The class or function a `_target_` names, if it is one of ALLOWED_TARGETS.

    A dotted name is walked one step at a time, importing nothing but gentool's own modules:
    `gentool.<module>...<name>`, where every step but the last is a gentool module and no step
    starts with `_` (no `__globals__`-style walks), or `torch.optim.<Name>`. The object reached
    is then checked itself, so a name that re-exports a foreign module or function
    (`gentool.engine.files.os.system`) is refused. An object given instead of a name (by code)
    gets the same check on the object.
    """
    def refuse(reason: str) -> UnsafeConfig:
        return UnsafeConfig(key, target, reason, f"a _target_ may only name {ALLOWED_TARGETS}")

    if not isinstance(target, str):
        if not callable(target):
            raise refuse("is not a dotted name")
        obj = target
    else:
        parts = target.split(".")
        odd = next((part for part in parts if not part.isidentifier()), None)
        if odd is not None:
            raise refuse(f"is not a dotted Python name ('{odd}')")
        hidden = next((part for part in parts if part.startswith("_")), None)
        if hidden is not None:
            raise refuse(f"walks through '{hidden}', and no step may start with '_'")
        if parts[0] == "gentool":
            obj = _walk_gentool(parts, refuse)
        elif parts[:2] == OPTIMIZERS.split("."):
            optim = importlib.import_module(OPTIMIZERS)
            obj = getattr(optim, parts[2], None) if len(parts) == 3 else None
            if not _is_optimizer_class(obj):
                raise refuse(f"is not an optimizer class of {OPTIMIZERS} ({OPTIMIZERS}.<Name>)")
        else:
            raise refuse("is outside gentool and torch.optim")
    if _is_optimizer_class(obj):
        return obj
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        raise refuse(f"resolves to a {type(obj).__name__}, not a class or function")
    module = getattr(obj, "__module__", None) or "?"
    if not any(_within(module, package) for package in TARGET_PACKAGES):
        raise refuse(f"resolves to {module}.{getattr(obj, '__qualname__', '?')}, outside the "
                     "packages configs build from")
    return obj


def _walk_gentool(parts: list[str], refuse: Callable[[str], UnsafeConfig]) -> Any:
    """Follow `gentool.a.b...` step by step; every object passed through is a gentool module,
    and only modules named gentool.<...> are ever imported."""
    obj: Any = importlib.import_module("gentool")
    for depth, part in enumerate(parts[1:], start=1):
        walked = ".".join(parts[:depth])
        if not isinstance(obj, ModuleType):
            raise refuse(f"reaches inside {walked}, which is a {type(obj).__name__}, "
                         "not a module")
        child = getattr(obj, part, _ABSENT)
        if child is _ABSENT:
            child = _submodule(obj, part)
        if child is _ABSENT:
            raise refuse(f"names nothing ({walked} has no '{part}')")
        if isinstance(child, ModuleType) and not _within(child.__name__, "gentool"):
            raise refuse(f"walks through the module {child.__name__}, which is not part "
                         "of gentool")
        obj = child
    return obj


def _submodule(package: ModuleType, part: str) -> Any:
    """The submodule `part` of `package` (a gentool module), imported; _ABSENT if none."""
    if not hasattr(package, "__path__"):
        return _ABSENT
    name = f"{package.__name__}.{part}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return _ABSENT
        raise


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _is_optimizer_class(obj: Any) -> bool:
    optim = sys.modules.get(OPTIMIZERS)
    return (optim is not None and inspect.isclass(obj) and issubclass(obj, optim.Optimizer)
            and obj is not optim.Optimizer and _within(obj.__module__, OPTIMIZERS))


def _as_node_value(target: Callable[..., Any]) -> Callable[..., Any]:
    """`target` as a value OmegaConf keeps as it is: OmegaConf would turn a dataclass or attrs
    class into a config node, so such a class travels inside a function that calls it."""
    if not (dataclasses.is_dataclass(target) or hasattr(target, "__attrs_attrs__")):
        return target

    @functools.wraps(target, updated=())
    def build(*args: Any, **kwargs: Any) -> Any:
        return target(*args, **kwargs)

    return build


def _check_arguments(kwargs: dict[str, Any]) -> None:
    """The caller's keyword arguments go to Hydra unchanged, which merges them into the config
    and resolves it again: they may hold no node to build and no interpolation."""
    def walk(value: Any, path: str) -> None:
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, dict):
            if "_target_" in value:
                raise UnsafeConfig(f"{path}._target_", value["_target_"], "is a config node "
                                   "to build inside an argument", "build it before passing it")
            for name, item in value.items():
                walk(item, f"{path}.{name}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, str) and "${" in value:
            raise UnsafeConfig(path, value, "holds an interpolation, which building would "
                               "resolve", "give the value itself")

    for name, value in kwargs.items():
        walk(value, name)


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
    return text if len(text) <= 120 else text[:117] + "..."


def _target_of(node: Any) -> str:
    return str(node.get("_target_", "the config node")) if isinstance(node, dict) else "it"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
