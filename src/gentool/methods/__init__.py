"""Training objectives, one file each. See `base.Method` for the protocol the engine relies on."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from gentool.config import check_targets, instantiate, resolve_target
from gentool.errors import GentoolError
from gentool.methods.base import PLAYERS, check_optimizer_options
from gentool.options import check_options
from gentool.overrides import key_of, shipped_composer

# The kind of data a shape holds; networks declare the kinds they take in `DATA_KINDS`. A data
# set of image pairs (pix2pix's) holds a third kind, "image pairs" (see data_kind).
KIND_OF_RANK = {3: "images", 1: "points"}
# The shipped data set configs that read files holding data of any shape of a kind, given
# dataset.shape and where the files are.
ANY_SHAPE_DATASETS = {"points": "dataset=vectors dataset.source.path=<file.npy>",
                      "images": "dataset=folder dataset.source.path=<folder>"}


def data_kind(dataset) -> str | None:
    """What a data set holds: "image pairs" when it declares `input_channels` (the channels of a
    pair's input side; only the pair data sets have it), else the kind of its shape's rank
    ("images", "points"; None for any other rank)."""
    if dataset.get("input_channels") is not None:
        return "image pairs"
    return KIND_OF_RANK.get(len(dataset.shape))


def build_method(cfg):
    """The method a (resolved) run config describes: `model` with its `loss` object.

    Model configs read the data shape and range from `${dataset.*}`, so a checkpoint's stored,
    resolved config rebuilds the same networks without loading any data.
    """
    check_data_shape(cfg)
    check_data_kind(cfg)
    check_labels(cfg)
    loss = instantiate(cfg.loss)
    check_loss_fits(cfg, loss)
    if hasattr(loss, "eight_bit_offset"):
        loss.eight_bit_offset = eight_bit_offset(cfg.dataset)
    return instantiate(cfg.model, loss=loss)


def check_method(cfg, choices: Mapping[str, str] | None = None,
                 overrides: Sequence[str] = ()) -> None:
    """Refuse what build_method would refuse from the config alone (option types, data shape
    and kind), building nothing: a run stops here before it loads its data. `choices` (the
    config groups chosen: {"experiment": "gan_ring"}) and `overrides` (the command line's
    settings: ["model.data_shape=[3]"]) let a refusal name what the user typed."""
    check_targets(OmegaConf.to_container(cfg.model, resolve=True), "model")
    check_targets(OmegaConf.to_container(cfg.loss, resolve=True), "loss")
    check_targets(OmegaConf.to_container(cfg.optimizer, resolve=True), "optimizer")
    check_options(OmegaConf.to_container(cfg.model, resolve=True), "model")
    check_options(OmegaConf.to_container(cfg.loss, resolve=True), "loss")
    check_data_shape(cfg, choices, overrides)
    check_data_kind(cfg)
    check_labels(cfg)
    check_loss_fits(cfg, resolve_target(cfg.loss._target_, "loss._target_"))
    model = OmegaConf.to_container(cfg.model, resolve=True)
    check_optimizer_options(OmegaConf.to_container(cfg.optimizer, resolve=True),
                            {name: model[f"{name}_optimizer"] for name in PLAYERS
                             if f"{name}_optimizer" in model})


def check_loss_fits(cfg, loss: Any) -> None:
    """Refuse a loss (an object, or the class a loss config names) that the model's method does
    not declare in its `accepts_losses`, or that does not model the data set's values (a
    multinomial on real values, a Bernoulli on counts), with the losses that fit in the message."""
    refusal = loss_refusal(cfg, loss)
    if refusal is None:
        return
    fix = use_losses(cfg)
    hint = getattr(loss, "values_hint", "")
    if hint and "does not fit" not in refusal:
        fix = f"{fix}, or {hint}" if fix else hint
    raise GentoolError(f"{refusal}; {fix}.")


def loss_refusal(cfg, loss: Any) -> str | None:
    """Why the model's method does not take `loss` on the data set, as the start of a sentence
    ("loss=mse does not fit model=vae, ..."), or None if it does."""
    method = resolve_target(cfg.model._target_, "model._target_")
    got = getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
    accepted = getattr(method, "accepts_losses", None)
    if accepted:
        fits = issubclass(loss, accepted) if isinstance(loss, type) else \
            isinstance(loss, accepted)
        if not fits:
            return (f"loss={got} does not fit model={cfg.model.name}, which needs "
                    f"{method.accepted_losses_hint}")
        values = data_values(cfg.dataset)
        models = getattr(loss, "models_values", None)
        if models is not None and values not in models:
            return (f"loss={got} models {' or '.join(models)} values but "
                    f"dataset={cfg.dataset.name} holds {values} values "
                    f"(dataset.values={values})")
    return None


def data_values(dataset) -> str:
    """What a data set's values are (dataset.values; images are "unit", the toy points "real")."""
    return str(dataset.get("values") or ("unit" if len(dataset.shape) == 3 else "real"))


