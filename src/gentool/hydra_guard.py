"""The `hydra` node of every config Hydra composes is checked before Hydra acts on it.

Hydra acts on a config's `hydra` node itself, before gentool's command runs, and a config folder
on the search path (`hydra.searchpath=[file://...]`, `-cd`) or the command line can set all of it:
it configures `logging` from hydra.hydra_logging and hydra.job_logging (logging.config imports
any `class`, calls any `()` factory and imports any `ext://` value), builds hydra.callbacks,
hydra.launcher and hydra.sweeper by name together with every `_target_` nested in them, sets
hydra.job.env_set in the job's environment, may move the job into its run directory
(hydra.job.chdir), and imports the module a `pkg://` or `structured://` search-path entry names.
Each of these could run code that gentool never chose, so each is refused unless it is one of
the few things gentool's own configs and Hydra's defaults use (see `check_hydra_node`).

Every config Hydra composes comes from its config loader, and the command line swaps in
`CheckedConfigLoader` for the duration of a command (`checked_composition`): it checks the search
path before it is searched and the composed `hydra` node before the config is returned. That
covers the config of a run, the one --help, --cfg and --info compose, the master config of a
sweep and each job's config, which Hydra composes again per job (also in a launcher's worker
processes or SLURM jobs, which receive the loader pickled and so import and use this class).
The same loader turns a mistaken override into one sentence (gentool.overrides).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import os
import re
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gentool import overrides as mistakes
from gentool.config import UnsafeConfig
from gentool.options import closest

# Handler and formatter classes a logging config may name (`class:`): gentool's run log, the ones
# of Hydra's own logging configs and their file-rotating relatives. No `()` factory is allowed.
HANDLER_CLASSES = ("gentool.engine.run_log.RunLogHandler",
                   "logging.StreamHandler", "logging.FileHandler", "logging.NullHandler",
                   "logging.handlers.RotatingFileHandler",
                   "logging.handlers.TimedRotatingFileHandler",
                   "logging.handlers.WatchedFileHandler")
FORMATTER_CLASSES = ("logging.Formatter",)
STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# The Hydra callbacks of gentool's own command configs, which take no options: the only ones a
# config may name.
CALLBACKS = ("gentool.engine.files.RefuseUnwritableRunDir", "gentool.hydra_run.NewFolders",
             "gentool.hydra_run.RefuseOtherSweepDir")
# logging.config turns any string of this form into an import (ext://) or a lookup (cfg://).
_CONVERTED = re.compile(r"^[a-z]+://")

# The plugins Hydra may build from hydra.launcher / hydra.sweeper, with the structured config
# whose fields are their options. Hydra looks these names up in its registry of installed
# plugins, exactly as spelled, so comparing the spelling is comparing the class.
LAUNCHERS = {
    "hydra._internal.core_plugins.basic_launcher.BasicLauncher":
        "hydra._internal.core_plugins.basic_launcher:BasicLauncherConf",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher":
        "hydra_plugins.hydra_joblib_launcher.config:JobLibLauncherConf",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher":
        "hydra_plugins.hydra_submitit_launcher.config:SlurmQueueConf",
}
SWEEPERS = {
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper":
        "hydra._internal.core_plugins.basic_sweeper:BasicSweeperConf",
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper":
        "hydra_plugins.hydra_optuna_sweeper.config:OptunaSweeperConf",
}
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
# The Optuna sweeper builds these nodes too: samplers and pruners of optuna, nothing else.
OPTUNA_BUILDS = {"sampler": ("optuna.samplers", "BaseSampler"),
                 "pruner": ("optuna.pruners", "BasePruner")}

# sbatch options hydra.launcher.additional_parameters may add to a SLURM job: where and with
# what resources it runs, accounting and notification. Options that choose what runs or its
# environment (export, container, chdir, output, wrap, bb, ...) are left out; sbatch accepts any
# unambiguous abbreviation of an option, so only exact names from this list pass.
SBATCH_OPTIONS = frozenset("""
    account begin clusters comment constraint contiguous core-spec cores-per-socket cpu-freq
    cpus-per-gpu cpus-per-task deadline delay-boot dependency distribution exclude exclusive
    gpu-bind gpu-freq gpus gpus-per-node gpus-per-socket gpus-per-task gres gres-flags hint
    job-name kill-on-invalid-dep licenses mail-type mail-user mem mem-bind mem-per-cpu
    mem-per-gpu mincpus nice no-requeue nodelist nodes ntasks ntasks-per-core ntasks-per-gpu
    ntasks-per-node ntasks-per-socket overcommit oversubscribe partition prefer priority qos
    requeue reservation signal sockets-per-node spread-job switches thread-spec threads-per-core
    time time-min tmp tres-per-task use-min-nodes wckey
