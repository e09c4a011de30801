"""Overrides that Hydra cannot apply, or would apply to no effect, as one sentence each.

Hydra's own message for a mistaken override spans several lines, may end with its config search
path, and for an unknown key suggests adding it with `+`, after which the key is ignored (or
refused by the code it configures). gentool's config loader (gentool.hydra_guard) hands every
command line to `repeated_key`, which refuses a key given twice (Hydra takes the last), and to
`sweeper_params`, which refuses hydra.sweeper.params (Hydra cannot merge it from there), every
composition error to `explain`, which names the override, what is wrong with it and the options
at that place, with the closest match; and every composed config to `check_added_keys`, which
refuses a key added with `+` where a command schema (gentool.config) fixes the options, or
below `dataset` where gentool reads no such key for the chosen data set (config.DATASET_KEYS,
PAIR_DATASET_KEYS, PAIR_KEYS). Keys added to the free-form model, loss and optimizer nodes, to
the loader a data set's `source` names and to a pair's `transform` are options of the code they
configure, checked when it is built (gentool.options).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, MissingConfigException, \
    OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from gentool.config import DATASET_KEYS, PAIR_DATASET_KEYS, PAIR_KEYS
from gentool.options import _describe, _signature_of, closest, parameters_of, show

# The command whose options are the model and its training; the others read them from a
# checkpoint.
TRAIN = "train"
GRAMMAR = "https://hydra.cc/docs/1.2/advanced/override_grammar/basic"


@dataclass
class Composer:
    """What `explain` may ask of the config loader: `compose(overrides)`, the command's config
    composed with other overrides, and `group_options(group)`, the choices of a config group."""

    compose: Callable[[list[str]], DictConfig]
    group_options: Callable[[str], list[str]]


def shipped_composer(command: str = TRAIN) -> Composer:
    """A Composer of `command`'s config from gentool's own config tree alone (no search path
    a user added), for code that asks what a shipped config holds once Hydra composes it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    from gentool.config import setup

    setup()   # the command schemas the defaults lists name
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(
        "pkg://gentool.configs"))
    return Composer(
        compose=lambda others: loader.load_configuration(command, list(others), RunMode.RUN,
                                                         from_shell=False),
        group_options=loader.get_group_options)


def explain(error: Exception, command: str, overrides: list[str],
            composer: Composer) -> Optional[str]:
    """One sentence for a composition error of `command`'s config, or None for an error that
    is not one of the mistakes below (Hydra's own message then stands)."""
    if isinstance(error, OverrideParseException):
        reason = (str(error.message).strip().splitlines() or ["it does not parse"])[0]
        return (f"{error.override} is not an override Hydra can read ({reason}); write "
                f"key=value as its grammar describes ({GRAMMAR}).")
    if isinstance(error, MissingConfigException):
        return _missing_choice(error, _parsed(overrides))
    if not isinstance(error, ConfigCompositionException):
        return None
    text, cause, parsed = str(error), error.__cause__, _parsed(overrides)
    found = re.match(r"Could not override '([^']+)'\.", text)
    if found:
        override = _override_of(parsed, found.group(1))
        context = _context(composer, overrides, override)
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
            return _unknown_key(str(cause.full_key), override, command, context, composer,
                                cause.parent_node)
        if "No match in the defaults list" in text:
            return _unused_group(found.group(1), override, command, context, composer)
        return None
    found = re.match(r"Error merging override ~([^\s=]+)|Could not delete from config\. "
                     r"'([^']+)' does not exist", text)
    if found:
        key = found.group(1) or found.group(2)
        removal = next((o for o in parsed if o.key_or_group == key and o.is_delete()), None)
        context = _context(composer, overrides, removal)
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(context, parent) if context is not None and parent else context
        if not (isinstance(node, DictConfig) and name in node):
            return _unknown_key(key, None, command, context, composer, None)
        # A key of a schema (or one that is null, which Hydra takes for absent): runs read it.
        current = node[name]
        example = "" if OmegaConf.is_config(current) else f", e.g. {key}={show(current)}"
        return (f"{key} cannot be removed, as gentool {command} reads it; give it a value "
                f"instead{example}.")
    if isinstance(cause, ValidationError) and text.startswith("Error merging override"):
        typed = text[len("Error merging override"):].strip().split("=")[0].lstrip("+")
        return _wrong_type(cause, typed)
    found = re.match(r"Multiple values for ([^\s.]+)\.", text)
    if found:
        return _several_choices(found.group(1), overrides, parsed, composer)
    found = re.match(r"Could not append to config\. An item is already at '([^']+)'", text)
    if found:
        override = _override_of(parsed, found.group(1))
        fix = f"; set it with {_line(override).lstrip('+')}" if override else ""
        return f"{found.group(1)} is already an option, so it takes no leading +{fix}."
    found = re.match(r"(?:Ambiguous value for argument|Sweep parameters) '([^']+)'", text)
    if found:
        key, _, value = found.group(1).partition("=")
        one = _one_value(key.lstrip("+~"), value, composer, overrides, parsed)
        return (f"{found.group(1)} gives several values, which only a sweep takes; add -m to "
                f"run one job per value{one}.")
    found = re.match(r"In '([^']+)': \w+ raised while composing config", text)
    if found and command != TRAIN and found.group(1).split("/")[0] in _train_groups():
        # A train config appended (+model=vae) brings keys of its own and of the configs it
        # chooses (loss=...) that this command's schema does not have.
        groups = _train_groups()
        added = next((o.key_or_group for o in parsed if o.key_or_group in groups), None)
        return _checkpoint_sentence(f"{added or found.group(1).split('/')[0]}=", command,
                                    composer)
    return None


