"""Typed options: what each config value must be, declared once as a type annotation.

The constructors a config builds (methods, networks, losses, data loaders) and the command
schemas in config.py annotate their options; ranges ride along as `Annotated[int, Range(...)]`
(the aliases below). `check_options` compares a config node with the annotations of the targets
it names before anything is built, and `check_schema` compares a command's config with its
schema, so a wrong value ends as one sentence naming the key (`model.latent_dim`) and what it
must be, never as an error from inside torch. Annotations this module does not understand
(tensors, callables, classes) are not checked.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import sys
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union

from gentool.errors import GentoolError

_NOT_CHECKED = object()   # what `_fits` returns for an annotation it cannot judge


@dataclass(frozen=True)
class Range:
    """Bounds of a number option: `min <= value <= max`, or strict where `*_open` is set."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def holds(self, value: float) -> bool:
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        if self.max is not None and (value >= self.max if self.max_open else value > self.max):
            return False
        return True

    def describe(self) -> str:
        low = None if self.min is None else f"{'>' if self.min_open else '>='} {self.min:g}"
        high = None if self.max is None else f"{'<' if self.max_open else '<='} {self.max:g}"
        return " and ".join(part for part in (low, high) if part)


PositiveInt = Annotated[int, Range(min=1)]
NonNegativeInt = Annotated[int, Range(min=0)]
PositiveFloat = Annotated[float, Range(min=0, min_open=True)]
NonNegativeFloat = Annotated[float, Range(min=0)]
UnitFloat = Annotated[float, Range(min=0, max=1)]
OpenUnitFloat = Annotated[float, Range(min=0, max=1, min_open=True, max_open=True)]
# A share of draws to drop: dropping all of them leaves nothing to sample.
RejectionRate = Annotated[float, Range(min=0, max=1, max_open=True)]


def check_options(node: Any, path: str = "") -> None:
    """Check every option of every gentool target in a plain (resolved) config node against the
    annotations of the constructor or function it names; nested nodes are checked too."""
    if isinstance(node, list):
        for value in node:
            check_options(value, path)
        return
    if not isinstance(node, dict):
        return
    hints, defaults = _signature_of(node.get("_target_"))
    check_known(node, path)
    for key, value in node.items():
        if str(key).startswith("_"):
            continue
        where = f"{path}.{key}" if path else str(key)
        if key in hints and not _is_missing(value):
            check_value(value, hints[key], where, defaults.get(key, inspect.Parameter.empty))
        check_options(value, where)


def parameters_of(target: Any) -> dict[str, inspect.Parameter] | None:
    """The parameters a config node's `_target_` takes by keyword, by name; None when they are
    not known: a target that config.resolve_target refuses, or one taking **kwargs."""
    if not isinstance(target, str):
        return None
    from gentool.config import resolve_target   # config.py imports this module

    try:   # resolved the safe way: a target that would be refused imports nothing here
        obj = resolve_target(target)
        parameters = inspect.signature(obj).parameters
    except Exception:  # an unknown or refused target is reported when it is built
        return None
    nn = sys.modules.get("torch.nn")   # imported by then if obj is a module class
    if nn is not None and inspect.isclass(obj) and issubclass(obj, nn.Module) and \
            obj.__init__ is nn.Module.__init__:
        return {}   # torch's Module.__init__(*args, **kwargs) refuses any argument
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name: p for name, p in parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def closest(name: str, options: Any) -> str | None:
    """The option `name` was most likely meant to be (difflib's closest match), if any."""
    found = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return found[0] if found else None


def choice_fix(key: str, value: Any, options: Any, usual: str) -> str:
    """How to fix `key=value` when the value is none of `options`: the option it was most likely
    meant to be, else `usual` (a fix that always works, such as the default)."""
    match = closest(value, options)
    return f"did you mean {key}={match}?" if match else usual