""".split())
# joblib evaluates pre_dispatch as an expression (with eval() before joblib 1.2).
_PRE_DISPATCH = re.compile(r"^\s*(\d+\s*\*\s*)?n_jobs\s*$|^\s*\d+\s*$")

# Environment variables hydra.job.env_set may change: thread counts and GPU selection. Others
# (LD_PRELOAD, PYTHONPATH, PATH, HOME, ...) can make the job or a process it starts load code.
ENV_NAMES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING",
             "CUBLAS_WORKSPACE_CONFIG", "PYTORCH_CUDA_ALLOC_CONF", "NCCL_DEBUG")

# The primary config folder gentool's commands name (config_path="configs" beside gentool.cli).
_OWN_CONFIGS = "gentool.configs"
# Stands in for hydra.runtime.output_dir, which Hydra sets only when the job starts.
_OUTPUT_DIR = "/gentool-run-directory"


class UnsafeHydraConfig(UnsafeConfig):
    """A setting of the `hydra` node, the search path or --config-path that would have Hydra
    run code gentool did not choose."""

    action = "use"


class HydraConfigRefused(BaseException):
    """Carries an UnsafeHydraConfig's message, or the sentence that explains a mistaken
    override, out of Hydra to the command line.

    Hydra runs compositions inside handlers that catch every Exception (printing a traceback,
    or, while completing a shell word, trying the next candidate); a BaseException passes them,
    so a refusal always ends the command. The message is the only argument, so it pickles back
    from a launcher's worker process.
    """


class CheckedConfigLoader(ConfigLoaderImpl):
    """Hydra's config loader, refusing a search path entry or a composed `hydra` node that would
    run code (`check_search_path`, `check_hydra_node`), and a mistaken override in one sentence
    (gentool.overrides) while `explain_mistakes` is set."""

    # Off while Hydra completes a shell word: it composes the words typed so far and, when they
    # do not compose, offers no keys, where a refusal would print into the shell instead.
    explain_mistakes = True

    def __init__(self, config_search_path: Any) -> None:
        # --config-path becomes the "main" entry of the initial search path, which Hydra opens
        # (importing a pkg:// module) as soon as it looks for the primary config. --config-dir
        # is always made a file:// entry.
        for entry in config_search_path.get_path():
            if entry.provider == "main":
                _refusing(check_search_path, [entry.path], "--config-path", own=_OWN_CONFIGS)
        super().__init__(config_search_path=config_search_path)

    def _process_config_searchpath(self, config_name: Optional[str], parsed_overrides: Any,
                                   repo: Any) -> None:
        """Hydra extends the search path here by hydra.searchpath, given on the command line or
        by the primary config, and opens every new entry at once."""
        for override in parsed_overrides:
            if override.key_or_group == "hydra.searchpath":
                _refusing(check_search_path, override.value(), "hydra.searchpath")
        if config_name is not None:
            loaded = repo.load_config(config_path=config_name)
            if loaded is not None and OmegaConf.is_dict(loaded.config):
                _refusing(check_search_path, OmegaConf.select(loaded.config, "hydra.searchpath"),
                          "hydra.searchpath")
        super()._process_config_searchpath(config_name, parsed_overrides, repo)

    def load_configuration(self, config_name: Optional[str], overrides: list[str],
                           run_mode: RunMode, from_shell: bool = True,
                           validate_sweep_overrides: bool = True) -> DictConfig:
        composer = mistakes.Composer(
            compose=lambda others: ConfigLoaderImpl.load_configuration(
                self, config_name, others, run_mode, from_shell, False),
            group_options=lambda group: self.get_group_options(
                group, config_name=config_name,
                overrides=[o for o in overrides if o.startswith("hydra.searchpath=")]))
        if self.explain_mistakes:
            for check in (mistakes.repeated_key, mistakes.sweeper_params):
                sentence = check(list(overrides))
                if sentence is not None:
                    raise HydraConfigRefused(sentence)
        try:
            cfg = super().load_configuration(config_name, overrides, run_mode, from_shell,
                                             validate_sweep_overrides)
        except (ConfigCompositionException, OverrideParseException) as error:
            sentence = mistakes.explain(error, str(config_name), list(overrides), composer) \
                if self.explain_mistakes else None
            if sentence is None:
                raise
            raise HydraConfigRefused(sentence) from error
        _refusing(check_hydra_node, cfg)
        if self.explain_mistakes:
            sentence = mistakes.check_added_keys(cfg, str(config_name), list(overrides), composer)
            if sentence is not None:
                raise HydraConfigRefused(sentence)
        return cfg

    def _compose_config_from_defaults_list(self, *args: Any, **kwargs: Any) -> DictConfig:
        """The SLURM launcher's additional_parameters stay an open mapping once Hydra closes the
        config (struct mode) before applying overrides, so the documented
        `hydra.launcher.additional_parameters={qos: high}` and `...additional_parameters.qos=high`
        merge into it; `check_plugin` checks every key it ends up with."""
        cfg = super()._compose_config_from_defaults_list(*args, **kwargs)
        extra = OmegaConf.select(cfg, "hydra.launcher.additional_parameters")
        if OmegaConf.select(cfg, "hydra.launcher._target_") == SLURM and \
                isinstance(extra, DictConfig):
            OmegaConf.set_struct(extra, False)
        return cfg


@contextmanager
def checked_composition(explain_mistakes: bool = True) -> Iterator[None]:
    """Within this block, the Hydra app a command runs composes through CheckedConfigLoader,
    which explains mistaken overrides unless `explain_mistakes` is false (shell completion).

    Hydra creates its loader in Hydra.create_main_hydra2 from the name ConfigLoaderImpl of
    hydra._internal.hydra (hydra-core 1.3), which is rebound here and restored afterwards.
    """
    import hydra._internal.hydra as hydra_app

    previous = hydra_app.ConfigLoaderImpl, CheckedConfigLoader.explain_mistakes
    hydra_app.ConfigLoaderImpl = CheckedConfigLoader
    CheckedConfigLoader.explain_mistakes = explain_mistakes
    try:
        yield
    finally:
        hydra_app.ConfigLoaderImpl, CheckedConfigLoader.explain_mistakes = previous


def _refusing(check: Any, *args: Any, **kwargs: Any) -> None:
    try:
        check(*args, **kwargs)
    except UnsafeHydraConfig as error:
        raise HydraConfigRefused(str(error)) from error


# -- the search path -----------------------------------------------------------------------------

def check_search_path(entries: Any, key: str, own: Optional[str] = None) -> None:
    """Every entry must be a folder (file://, or a path without a scheme): Hydra imports the
    module a pkg:// or structured:// entry names, running whatever it does on import. `own` is a
    package that may be given as pkg:// (gentool's config package)."""
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, (list, tuple)) and not OmegaConf.is_list(entries):
        return   # Hydra refuses anything but a list of strings itself
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or "://" not in entry:
            continue
        scheme, _, path = entry.partition("://")
        if scheme == "file":
            continue
        if scheme == "pkg" and own is not None and path.replace("/", ".").strip(".") == own:
            continue
        where = key if key.startswith("--") else f"{key}[{i}]"
        raise UnsafeHydraConfig(where, entry, f"has Hydra import the module {path!r}",
                                f"give {key} a folder of configs (file://<folder>)")