def repeated_key(overrides: list[str]) -> Optional[str]:
    """One sentence for a key given twice on the command line (model=vae ... model=ae), of
    which Hydra would silently take the last; None if every key is given once. With + or ~ it
    is the same key; a sweep's values are one override (model=vae,ae). The same override given
    twice (seed=1 seed=1) is no doubt about the value, and hydra.mode is left out: Hydra appends
    hydra.mode=MULTIRUN itself for -m."""
    first: dict[str, Override] = {}
    for override in _parsed(overrides):
        key = override.key_or_group
        if key == "hydra.mode":
            continue
        if override.package is not None:
            key += f"@{override.package}"
        if key in first and _line(first[key]) != _line(override):
            return (f"{key}= is given twice ({_line(first[key])}, then {_line(override)}); "
                    "keep one.")
        first[key] = override
    return None


SWEEPER_PARAMS = "hydra.sweeper.params"


def sweeper_params(overrides: list[str]) -> Optional[str]:
    """One sentence for hydra.sweeper.params (or a key below it) set on the command line; None
    without one. Hydra's sweepers declare the node as null, and hydra-core 1.3 with OmegaConf
    2.3 fails to merge a value into a null node from an override (with or without +), so only
    a config file can set it; the same values given as overrides of their keys (seed=0,1) are
    the sweep it describes."""
    for override in _parsed(overrides):
        key = override.key_or_group
        if override.is_delete() or not (key == SWEEPER_PARAMS or
                                         key.startswith(SWEEPER_PARAMS + ".")):
            continue
        return (f"{_line(override)} sets Hydra's sweep parameters, which Hydra cannot take "
                "from the command line; give the sweep's values as overrides of their keys "
                f"instead ({_sweep_values(override)}).")
    return None


def _sweep_values(override: Override) -> str:
    """The overrides that sweep as `override` of hydra.sweeper.params describes: seed=0,1."""
    value = override.value()
    if override.key_or_group == SWEEPER_PARAMS:
        if isinstance(value, dict) and value:
            return " ".join(f"{key}={item}" for key, item in value.items())
        return "seed=0,1"
    name = override.key_or_group[len(SWEEPER_PARAMS) + 1:]
    if not isinstance(value, str):   # a sweep (0,1) or a list: as it was written
        value = _line(override).partition("=")[2]
    return f"{name}={value}"


def merged_overrides(*overrides: str) -> list[str]:
    """The overrides with each key once, as Hydra would apply them: a later override of a key
    (with or without + or ~) takes the place of the earlier one, so that a base command and the
    overrides that change it form a command line that `repeated_key` accepts."""
    kept: dict[str, str] = {}
    for override in overrides:
        kept[key_of(override)] = override
    return list(kept.values())