def eight_bit_offset(dataset) -> float:
    """Bits per dimension that turn a density of the data into the usual 8-bit convention: for
    images (stored as 8-bit pixels) scaled to [lo, hi], log2(256 / (hi - lo)) (8 on [0, 1]).
    The density is scored at the pixel values, not dequantised, so the figure follows the
    convention rather than bounding the discrete pixels. Anything else (real-valued vectors, 2-D
    points, binarised images) is not 8-bit data, so its bits/dim are those of the continuous
    density: 0."""
    binarized = str(dataset.get("binarize", "none")) != "none"
    if len(dataset.shape) != 3 or data_values(dataset) != "unit" or binarized:
        return 0.0
    lo, hi = dataset.range
    return math.log2(256 / (hi - lo))


def use_losses(cfg) -> str:
    """"use loss=a or loss=b": the shipped losses the model's method takes on the data set."""
    names = fitting_losses(cfg)
    return f"use {_either('loss', names)}" if names else "no shipped loss fits it"


def fitting_losses(cfg) -> list[str]:
    """The shipped loss configs (configs/loss/*.yaml) that `loss_refusal` lets the model's method
    take on the data set, and whose loss takes the data set's range (a Bernoulli needs [0, 1])."""
    names = []
    for name, target in shipped_losses().items():
        try:
            loss = resolve_target(target, f"loss={name}")
        except GentoolError:
            continue
        if loss_refusal(cfg, loss) is not None:
            continue
        try:
            check_range = getattr(loss(), "check_data_range", None)
            if check_range is not None:
                check_range(list(cfg.dataset.range))
        except GentoolError:
            continue
        except Exception:   # a loss that needs arguments to build: its range is not judged
            pass
        names.append(name)
    return names


def shipped_losses() -> dict[str, str]:
    """The loss configs that ship with gentool (configs/loss/*.yaml): name -> _target_."""
    return dict(_shipped_losses())


@functools.lru_cache(maxsize=None)
def _shipped_losses() -> tuple[tuple[str, str], ...]:
    composer = shipped_composer()
    return tuple((name, str(composer.compose([f"loss={name}"]).loss.get("_target_")))
                 for name in sorted(composer.group_options("loss")))


def check_data_shape(cfg, choices: Mapping[str, str] | None = None,
                     overrides: Sequence[str] = ()) -> None:
    """Refuse a model whose networks are built for data of another shape than the data set's.

    Networks are sized from `model.data_shape`. The shipped model configs set it to
    `${dataset.shape}`, so they fit any data set of a kind their networks take (check_data_kind);
    a preset tuned for one kind of data fixes it instead (the toy-set GANs of experiment/gan_toy*
    take 2-D points: [2]), so that its networks meet no other data. The refusal names the shipped
    data sets of the networks' shape and the shipped models of the same method that take the
    data set's kind. The refusal blames what set the networks' shape: an override of
    model.data_shape among `overrides`, else the experiment among `choices`, else (a stored
    config) model.data_shape itself.
    """
    built_for = cfg.model.get("data_shape")
    shape = list(cfg.dataset.shape)
    if built_for is None or list(built_for) == shape:
        return
    built_for = list(built_for)
    experiment = None if _overridden(overrides, "model.data_shape") else \
        (choices or {}).get("experiment")
    if experiment is not None:
        subject = (f"experiment={experiment} builds its networks for {_data_of(built_for)} "
                   f"(model.data_shape={built_for})")
    else:
        subject = (f"model.data_shape={built_for} builds the networks for "
                   f"{_data_of(built_for)}")
    fits = shipped_datasets_of_shape(
        built_for, kinds_taken(OmegaConf.to_container(cfg.model, resolve=False)))
    fix = f"use {_either('dataset', fits)}" if fits else f"use {_any_dataset_of(built_for)}"
    kind = data_kind(cfg.dataset)
    if experiment is None:
        fix += ", or leave model.data_shape out so that it follows dataset.shape"
    elif kind is not None:
        method = resolve_target(cfg.model._target_, "model._target_")
        models = _models_for(cfg.dataset, kind, method)
        if models is not None:
            fix += f", or drop experiment={experiment} and {models}"
    raise GentoolError(f"{subject} but dataset={cfg.dataset.name} holds "
                       f"{_data_of(shape, kind)} (shape {shape}); {fix}.")


def _data_of(shape: list[int], kind: str | None = None) -> str:
    """"2-D points", "1x28x28 images", "2x28x28 image pairs": what data of a shape is, of
    `kind` (data_kind) or else the kind of the shape's rank."""
    kind = kind or KIND_OF_RANK.get(len(shape))
    if kind == "points":
        return f"{shape[0]}-D points"
    size = "x".join(str(n) for n in shape)
    return f"{size} {kind}" if kind else f"data of shape {shape}"


def _any_dataset_of(shape: list[int]) -> str:
    """"dataset=vectors dataset.source.path=<file.npy> dataset.shape=[3]": a shipped data set
    config set to read data of `shape`, or "a data set of shape [..]" when none reads that kind."""
    typed = f"[{','.join(str(n) for n in shape)}]"
    reads = ANY_SHAPE_DATASETS.get(KIND_OF_RANK.get(len(shape)))
    return f"{reads} dataset.shape={typed}" if reads else f"a data set of shape {typed}"