# -- the hydra node ------------------------------------------------------------------------------

def check_hydra_node(cfg: DictConfig) -> None:
    """Refuse `cfg` if Hydra would run code it names while acting on its `hydra` node.

    The parts Hydra acts on are resolved first, as Hydra will resolve them, on a copy in which
    the values Hydra fills in only when a job starts (hydra.runtime.output_dir, hydra.job.num
    and id) stand in; a part that does not resolve there is refused rather than left unchecked.

    - hydra.callbacks: only CALLBACKS, without options;
    - hydra.hydra_logging, hydra.job_logging: `check_logging`;
    - hydra.launcher, hydra.sweeper: `check_plugin` against LAUNCHERS / SWEEPERS;
    - hydra.job.env_set: only ENV_NAMES, or a variable's current value (hydra.job.env_copy);
    - hydra.job.chdir: not true.
    """
    if "hydra" not in cfg:
        return
    resolved = _resolving_copy(cfg)
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    try:
        hydra_config.set_config(resolved)   # what `${hydra:...}` reads
        _check_resolved(resolved)
    finally:
        hydra_config.cfg = previous


def _check_resolved(cfg: DictConfig) -> None:
    callbacks = _resolved(cfg, "hydra.callbacks")
    for name, callback in (callbacks or {}).items():
        if isinstance(callback, dict) and list(callback) == ["_target_"] and \
                callback["_target_"] in CALLBACKS:
            continue
        shown = callback.get("_target_", callback) if isinstance(callback, dict) else callback
        raise UnsafeHydraConfig(f"hydra.callbacks.{name}", shown,
                                "is a Hydra callback that is not one of gentool's own, which "
                                "Hydra would build by name",
                                f"remove hydra.callbacks.{name} (gentool's own are "
                                f"{', '.join(CALLBACKS)}, without options)")
    for part in ("hydra_logging", "job_logging"):
        check_logging(_resolved(cfg, f"hydra.{part}"), f"hydra.{part}")
    check_plugin(_resolved(cfg, "hydra.launcher"), "hydra.launcher", LAUNCHERS,
                 "hydra/launcher=basic, parallel or slurm")
    check_plugin(_resolved(cfg, "hydra.sweeper"), "hydra.sweeper", SWEEPERS,
                 "hydra/sweeper=basic or optuna")
    for name, value in (_resolved(cfg, "hydra.job.env_set") or {}).items():
        if name not in ENV_NAMES and os.environ.get(str(name)) != value:
            raise UnsafeHydraConfig(
                f"hydra.job.env_set.{name}", value, "is an environment variable a config may "
                f"not set (only {', '.join(ENV_NAMES)})",
                "set it in the environment before starting gentool")
    if _resolved(cfg, "hydra.job.chdir") is True:
        raise UnsafeHydraConfig("hydra.job.chdir", True, "would start the job inside its run "
                                "directory, where processes it starts find modules first",
                                "leave it unset: gentool finds paths from where it started")