def key_of(override: str) -> str:
    """The key a command-line override sets, adds or removes: `model.data_shape` for
    `model.data_shape=[3]`, `+model.data_shape=[3]` or `~model.data_shape`."""
    return override.split("=", 1)[0].lstrip("+~")


def check_added_keys(cfg: DictConfig, command: str, overrides: list[str],
                     composer: Composer) -> Optional[str]:
    """One sentence for a key added with + or ++ where a command schema fixes the options
    (`+foo=1`, `+trainer.max_stpes=5`) or to a data set's config where gentool reads no such
    key for the chosen data set (`+dataset.foo=1`, `dataset=digits +dataset.input_channels=1`),
    which would be ignored; None if there is none."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices") or {}
    for override in _parsed(overrides):
        if not (override.is_add() or override.is_force_add()) or override.is_hydra_override() \
                or override.package is not None or override.key_or_group in choices:
            continue   # a config group appended (+experiment=...) is no key
        outside = _outside_schema(cfg, override.key_or_group) or \
            _unread_dataset_key(cfg, override.key_or_group)
        if outside is None:
            continue
        context = _context(composer, overrides, override)
        if override.is_force_add() and _holds(context, outside):
            continue   # ++ sets a key that the chosen config already holds
        parent = outside.rpartition(".")[0]
        return _unknown_key(outside, override, command, context, composer,
                            OmegaConf.select(cfg, parent) if parent else cfg)
    return None


# -- unknown keys and groups ---------------------------------------------------------------------

def _unknown_key(missing: str, override: Optional[Override], command: str,
                 context: Optional[DictConfig], composer: Composer, node_at: Any) -> str:
    """`missing` (a dotted key) is not in the config. `context` is the config composed without
    the override (None if that failed, when `node_at`, the node the key was looked up in, gives
    the options)."""
    parent, _, name = missing.rpartition(".")
    if not parent:
        if command != TRAIN and name in _train_options():
            given = override.key_or_group if override is not None else missing
            return _checkpoint_sentence(given, command, composer)
        options = _top_options(context if context is not None else node_at)
        return f"{missing} is not an option of gentool {command}{_did_you_mean(name, options)}" \
               f" (its options: {', '.join(options)})."
    node = OmegaConf.select(context, parent) if context is not None else node_at
    options = [str(k) for k in node if not str(k).startswith("_")] \
        if isinstance(node, DictConfig) else []
    # Hydra's own groups are named by path (hydra/launcher) and placed at hydra.launcher.
    group = parent.replace(".", "/") if parent.startswith("hydra.") else parent
    choices = OmegaConf.select(context, "hydra.runtime.choices") if context is not None else None
    choice = choices.get(group) if choices and "/" not in parent else None
    where = f"{group}={choice}" if choice else _choice_placed_at(choices, parent) or parent
    parameters = parameters_of(node.get("_target_")) if isinstance(node, DictConfig) else None
    takes = parameters is not None and name in parameters and \
        parameters[name].default is not parameters[name].empty
    if takes and override is not None and not (override.is_add() or override.is_force_add()):
        return (f"{missing} is not set in the config of {where}, but the code it configures "
                f"takes it; add it with +{_line(override)}.")
    match = closest(name, options + _known_keys(parent, parameters))
    others = choices_with(group, parent, name, choice, composer) if choice else []
    return unknown_option(missing, where, options, f"{parent}.{match}" if match else None,
                          others)


def unknown_option(key: str, where: str, options: list[str], meant: Optional[str],
                   others: list[str]) -> str:
    """The sentence for `key`, which is not an option of `where` (model=vae, loss=bernoulli):
    the key it was likely meant to be, the options there are, and the other choices of the
    group that have the key (others), or else, where there are no options, to leave it out."""
    text = f"{key} is not an option of {where}"
    text += f"; did you mean {meant}?" if meant else ""
    text += f" (its options: {', '.join(options)})" if options else ", which takes none"
    if others:
        text += f"; {' and '.join(others)} {'has' if len(others) == 1 else 'have'} {key}"
    elif not options:
        text += "; leave it out"
    return text + "."


def _choice_placed_at(choices: Any, place: str) -> Optional[str]:
    """`group=choice` for the config group whose choice sits at `place` below the top level
    (dataset/pair at dataset.pair, dataset@dataset.source at dataset.source), else None."""
    for group, choice in (choices or {}).items():
        name, _, package = str(group).partition("@")
        if choice is not None and (package or name.replace("/", ".")) == place:
            return f"{group}={choice}"
    return None


def _unused_group(group: str, override: Optional[Override], command: str,
                  context: Optional[DictConfig], composer: Composer) -> Optional[str]:
    """`group=choice` for a config group that the command's config does not use."""
    if command != TRAIN and group.split("/")[0] in _train_groups():
        return _checkpoint_sentence(f"{group}=", command, composer)
    if context is None:
        return None
    used = sorted(k for k in (OmegaConf.select(context, "hydra.runtime.choices") or {})
                  if not k.startswith("hydra/"))
    return (f"{_line(override) if override else group} picks from the config group {group}, "
            f"which no config chosen here uses (the groups in use: {', '.join(used)}).")