def _overridden(overrides: Sequence[str], key: str) -> bool:
    """Whether one of the command line's settings (`key=value`, `+key=value`, `~key`) sets
    `key`."""
    return any(key_of(override) == key for override in overrides)


def check_data_kind(cfg) -> None:
    """Refuse a model whose networks do not take the data set's kind of data (a DCGAN on 2-D
    points, an MLP GAN on image pairs), naming the shipped models that do, each with the losses
    it takes there."""
    shape = list(cfg.dataset.shape)
    kind = data_kind(cfg.dataset)
    takes = kinds_taken(OmegaConf.to_container(cfg.model, resolve=False))
    if kind is None or takes is None or kind in takes:
        return
    what = _data_of(shape, kind)
    needs = " or ".join(sorted(takes))
    models = _models_for(cfg.dataset, kind) or f"no shipped model takes {kind}"
    raise GentoolError(f"model={cfg.model.name} needs {needs}, and "
                       f"dataset={cfg.dataset.name} holds {what} (shape {shape}); "
                       f"{models}, or pick a data set of {needs}.")


def check_labels(cfg) -> None:
    """Refuse a class-conditional model on a data set without labels, from the config alone:
    a run stops here before it loads its data."""
    refusal = labels_refusal(cfg.model, cfg.dataset)
    if refusal is not None:
        raise GentoolError(f"{refusal}; use a labelled data set, or model.conditional=false.")


def labels_refusal(model, dataset) -> str | None:
    """Why the model (a config node or its dict) cannot be trained on the data set's labels, as
    the start of a sentence, or None if it can: a class-conditional model needs
    dataset.num_classes."""
    if model.get("conditional") is not True or dataset.get("num_classes"):
        return None
    return (f"model={model.get('name')} is class-conditional but dataset={dataset.get('name')} "
            f"has no labels (dataset.num_classes is null)")


def _models_for(dataset, kind: str, method: Any = None) -> str | None:
    """"use model=a or model=b for points (model=c with loss=x)": the shipped models whose
    networks take `kind` and whose method takes some shipped loss on `dataset`, as
    check_data_kind and check_loss_fits decide; those that need another loss than their own
    default are named with the losses that fit. With `method` (a class), only the models of that
    method. None when no shipped model fits."""
    data = OmegaConf.to_container(dataset, resolve=True)
    as_is, with_loss = [], {}
    for name, (node, default_loss) in shipped_model_configs().items():
        if kind not in (kinds_taken(node) or (kind,)) or "_target_" not in node:
            continue
        if method is not None and resolve_target(node["_target_"]) is not method:
            continue
        if labels_refusal(node, dataset) is not None:
            continue
        probe = OmegaConf.create({"model": {"_target_": node["_target_"], "name": name},
                                  "dataset": data})
        losses = fitting_losses(probe)
        if default_loss in losses:
            as_is.append(name)
        elif losses:
            with_loss.setdefault(_either("loss", losses), []).append(name)
    if not as_is and not with_loss:
        return None
    others = "; ".join(f"{_either('model', names)} with {losses}"
                       for losses, names in with_loss.items())
    if not as_is:
        return f"use {others} for {kind}"
    return f"use {_either('model', as_is)} for {kind}" + (f" ({others})" if others else "")


def _either(key: str, names: list[str]) -> str:
    """model=a, model=b or model=c"""
    shown = [f"{key}={name}" for name in names]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


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


def shipped_model_configs() -> dict[str, tuple[dict, str | None]]:
    """The model configs that ship with gentool (configs/model/*.yaml), by name, as Hydra
    composes them (cgan: dcgan + cgan; the shared `_parts`), with the loss that choosing the
    model picks (None if it picks none)."""
    return copy.deepcopy(_shipped_model_configs())


@functools.lru_cache(maxsize=None)
def _shipped_model_configs() -> dict[str, tuple[dict, str | None]]:
    composer = shipped_composer()
    found = {}
    for name in sorted(composer.group_options("model")):
        cfg = composer.compose([f"model={name}"])
        found[name] = (OmegaConf.to_container(cfg.model, resolve=False),
                       cfg.hydra.runtime.choices.get("loss"))
    return found


def shipped_datasets_of_shape(shape: list[int], kinds: set[str] | None = None) -> list[str]:
    """The data set configs that ship with gentool (configs/dataset/*.yaml) holding data of
    `shape`, and of one of `kinds` (data_kind; None: any kind); those whose shape is left to the
    user (vectors) are not counted."""
    return [name for name, held, kind in _shipped_dataset_shapes()
            if list(held) == list(shape) and (kinds is None or kind in kinds)]


@functools.lru_cache(maxsize=None)
def _shipped_dataset_shapes() -> tuple[tuple[str, tuple[int, ...], str | None], ...]:
    composer = shipped_composer()
    found = []
    for name in sorted(composer.group_options("dataset")):
        dataset = composer.compose([f"dataset={name}"]).dataset
        if not OmegaConf.is_missing(dataset, "shape"):
            found.append((name, tuple(dataset.shape), data_kind(dataset)))
    return tuple(found)