def not_one_of(key: str, value: Any, options: Any, usual: str) -> GentoolError:
    """The one sentence for `key=value` when the value must be one of a few words: the options,
    and the closest of them (else `usual`, a fix that always works, such as the default)."""
    return GentoolError(f"{key} is {show(value)} but must be one of "
                        f"{', '.join(str(o) for o in options)}; "
                        f"{choice_fix(key, value, options, usual)}")


def check_known(node: dict, path: str) -> None:
    """Refuse a key that the node's target does not take: the constructor would fail with a
    TypeError from inside Hydra, and a key added by mistake (`+loss.variance=fixed` on a
    Bernoulli loss) is named with the options the target has."""
    target = node.get("_target_")
    parameters = parameters_of(target)
    if parameters is None:
        return
    for key in node:
        if str(key).startswith("_") or key in parameters:
            continue
        where = f"{path}.{key}" if path else str(key)
        # What a config can set: the keys it holds and the parameters with defaults (the others,
        # such as a method's `loss`, are passed by the code that builds it).
        options = [name for name, p in parameters.items()
                   if name in node or p.default is not inspect.Parameter.empty]
        match = closest(key, options)
        from gentool.overrides import unknown_option   # overrides.py imports this module

        raise GentoolError(unknown_option(
            where, _chosen(path) or str(target), options,
            f"{path + '.' if path else ''}{match}" if match else None,
            _choices_having(path, str(key))))


def _choices_having(group: str, key: str) -> list[str]:
    """The other shipped choices of a config group (loss=gaussian) whose config has `key`, for
    a key added with + to the running command's choice ([] outside a Hydra run, or for a node
    that is no config group)."""
    from hydra.core.hydra_config import HydraConfig

    from gentool.overrides import choices_with, shipped_composer   # it imports this module

    if not group or "." in group or not HydraConfig.initialized():
        return []
    choice = HydraConfig.get().runtime.choices.get(group)
    return choices_with(group, group, key, choice, shipped_composer()) if choice else []


def _chosen(group: str) -> str | None:
    """`group=choice` as the running command chose it (loss=bernoulli), or None outside a
    Hydra run or for a node that is no config group."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get(group)
    return f"{group}={choice}" if choice else None


def check_schema(cfg: Any, path: str = "") -> None:
    """Check the values of a command's config (a DictConfig built on a config.py dataclass)
    against the ranges its schema declares; nested schema nodes are checked too."""
    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.get_type(cfg)
    if not (isinstance(cfg, DictConfig) and dataclasses.is_dataclass(schema)):
        return
    hints = typing.get_type_hints(schema, include_extras=True)
    for item in dataclasses.fields(schema):
        if item.name not in cfg or OmegaConf.is_missing(cfg, item.name):
            continue
        where = f"{path}.{item.name}" if path else item.name
        value = cfg[item.name]
        if isinstance(value, DictConfig):
            check_schema(value, where)
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        default = item.default if item.default not in (dataclasses.MISSING, "???") else \
            inspect.Parameter.empty   # "???": OmegaConf's MISSING, the value is in the YAML
        check_value(value, hints[item.name], where, default)


def check_value(value: Any, annotation: Any, where: str,
                example: Any = inspect.Parameter.empty) -> None:
    """Refuse one value that does not fit `annotation`, in the sentence `check_options` writes:
    `<where> is <value> but must be <what>; e.g. <where>=<example>.` (no example when `example`
    is empty or None)."""
    mapping = _typed_dict_in(annotation)
    if mapping is not None and isinstance(value, dict):   # name the key inside it that is wrong
        fields = typing.get_type_hints(mapping, include_extras=True)
        for key, item in value.items():
            if key not in fields:
                raise GentoolError(f"{where}.{key} is not an option of {where}; its options are "
                                   f"{', '.join(fields)}.")
            check_value(item, fields[key], f"{where}.{key}")
        return
    if _fits(value, annotation) is False:
        shown = "" if example is inspect.Parameter.empty or example is None else \
            f"; e.g. {where}={show(example)}"
        raise GentoolError(f"{where} is {show(value)} but must be {_describe(annotation)}"
                           f"{shown}.")


def _signature_of(target: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The annotations and defaults of a gentool target's parameters ({} for anything else)."""
    if not isinstance(target, str) or not target.startswith("gentool."):
        return {}, {}
    from gentool.config import resolve_target   # config.py imports this module

    try:   # resolved the safe way: a target that would be refused imports nothing here
        obj = resolve_target(target)
        signature = inspect.signature(obj)
    except Exception:  # an unknown or refused target is reported when it is built
        return {}, {}
    annotated = obj.__init__ if inspect.isclass(obj) else obj
    try:
        hints = typing.get_type_hints(annotated, include_extras=True)
    except Exception:  # a name only imported for type checkers: judge the others one by one
        hints = {}
        for name, parameter in signature.parameters.items():
            try:
                hints[name] = typing.get_type_hints(
                    types.SimpleNamespace(__annotations__={name: parameter.annotation}),
                    globalns=getattr(annotated, "__globals__", {}), include_extras=True)[name]
            except Exception:
                pass
    return hints, {name: p.default for name, p in signature.parameters.items()}