def _resolving_copy(cfg: DictConfig) -> DictConfig:
    resolved = copy.deepcopy(cfg)
    with read_write(resolved), open_dict(resolved):
        for key, value in {"runtime.output_dir": _OUTPUT_DIR, "job.num": 0,
                           "job.id": "0"}.items():
            parent, _, name = f"hydra.{key}".rpartition(".")
            node = OmegaConf.select(resolved, parent)
            if node is not None and (name not in node or OmegaConf.is_missing(node, name)):
                node[name] = value
    return resolved


def _resolved(cfg: DictConfig, key: str) -> Any:
    """`key` of `cfg` with its interpolations resolved, as plain containers."""
    try:
        node = OmegaConf.select(cfg, key, throw_on_missing=True)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    except Exception as error:   # what does not resolve here would be acted on unchecked
        node = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        shown = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise UnsafeHydraConfig(key, shown, f"does not resolve before Hydra uses it "
                                f"({lines[0]})", "give values that resolve when the config "
                                "is composed") from error


def check_logging(node: Any, key: str) -> None:
    """A config for logging.config.dictConfig that names nothing but HANDLER_CLASSES and
    FORMATTER_CLASSES: no `()` factory, no `.` attributes, no `ext://`/`cfg://` value but a
    handler's stream in STREAMS, no '{'-style format (its fields can walk Python objects), and
    file handlers write files ending in .log only (a log line could be shell code in ~/.bashrc).
    """
    if node is None:
        return
    allowed = (f"a logging config may only name the classes {', '.join(HANDLER_CLASSES)} and "
               f"{', '.join(FORMATTER_CLASSES)}")
    for path, name, value in _entries(node, key):
        if name == "()":
            raise UnsafeHydraConfig(path, value, "is a factory that logging.config would call",
                                    allowed)
        if name == ".":
            raise UnsafeHydraConfig(path, value, "sets attributes on what logging.config "
                                    "builds", "remove it")
        if isinstance(value, str) and _CONVERTED.match(value):
            if not (name == "stream" and value in STREAMS):
                raise UnsafeHydraConfig(path, value, "names an object logging.config would "
                                        "import or look up",
                                        f"a handler's stream may be {' or '.join(STREAMS)}")
    if not isinstance(node, dict):
        raise UnsafeHydraConfig(key, node, "is not a logging config (a mapping)",
                                "give a mapping as logging.config.dictConfig takes it")
    for part, classes in (("handlers", HANDLER_CLASSES), ("formatters", FORMATTER_CLASSES)):
        entries = node.get(part) or {}
        if not isinstance(entries, dict):
            raise UnsafeHydraConfig(f"{key}.{part}", entries, "is not a mapping of names to "
                                    "options", f"give {part} as such a mapping")
        for name, entry in entries.items():
            path = f"{key}.{part}.{name}"
            if not isinstance(entry, dict):
                raise UnsafeHydraConfig(path, entry, "is not a mapping of options",
                                        "give its options as a mapping")
            if part == "handlers" and entry.get("class") not in classes:
                raise UnsafeHydraConfig(f"{path}.class", entry.get("class"), "is not a handler "
                                        "class gentool lets logging build", allowed)
            if part == "formatters" and entry.get("class", classes[0]) not in classes:
                raise UnsafeHydraConfig(f"{path}.class", entry.get("class"), "is not a "
                                        "formatter class gentool lets logging build", allowed)
            if part == "formatters" and entry.get("style", "%") == "{":
                raise UnsafeHydraConfig(f"{path}.style", "{", "lets format fields walk Python "
                                        "objects", "use the '%' or '$' style")
            filename = entry.get("filename")
            if filename is not None and not (isinstance(filename, str)
                                             and filename.endswith(".log")):
                raise UnsafeHydraConfig(f"{path}.filename", filename, "is not a .log file",
                                        "give a file name ending in .log")