def _several_choices(group: str, overrides: list[str], parsed: list[Override],
                     composer: Composer) -> Optional[str]:
    """A config group given a second choice: appended with + where the config already chooses
    one, or several configs chosen at once (model=[vae,ae]) that each choose their own."""
    for override in parsed:
        if override.key_or_group == group and override.is_add():
            context = _context(composer, overrides, override)
            current = OmegaConf.select(context, f"hydra.runtime.choices.{group}") \
                if context is not None else None
            state = f"is already chosen ({group}={current})" if current else \
                f"already has its place in the config ({group}=null)"
            return f"{group} {state}; drop the +: {_line(override).lstrip('+')}."
    for override in parsed:
        value = override.value() if not override.is_sweep_override() else None
        if isinstance(value, list) and composer.group_options(override.key_or_group):
            name = override.key_or_group
            return (f"{_line(override)} chooses several configs of {name}, but a run takes one; "
                    f"choose one ({name}={value[0]}), or add -m and write "
                    f"{name}={','.join(map(str, value))} to run one job per choice.")
    return None


def _checkpoint_sentence(given: str, command: str, composer: Composer) -> str:
    try:
        own = f" (the options of gentool {command}: " \
              f"{', '.join(_top_options(composer.compose([])))})"
    except Exception:   # the sentence stands without the list
        own = ""
    return (f"gentool {command} takes the model and its settings from the checkpoint; {given} "
            f"is an option of gentool train{own}.")


def _missing_choice(error: MissingConfigException, parsed: list[Override]) -> Optional[str]:
    """`group=choice` names no config of the group: its choices and the closest one."""
    if not error.missing_cfg_file or not error.options:
        return None
    group, _, choice = str(error.missing_cfg_file).rpartition("/")
    # The override typed, under whatever package it places the config (dataset@dataset.source=).
    typed = next((o for o in parsed if o.key_or_group == group and not o.is_delete() and
                  o.get_value_element_as_str() == choice), None)
    key = group if typed is None or typed.package is None else f"{group}@{typed.package}"
    source = re.match(r"In '([^']+)'", str(error))
    asked = f"{key}={choice}" if typed is not None or source is None else \
        f"{key}={choice} (asked for by {source.group(1)})"
    match = closest(choice, error.options)
    hint = f"; did you mean {key}={match}?" if match else ""
    return (f"{asked} is not a choice of {group}{hint} (its choices: "
            f"{', '.join(error.options)}).")


def choices_with(group: str, place: str, name: str, current: str,
                  composer: Composer) -> list[str]:
    """The other choices of a config group (placed at `place`) whose config has the key `name`."""
    found = []
    for option in composer.group_options(group):
        if option == current:
            continue
        try:
            node = OmegaConf.select(composer.compose([f"{group}={option}"]), place)
        except Exception:   # a choice that does not compose alone is not suggested
            continue
        if isinstance(node, DictConfig) and name in node:
            found.append(f"{group}={option}")
    return found


