"""Training objectives, one file each. See `base.Method` for the protocol the engine relies on."""

from __future__ import annotations

from importlib import resources
from typing import Any

from omegaconf import OmegaConf

from gentool.config import check_targets, instantiate, resolve_target
from gentool.errors import GentoolError
from gentool.methods.base import PLAYERS, check_optimizer_options
from gentool.options import check_options

# The kind of data a shape holds; networks declare the kinds they take in `DATA_KINDS`.
KIND_OF_RANK = {3: "images", 1: "points"}


def build_method(cfg):
    """The method a (resolved) run config describes: `model` with its `loss` object.

    Model configs read the data shape and range from `${dataset.*}`, so a checkpoint's stored,
    resolved config rebuilds the same networks without loading any data.
    """
    check_data_kind(cfg)
    loss = instantiate(cfg.loss)
    check_loss_fits(cfg, loss)
    return instantiate(cfg.model, loss=loss)


def check_method(cfg) -> None:
    """Refuse what build_method would refuse from the config alone (option types, data kind),
    building nothing: a run stops here before it loads its data."""
    check_targets(OmegaConf.to_container(cfg.model, resolve=True), "model")
    check_targets(OmegaConf.to_container(cfg.loss, resolve=True), "loss")
    check_options(OmegaConf.to_container(cfg.model, resolve=True), "model")
    check_options(OmegaConf.to_container(cfg.loss, resolve=True), "loss")
    check_data_kind(cfg)
    check_loss_fits(cfg, resolve_target(cfg.loss._target_, "loss._target_"))
    model = OmegaConf.to_container(cfg.model, resolve=True)
    check_optimizer_options(OmegaConf.to_container(cfg.optimizer, resolve=True),
                            {name: model[f"{name}_optimizer"] for name in PLAYERS
                             if f"{name}_optimizer" in model})


def check_loss_fits(cfg, loss: Any) -> None:
    """Refuse a loss (an object, or the class a loss config names) that the model's method does
    not declare in its `accepts_losses`, with the losses that fit in the message."""
    method = resolve_target(cfg.model._target_, "model._target_")
    accepted = getattr(method, "accepts_losses", None)
    if not accepted:
        return
    fits = issubclass(loss, accepted) if isinstance(loss, type) else isinstance(loss, accepted)
    if not fits:
        got = getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
        raise GentoolError(f"loss={got} does not fit model={cfg.model.name}, which needs "
                           f"{method.accepted_losses_hint}.")
    check_loss_values(cfg, loss)


def check_loss_values(cfg, loss: Any) -> None:
    """Refuse a loss that does not model the data set's values (dataset.values; images are
    "unit", the toy points "real"): a multinomial on real values, a Bernoulli on counts."""
    values = str(cfg.dataset.get("values") or
                 ("unit" if len(cfg.dataset.shape) == 3 else "real"))
    models = getattr(loss, "models_values", None)
    if models is None or values in models:
        return
    got = getattr(loss, "name", type(loss).__name__)
    raise GentoolError(f"loss={got} models {' or '.join(models)} values but "
                       f"dataset={cfg.dataset.name} holds {values} values "
                       f"(dataset.values={values}); {loss.values_hint}.")


def check_data_kind(cfg) -> None:
    """Refuse a model whose networks do not take the data set's kind of data (a DCGAN on 2-D
    points), naming the shipped models that do."""
    shape = list(cfg.dataset.shape)
    kind = KIND_OF_RANK.get(len(shape))
    takes = kinds_taken(OmegaConf.to_container(cfg.model, resolve=False))
    if kind is None or takes is None or kind in takes:
        return
    what = f"{shape[0]}-D points" if kind == "points" else "images"
    fitting = [name for name, node in shipped_models().items()
               if kind in (kinds_taken(node) or (kind,))]
    fix = f"use model={' or model='.join(fitting)} for {kind}" if fitting else \
        f"no shipped model takes {kind}"
    raise GentoolError(f"model={cfg.model.name} needs {' or '.join(sorted(takes))}, and "
                       f"dataset={cfg.dataset.name} holds {what} (shape {shape}); {fix}, or "
                       "pick an image data set.")


def kinds_taken(node: Any) -> set[str] | None:
    """The data kinds every gentool network of a config node takes (None: none declares any)."""
    taken: set[str] | None = None
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack += item
        if not isinstance(item, dict):
            continue
        stack += list(item.values())
        target = item.get("_target_")
        if not (isinstance(target, str) and target.startswith("gentool.")):
            continue
        try:
            declared = getattr(resolve_target(target), "DATA_KINDS", None)
        except Exception:   # an unknown or refused target is reported when it is built
            continue
        if declared is not None:
            taken = set(declared) if taken is None else taken & set(declared)
    return taken


def shipped_models() -> dict[str, dict]:
    """The model configs that ship with gentool (configs/model/*.yaml), by name, each merged
    with the configs of its own group that its defaults list names (cgan: dcgan + cgan)."""
    folder = resources.files("gentool.configs") / "model"
    files = {entry.name[:-5]: entry for entry in folder.iterdir() if entry.name.endswith(".yaml")}

    def load(name: str, seen: tuple[str, ...] = ()) -> dict:
        node = OmegaConf.to_container(OmegaConf.create(files[name].read_text()), resolve=False)
        merged: dict = {}
        for entry in node.pop("defaults", []) or []:
            if isinstance(entry, str) and entry in files and entry not in seen:
                merged.update(load(entry, (*seen, name)))
        merged.update(node)
        return merged

    return {name: load(name) for name in sorted(files)}