def check_plugin(node: Any, key: str, plugins: dict[str, str], choices: str) -> None:
    """hydra.launcher or hydra.sweeper: its `_target_` is one of `plugins`, its keys are options
    of that plugin's structured config, and it holds no `_target_` of its own (Hydra builds
    those first), except the Optuna sweeper's sampler and pruner, which must be optuna classes.
    Strings are single lines (the SLURM launcher writes its options into a shell script),
    the SLURM launcher's `setup` lines are refused (they are shell commands) and its
    additional_parameters are SBATCH_OPTIONS. A string that still holds `${` is refused: Hydra
    resolves a node again while building it.
    """
    if not isinstance(node, dict):
        raise UnsafeHydraConfig(key, node, "is not a plugin config (a mapping)",
                                f"choose one with {choices}")
    target = node.get("_target_")
    if target not in plugins:
        raise UnsafeHydraConfig(f"{key}._target_", target, "is not a plugin gentool uses",
                                f"choose one with {choices}")
    options = _plugin_options(plugins[target])
    if options is None:
        raise UnsafeHydraConfig(f"{key}._target_", target, "is a plugin that is not installed",
                                f"install it, or choose another with {choices}")
    for name in node:
        if name not in options:
            raise UnsafeHydraConfig(f"{key}.{name}", node[name], f"is not an option of "
                                    f"{target.rpartition('.')[2]}", f"remove {key}.{name}")
    for path, name, value in _entries(node, key):
        if name == "_target_" and path != f"{key}._target_":
            option = path[len(key) + 1:].split(".")[0]   # the plugin option it sits in
            if target == OPTUNA and option in OPTUNA_BUILDS:
                _check_optuna_class(value, path, *OPTUNA_BUILDS[option])
            else:
                raise UnsafeHydraConfig(path, value, "is a _target_ Hydra would build along "
                                        f"with {key}", f"remove {path.rpartition('.')[0]}")
        if isinstance(value, str) and "${" in value:
            raise UnsafeHydraConfig(path, value, "still holds an interpolation after "
                                    "resolving, which building would resolve again",
                                    "give the value itself")
        if any(isinstance(text, str) and ("\n" in text or "\r" in text) for text in (name, value)):
            raise UnsafeHydraConfig(path, value, "holds a line break", "give it on one line")
    if target == SLURM:
        if node.get("setup"):
            raise UnsafeHydraConfig(f"{key}.setup", node["setup"], "is shell commands every "
                                    "SLURM job would run", "prepare the environment before "
                                    "starting gentool, which sbatch passes on to the jobs")
        extra = node.get("additional_parameters") or {}
        if not isinstance(extra, dict):
            raise UnsafeHydraConfig(f"{key}.additional_parameters", extra, "is not a mapping of "
                                    "sbatch options to values", "give such a mapping")
        for name, value in extra.items():
            path = f"{key}.additional_parameters.{name}"
            if str(name).replace("_", "-") not in SBATCH_OPTIONS:
                match = closest(str(name).replace("_", "-"), SBATCH_OPTIONS)
                meant = f"write {key}.additional_parameters.{match.replace('-', '_')} if you " \
                    f"meant {match}, or " if match else ""
                raise UnsafeHydraConfig(path, value, "is not an sbatch option gentool passes "
                                        "on from a config", f"{meant}set it through sbatch's "
                                        "SBATCH_* environment variables instead")
            if isinstance(value, (dict, list)):
                raise UnsafeHydraConfig(path, value, "is not a single value",
                                        "give one value")
    if target == JOBLIB:
        pre_dispatch = node.get("pre_dispatch")
        if not (pre_dispatch is None or isinstance(pre_dispatch, int)
                or (isinstance(pre_dispatch, str) and _PRE_DISPATCH.match(pre_dispatch))):
            raise UnsafeHydraConfig(f"{key}.pre_dispatch", pre_dispatch, "is an expression "
                                    "joblib would evaluate", "give a number, 'n_jobs' or "
                                    "'<number>*n_jobs'")
    if target == OPTUNA and node.get("custom_search_space") is not None:
        raise UnsafeHydraConfig(f"{key}.custom_search_space", node["custom_search_space"],
                                "names a function the Optuna sweeper would call",
                                "leave it null and give the search space in "
                                "hydra.sweeper.params")