def _outside_schema(cfg: DictConfig, key: str) -> Optional[str]:
    """The first part of a dotted key that is not a field of the schema (a config.py dataclass)
    that types its place, or None where no schema types it (free-form nodes)."""
    node: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        if schema is None or not dataclasses.is_dataclass(schema):
            return None
        if part not in {item.name for item in dataclasses.fields(schema)}:
            return ".".join(parts[:depth + 1])
        # Reading a value left as ??? raises and reading an interpolation resolves it; neither
        # is a schema node to walk into.
        if OmegaConf.is_missing(node, part) or OmegaConf.is_interpolation(node, part):
            return None
        node = node[part]
    return None


def _known_keys(parent: str, parameters: Optional[dict]) -> list[str]:
    """What the code behind a node takes besides the keys the node holds: the parameters of its
    `_target_`, or the keys gentool reads of a data set's config that some configs leave out
    and any may add (those of image pairs are held by the pair configs themselves)."""
    if parameters is not None:
        return list(parameters)
    if parent == "dataset":
        return [key for key in DATASET_KEYS if key not in PAIR_DATASET_KEYS]
    return list(PAIR_KEYS) if parent == "dataset.pair" else []


def _unread_dataset_key(cfg: DictConfig, key: str) -> Optional[str]:
    """The first part of a key added at or below `dataset` that gentool does not read for the
    chosen data set, else None. Adding a key of image pairs is never read (config.
    PAIR_DATASET_KEYS); where the configs hold one, `++` on it is let through by the caller. A
    derived data set (derived_pairs) reads, of the data set it derives from, only what its own
    config refers to, so nothing added there is read but options of that data set's loader."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] != "dataset":
        return None
    name = parts[1]
    if name not in DATASET_KEYS:
        return ".".join(parts[:2])
    derived = _is_derived(OmegaConf.select(cfg, "dataset"))
    if name == "input_channels" or (name == "pair" and (len(parts) == 2 or not derived)):
        return ".".join(parts[:2])
    if name == "pair" and parts[2] not in PAIR_KEYS:
        return ".".join(parts[:3])
    if name == "source" and derived and len(parts) > 2 and parts[2] != "source":
        return ".".join(parts[:3])
    return None   # a key a data set may add, or an option of a loader or of a pair's transform


def _is_derived(dataset: Any) -> bool:
    """Whether a data set's config derives its data from another data set's: its `source` is
    that data set's config, not a loader with a `_target_` (gentool.data reads `pair` then)."""
    source = dataset.get("source") if isinstance(dataset, DictConfig) else None
    return isinstance(source, DictConfig) and "_target_" not in source


def _holds(cfg: Optional[DictConfig], key: str) -> bool:
    """Whether the config holds the dotted key (with any value, null included)."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if cfg is not None and parent else cfg
    return isinstance(node, DictConfig) and name in node


def _top_options(cfg: Any) -> list[str]:
    """A command's top-level options: its keys and the config groups it chooses from."""
    if not isinstance(cfg, DictConfig):
        return []
    keys = [str(k) for k in cfg if str(k) != "hydra" and not str(k).startswith("_")]
    groups = OmegaConf.select(cfg, "hydra.runtime.choices") or {}
    return keys + [g for g in groups if "/" not in g and g not in keys]


def _train_groups() -> set[str]:
    """The config groups of gentool's config tree (all of them train's): model, dataset, ..."""
    root = resources.files("gentool.configs")
    return {entry.name for entry in root.iterdir() if entry.is_dir() and
            not entry.name.startswith(("_", ".")) and entry.name != "hydra"}


def _train_options() -> set[str]:
    from gentool.config import TrainConfig

    return _train_groups() | {item.name for item in dataclasses.fields(TrainConfig)}


# -- wrong types ---------------------------------------------------------------------------------