def _fits(value: Any, annotation: Any):
    """True or False when the annotation is understood, _NOT_CHECKED when it is not."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return _NOT_CHECKED
    if origin is Annotated:
        fits = _fits(value, args[0])
        if fits is not True:
            return fits
        bounds = [a for a in args[1:] if isinstance(a, Range)]
        return all(bound.holds(value) for bound in bounds)
    if origin in (Union, types.UnionType):
        verdicts = [_fits(value, member) for member in args]
        if True in verdicts:
            return True
        return _NOT_CHECKED if _NOT_CHECKED in verdicts else False
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if _is_typed_dict(annotation):
        if not isinstance(value, dict):
            return False
        fields = typing.get_type_hints(annotation, include_extras=True)
        if any(key not in fields for key in value):
            return False
        verdicts = [_fits(item, fields[key]) for key, item in value.items()]
        return False if False in verdicts else True
    container = origin or annotation
    if container in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            return False
        element = args[0] if args else Any
        verdicts = [_fits(item, element) for item in value]
        return False if False in verdicts else True
    if container in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return False
        verdicts = [_fits(item, args[1]) for item in value.values()] if len(args) == 2 else []
        return False if False in verdicts else True
    return _NOT_CHECKED


def _describe(annotation: Any) -> str:
    """What a value of this annotation is, in words: 'an integer >= 1', 'null or a number'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        bounds = " and ".join(a.describe() for a in args[1:] if isinstance(a, Range))
        return f"{_describe(args[0])} {bounds}".strip()
    if origin in (Union, types.UnionType):
        members = [m for m in args if m is not type(None)]
        text = " or ".join(_describe(m) for m in members)
        return f"null or {text}" if len(members) < len(args) else text
    if _is_typed_dict(annotation):
        fields = typing.get_type_hints(annotation, include_extras=True)
        return "a mapping {" + ", ".join(f"{k}: {_describe(v)}" for k, v in fields.items()) + "}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    if annotation in names:
        return names[annotation]
    container = origin or annotation
    if container in (list, tuple, collections.abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_plural(_describe(args[0]))}" if args else "a list"
    if container in (dict, collections.abc.Mapping):
        return "a mapping {key: value, ...}"
    return getattr(annotation, "__name__", str(annotation))


def _plural(description: str) -> str:
    for singular, plural in (("an integer", "integers"), ("a number", "numbers"),
                             ("a string", "strings")):
        if description.startswith(singular):
            return plural + description[len(singular):]
    return description


def _typed_dict_in(annotation: Any) -> Any:
    """The TypedDict an annotation names, alone or as a member of a union (None if none)."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (
        Union, types.UnionType) else (annotation,)
    return next((m for m in members if _is_typed_dict(m)), None)


def _is_typed_dict(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, dict) and \
        hasattr(annotation, "__total__")


def _is_missing(value: Any) -> bool:
    return value == "???"


def show(value: Any) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{show(v)}" for k, v in value.items()) + "}"
    return str(value)