def _plugin_options(conf: str) -> Optional[set[str]]:
    module, _, name = conf.partition(":")
    try:
        schema = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return {field.name for field in dataclasses.fields(schema)}


def _check_optuna_class(target: Any, key: str, package: str, base: str) -> None:
    """`target` is `<package>.<Name>`, a subclass of `<package>.<base>` defined in `package`;
    nothing but `package` is imported."""
    parts = target.split(".") if isinstance(target, str) else []
    obj = None
    if (len(parts) == 3 and ".".join(parts[:2]) == package and parts[2].isidentifier()
            and not parts[2].startswith("_")):
        try:
            module = importlib.import_module(package)
        except ImportError:
            module = None
        obj = getattr(module, parts[2], None)
        parent = getattr(module, base, None)
        if not (inspect.isclass(obj) and inspect.isclass(parent) and issubclass(obj, parent)
                and obj is not parent and (obj.__module__ + ".").startswith(package + ".")):
            obj = None
    if obj is None:
        raise UnsafeHydraConfig(key, target, f"is not a class of {package} (a {base})",
                                f"name one as {package}.<Name>")


def _entries(node: Any, key: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, key or index, value) for every entry of `node`, depth first."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for name, value in items:
        path = f"{key}[{name}]" if isinstance(node, (list, tuple)) else f"{key}.{name}"
        yield path, name, value
        yield from _entries(value, path)