def _wrong_type(error: ValidationError, typed: str) -> str:
    """A value of the wrong type for a key a schema types (seed=abc, metrics=likelihood), or a
    key typed below one that holds a single value (seed.x=1)."""
    key, value, parent = str(error.full_key), error.value, error.parent_node
    annotation = None
    schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if schema is not None and dataclasses.is_dataclass(schema):
        annotation = typing.get_type_hints(schema, include_extras=True).get(str(error.key))
    try:
        current = parent[str(error.key)]
    except Exception:   # a missing or unresolvable value gives no example
        current = None
    example = "" if current is None or OmegaConf.is_config(current) else \
        f", e.g. {key}={show(current)}"
    if typed.startswith(f"{key}."):
        what = _describe(annotation) if annotation is not None else "a single value"
        return (f"{typed} is not an option: {key} is {what}, which has no options; set "
                f"{key} itself{example}.")
    if annotation is None:
        reason = (str(error.msg).strip().splitlines() or ["of the wrong type"])[0]
        return f"{key} cannot be {show(value)}: {reason}."
    if dataclasses.is_dataclass(annotation):   # a node of options (trainer.schedule)
        fields = [item.name for item in dataclasses.fields(annotation)]
        first = OmegaConf.select(parent, f"{error.key}.{fields[0]}") \
            if isinstance(current, DictConfig) else None
        shown = first if isinstance(first, str) else show(first)   # a word needs no quotes
        sample = f"; e.g. {key}.{fields[0]}={shown}" if first is not None else ""
        return (f"{key} is {show(value)} but holds options ({', '.join(fields)}), each set "
                f"by its own key{sample}.")
    if isinstance(value, str) and _takes_list(annotation):
        example = f", e.g. {key}=[{value}]"
    example = f"; {example[2:]}" if example else ""
    return f"{key} is {show(value)} but must be {_describe(annotation)}{example}."


def _one_value(key: str, value: str, composer: Composer, overrides: list[str],
               parsed: list[Override]) -> str:
    """How to give `key` the comma-separated `value` as one value, where its type allows: a list
    for a key that takes one, quotes for a string. A config group takes one choice per job."""
    if value.lstrip().startswith(("[", "{")) or key in _train_groups() or "/" in key or \
            composer.group_options(key):
        return ""
    annotation = _annotation_of(_context(composer, overrides, _override_of(parsed, key)), key)
    if annotation is None:
        return ""
    if _takes_list(annotation):
        return f", or write {key}=[{value}] for a list"
    if str in _members(annotation):
        return f", or quote it for one string: {key}='{value}'"
    return ""


def _annotation_of(cfg: Optional[DictConfig], key: str) -> Any:
    """What the schema (a config.py dataclass) or the configured code's signature says `key`
    takes, or None where neither says."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if cfg is not None and parent else cfg
    if not isinstance(node, DictConfig):
        return None
    schema = OmegaConf.get_type(node)
    if schema is not None and dataclasses.is_dataclass(schema):
        return typing.get_type_hints(schema, include_extras=True).get(name)
    return _signature_of(node.get("_target_"))[0].get(name)


def _members(annotation: Any) -> tuple:
    """The types a (possibly Optional, Annotated or union) annotation admits."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(m for a in typing.get_args(annotation) for m in _members(a))
    return (annotation,)


def _takes_list(annotation: Any) -> bool:
    return any((typing.get_origin(m) or m) in (list, tuple, collections.abc.Sequence)
               for m in _members(annotation))


# -- parsing -------------------------------------------------------------------------------------

def _parsed(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides=list(overrides))
    except Exception:   # explained by the error Hydra raises for it
        return []


def _override_of(parsed: list[Override], key: str) -> Optional[Override]:
    return next((o for o in parsed if o.key_or_group == key), None)


def _line(override: Optional[Override]) -> str:
    return str(override.input_line) if override is not None else ""


def _context(composer: Composer, overrides: list[str],
             left_out: Optional[Override]) -> Optional[DictConfig]:
    """The config composed without the override in question, or None if that fails too."""
    rest = [o for o in overrides if left_out is None or o != left_out.input_line]
    try:
        return composer.compose(rest)
    except Exception:   # another mistake: the node the key was looked up in stands in
        return None


def _did_you_mean(name: str, options: list[str]) -> str:
    match = closest(name, options)
    return f"; did you mean {match}?" if match else ""
