"""`gentool sample`: pictures and raw samples from a trained method's checkpoint.

The method is rebuilt from the config stored in the checkpoint (gentool.trained); modes pick
what to draw, each needing capabilities of the method (gentool.capabilities), and formats pick
how to write it.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from gentool.capabilities import (Decodes, Encodes, Reconstructs, Samples, Translates,
                                  conditional_classes)
from gentool.data import build_data, take
from gentool.data.batching import to_float
from gentool.data.folder import EXTENSIONS, ImageFiles
from gentool.engine import visuals
from gentool.engine.checkpoint import CHECKPOINT_SUFFIXES, checkpoints_folder_holding
from gentool.engine.files import atomic_write, unwritable_folder
from gentool.engine.latent_dims import choose_dims
from gentool.engine.run_log import start_run_log
from gentool.errors import GentoolError
from gentool.options import check_schema, not_one_of, show
from gentool.rejection import BURN_IN, check_rate, reject_lowest, rejection_rate
from gentool.trained import start_from_checkpoint

log = logging.getLogger("gentool")

FORMATS = ("grid", "npy", "folder")
# What each format writes, and what out= names for it; format=null takes it from out=.
WRITES = {"grid": "one PNG", "npy": "a NumPy array", "folder": "a folder of PNGs"}
NAMED = {"grid": "a .png file", "npy": "a .npy file", "folder": "a folder"}
FORMAT_OF_SUFFIX = {".png": "grid", ".npy": "npy"}
# Test examples that dims=auto measures the latent dimensions' activity on.
AUTO_DIMS_EXAMPLES = 1000
# What out=null writes for each format= (format=null: the grid).
DEFAULT_OUT = {"grid": "samples.png", "npy": "samples.npy", "folder": "samples/"}


def run_sample(cfg: DictConfig) -> Path:
    checked = {}   # the output path and format, which the check of the options settles
    # The check runs after start_from_checkpoint has refused values left as ???, so out= and
    # format= are read only once they are known to be given.
    trained = start_from_checkpoint(
        cfg, "sample", check=lambda checkpoint: checked.update(_check_options(cfg, checkpoint)))
    method, train_cfg, device = trained.method, trained.train_cfg, trained.device
    out, fmt = checked["out"], checked["format"]
    _check_vectors(train_cfg, cfg, fmt)
    with torch.no_grad():
        images, picture = MODES[cfg.mode](method, train_cfg, cfg, device)
    start_run_log(log_path(out, fmt))
    # Vectors have no picture (only format=npy); images get theirs enlarged by `scale`.
    picture = None if picture is None else visuals.upscale(picture, cfg.scale)
    out = write(images, picture, train_cfg.dataset.range, fmt, out)
    log.info("Wrote %s (%s, mode=%s) to %s", counted(images), fmt, cfg.mode, out)
    return out


def counted(images: torch.Tensor) -> str:
    """How many of what were drawn: "1 image", "64 images"; 2-D points and vector rows (the
    [N, D] arrays of toy and vector data sets) by their own name."""
    count = images.shape[0]
    if images.dim() == 2:
        what = "point" if images.shape[1] == 2 else "row"
    else:
        what = "image"
    return f"{count} {what}" if count == 1 else f"{count} {what}s"


def output_format(fmt: str | None, out: str) -> str:
    """format= as given, else what out= names: a .png file (grid), a .npy file (npy) or a folder
    (a path ending in /, or one that exists). A format that out= contradicts is refused, so a
    PNG never lands in samples.npy nor an array in samples.png."""
    path = Path(out).expanduser()
    suffix = path.suffix.lower()
    if out.endswith(("/", os.sep)) or path.is_dir():
        named, what = "folder", NAMED["folder"]
    else:
        named, what = FORMAT_OF_SUFFIX.get(suffix), f"a {suffix} file"
    if fmt is None:
        if named is None:
            raise GentoolError(f"out={out} names no format gentool sample writes; give a .png "
                               "file (format=grid), a .npy file (format=npy) or a folder ending "
                               "in / (format=folder).")
        return named
    if fmt not in FORMATS:
        raise not_one_of("format", fmt, FORMATS,
                         "pick one, or leave format= out to write what out= names.")
    # A file of another kind: its suffix says so (a folder's name may hold any other dot).
    clash = named not in (None, fmt) or (fmt != "folder" and suffix and named is None)
    if clash:
        also, instead = (f" (format={named})", ", or leave format= out to write what out= "
                         "names") if named else ("", "")
        raise GentoolError(f"format={fmt} writes {WRITES[fmt]} but out={out} names {what}{also}; "
                           f"give out= {NAMED[fmt]}{instead}.")
    return fmt


def _check_options(cfg: DictConfig, checkpoint: Path) -> dict:
    """Refuse options that cannot work, before the model is loaded; the path and format to
    write, as {"out": ..., "format": ...}. out=null becomes the default file of the format."""
    if cfg.out is None:   # the default output is of the format asked for
        cfg.out = DEFAULT_OUT.get(cfg.format, DEFAULT_OUT["grid"])
    out = Path(cfg.out).expanduser()
    if cfg.mode not in MODES:
        raise not_one_of("mode", cfg.mode, sorted(MODES), "e.g. mode=sample.")
    check_schema(cfg)   # the ranges SampleConfig declares (n >= 1, steps >= 1, ...)
    if cfg.rejection is not None:
        check_rate(cfg.rejection, "rejection")
        if cfg.rejection > 0 and cfg.mode != "sample":
            raise GentoolError(f"rejection={cfg.rejection} filters the draws of mode=sample, not "
                               f"mode={cfg.mode}; use mode=sample or drop rejection=.")
    visuals.check_scale(cfg.scale)
    _check_dims(cfg.dims)
    labels = OmegaConf.to_container(cfg.labels) if cfg.labels is not None else None
    if labels is not None and not (labels and all(
            isinstance(v, int) and not isinstance(v, bool) for v in labels)):
        raise GentoolError(f"labels={show(labels)} must be a non-empty list of class numbers "
                           "(integers); e.g. labels=[3,3,7].")
    if labels is not None and cfg.mode != "sample":
        raise GentoolError(f"labels={show(labels)} picks the classes of mode=sample, not "
                           f"mode={cfg.mode}; use mode=sample or drop labels=.")
    # before the format, which a .pt file has none of
    _refuse_checkpoint_as_out(out, cfg, checkpoint)
    fmt = output_format(cfg.format, str(cfg.out))
    # Checked before the model is loaded and the log opened beside the output, so an output
    # folder that cannot be written is one sentence, not a warning and then an error.
    problem = unwritable_folder(out if fmt == "folder" else out.parent)
    if problem is not None:
        raise GentoolError(f"cannot write out={cfg.out}: {problem}; write elsewhere with "
                           "out=<path>.")
    _refuse_checkpoints_folder(out if fmt == "folder" else out.parent, cfg)
    if fmt == "folder":
        _refuse_filled_folder(out, cfg.out)
    return {"out": out, "format": fmt}


def _check_dims(dims) -> None:
    if dims == "auto":
        return
    dims = OmegaConf.to_container(dims) if OmegaConf.is_config(dims) else dims
    if not (isinstance(dims, list) and len(dims) == 2 and all(
            isinstance(d, int) and not isinstance(d, bool) for d in dims)):
        raise GentoolError(f"dims={show(dims)} must be auto (the two most active latent "
                           "dimensions) or two latent dimensions, e.g. dims=[0,1].")


def _check_vectors(train_cfg, cfg: DictConfig, fmt: str) -> None:
    """Vectors of more than 2 dimensions have no picture: their samples and reconstructions are
    written as arrays."""
    shape = list(train_cfg.dataset.shape)
    if len(shape) == 1 and shape[0] != 2 and (fmt != "npy" or
                                              cfg.mode not in ("sample", "reconstruct")):
        raise GentoolError(f"dataset={train_cfg.dataset.name} holds {shape[0]}-D vectors, "
                           "which have no picture; use format=npy with mode=sample or "
                           "mode=reconstruct (gentool compare draws their codes).")


def _refuse_checkpoint_as_out(out: Path, cfg: DictConfig, checkpoint: Path) -> None:
    """`out=` may replace an earlier output, never a checkpoint: neither the one read (the file
    `checkpoint=` resolves to) nor any other `.pt` file."""
    if _same_file(out, checkpoint):
        raise GentoolError(f"out={cfg.out} is the checkpoint that sample reads; choose another "
                           "out= (e.g. out=samples.png).")
    if out.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise GentoolError(f"out={cfg.out} names a {out.suffix} file, and gentool sample never "
                           "writes over checkpoints; choose another out= (e.g. out=samples.png).")


def _refuse_checkpoints_folder(folder: Path, cfg: DictConfig) -> None:
    """Nothing is written into a run's checkpoints folder (or below it): it holds the run's
    checkpoints, which resume= and `checkpoint=<run>` read."""
    checkpoints = checkpoints_folder_holding(folder)
    if checkpoints is not None:
        raise GentoolError(f"out={cfg.out} is inside {checkpoints}, the checkpoints folder of a "
                           "train run; choose another out= (e.g. out=samples/).")


def _refuse_filled_folder(out: Path, given: str) -> None:
    """A folder output goes into a new or empty folder: its images then never mix with files
    already there, and gentool deletes nothing it cannot prove it wrote (a folder of numbered
    PNGs may as well be a data set)."""
    out = out.expanduser()
    if out.is_dir():
        held = sorted(out.iterdir())
        if held:
            raise GentoolError(f"out={given} already holds files (e.g. {held[0].name}), and a "
                               "folder output goes into a new or empty folder so that its images "
                               "never mix with others; choose another out= or empty that folder.")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def log_path(out: Path, fmt: str) -> Path:
    """sample's log, beside its output: samples.png -> samples.log, folder samples/ ->
    samples.log (outside the folder, which holds only the images)."""
    if fmt == "folder":
        folder = out.expanduser().resolve()   # out=. names the working folder
        return folder.parent / f"{folder.name}.log"
    path = out.with_suffix(".log")
    return path if path != out else out.parent / f"{out.name}.log"


def _can(method, mode: str) -> bool:
    return all(isinstance(method, capability) for capability in NEEDS[mode]) and (
        mode != "classes" or conditional_classes(method) is not None)


def _require(method, mode: str, model: str) -> None:
    """Refuse a mode the model lacks a capability for, naming the modes it can do."""
    missing = [VERBS[capability] for capability in NEEDS[mode]
               if not isinstance(method, capability)]
    if missing:
        able = sorted(m for m in NEEDS if _can(method, m))
        raise GentoolError(f"mode={mode} needs a model that can {' and '.join(missing)}, and "
                           f"model={model} cannot; use mode={' or mode='.join(able)}.")


def _test_split(train_cfg, cfg, device):
    data = build_data(train_cfg.dataset, cfg.data_dir, device, batch_size=256, seed=cfg.seed,
                      drop_last=False)   # only the test split is read: any train size loads
    return data.test


def _test_examples(train_cfg, cfg, device, n: int):
    """The first n test examples: a Batch, or a PairBatch for a translation data set."""
    return take(_test_split(train_cfg, cfg, device), n)


# The modes drawn from test examples: how many each row (or image) of `n` takes, in words.
TEST_EXAMPLES = {"reconstruct": (1, "one per image"), "interpolate": (2, "two per row"),
                 "translate": (1, "one per pair")}


def _test_rows(method, train_cfg, cfg, device):
    """The test examples that `n` rows of cfg.mode take, refused before any is drawn when the
    test split holds fewer: a smaller picture than asked for would be written silently."""
    split = _test_split(train_cfg, cfg, device)
    _check_rows(method, cfg.mode, cfg.n, split.num_examples, train_cfg.dataset.name)
    return take(split, TEST_EXAMPLES[cfg.mode][0] * cfg.n)


def _check_rows(method, mode: str, n: int, available: int, dataset: str) -> None:
    per_row, words = TEST_EXAMPLES[mode]
    if available >= per_row * n:
        return
    if available < per_row:   # not one row: another mode the model can do, if any
        able = sorted(m for m in NEEDS if m != mode and _can(method, m)
                      and TEST_EXAMPLES.get(m, (0,))[0] <= available)
        fix = f"use mode={' or mode='.join(able)}" if able else "train on one with more"
        raise GentoolError(f"mode={mode} draws on test examples ({words}), and dataset={dataset} "
                           f"has {available} in its test split; {fix}.")
    raise GentoolError(f"mode={mode} n={n} needs {per_row * n} test examples ({words}), and "
                       f"dataset={dataset} has {available} in its test split; use "
                       f"n={available // per_row} or fewer.")


def _test_images(train_cfg, cfg, device, n: int) -> torch.Tensor:
    return _test_examples(train_cfg, cfg, device, n)[0]


def mode_sample(method, train_cfg, cfg, device):
    """`n` samples, or one per entry of `labels` for a class-conditional model."""
    _require(method, "sample", train_cfg.model.name)
    labels = list(cfg.labels) if cfg.labels is not None else None
    if labels is not None and conditional_classes(method) is None:
        raise GentoolError(f"labels= only applies to class-conditional models, and "
                           f"model={train_cfg.model.name} is not one; drop labels=.")
    count = len(labels) if labels is not None else cfg.n
    rate = rejection_rate(method, cfg.rejection)
    if rate > 0:
        per_class = " per class" if conditional_classes(method) is not None else ""
        log.info("Dropping the %.0f%% of draws the discriminator scores lowest; a burn-in of "
                 "%d draws%s sets the threshold first", 100 * rate, BURN_IN, per_class)
        images = reject_lowest(method, count, rate, labels, cfg.temperature,
                               progress=_log_burn_in)
    else:
        images = method.sample(count, labels=labels, temperature=cfg.temperature)
    return images, _picture(images, train_cfg, cfg, device)


def _log_burn_in(scored: int, total: int) -> None:
    log.info("Rejection burn-in: %d/%d draws scored", scored, total)


def mode_classes(method, train_cfg, cfg, device):
    """One row per class of a class-conditional model, `nrow` samples each (default 8)."""
    _require(method, "classes", train_cfg.model.name)
    if conditional_classes(method) is None:
        raise GentoolError(f"mode=classes needs a class-conditional model (model=cgan), and "
                           f"model={train_cfg.model.name} is not one; use mode=sample.")
    per_class = cfg.nrow or 8
    images = visuals.class_rows(method, per_class, cfg.temperature)
    return images, visuals.grid(images, train_cfg.dataset.range, per_class)


def _picture(images, train_cfg, cfg, device):
    """A grid of images; for 2-D points, a scatter of the samples over the test data."""
    if images.dim() == 2 and images.shape[1] != 2:   # vectors: written as arrays only
        return None
    if images.dim() == 2:
        data_points = _test_images(train_cfg, cfg, device, 2500)
        return visuals.points_image(data_points, images, train_cfg.dataset.range)
    return visuals.grid(images, train_cfg.dataset.range, cfg.nrow)


def mode_reconstruct(method, train_cfg, cfg, device):
    _require(method, "reconstruct", train_cfg.model.name)
    inputs = _test_rows(method, train_cfg, cfg, device)[0]
    outputs = method.reconstruct(inputs)
    if inputs.dim() == 2:   # vectors: written as arrays only
        return outputs, None
    return outputs, visuals.pairs_grid(inputs, outputs, train_cfg.dataset.range, cfg.nrow or 8)


def mode_interpolate(method, train_cfg, cfg, device):
    """`n` rows, each from one test image to the next through the latent space: test images 2i
    and 2i + 1 for row i, so n is at most half the test split."""
    _require(method, "interpolate", train_cfg.model.name)
    images = _test_rows(method, train_cfg, cfg, device)[0]
    rows = visuals.interpolate(method, images[0::2], images[1::2], cfg.steps)
    return rows.flatten(0, 1), visuals.grid(rows.flatten(0, 1), train_cfg.dataset.range,
                                            cfg.steps + 2)


def mode_traverse(method, train_cfg, cfg, device):
    """A steps x steps grid over two latent dimensions (`dims`), the others at zero; dims=auto
    picks the two with the largest mean KL on test data (gentool.engine.latent_dims)."""
    _require(method, "traverse", train_cfg.model.name)
    if method.latent_dim < 2:
        raise GentoolError(f"mode=traverse varies two latent dimensions, and model="
                           f"{train_cfg.model.name} has latent_dim={method.latent_dim}; use "
                           "mode=sample.")
    if cfg.dims == "auto":
        chosen = choose_dims(method, _test_images(train_cfg, cfg, device, AUTO_DIMS_EXAMPLES))
        dims = chosen.dims
        log.info("%s", chosen.sentence())
    else:
        dims = tuple(cfg.dims)
    if not all(0 <= d < method.latent_dim for d in dims) or dims[0] == dims[1]:
        raise GentoolError(f"dims={list(dims)} must name two different latent dimensions in "
                           f"0..{method.latent_dim - 1}.")
    images = visuals.traverse(method, cfg.steps, dims)
    return images, visuals.grid(images, train_cfg.dataset.range, cfg.steps)


def mode_translate(method, train_cfg, cfg, device):
    """Image-to-image models: rows input | output | target from `n` test pairs, or, with
    input=PATH (an image file or a folder of them), rows input | output of the user's images."""
    _require(method, "translate", train_cfg.model.name)
    value_range = train_cfg.dataset.range
    if cfg.input is None:
        pairs = _test_rows(method, train_cfg, cfg, device)
        return method.translate(pairs.inputs), visuals.translation_rows(method, pairs,
                                                                         value_range)
    inputs = read_inputs(cfg.input, method.input_channels, train_cfg.dataset.shape[1:],
                         value_range, device)
    outputs = method.translate(inputs)
    shown = inputs if inputs.shape[1] == outputs.shape[1] else \
        inputs.mean(dim=1, keepdim=True).expand_as(outputs)
    return outputs, visuals.grid(torch.stack([shown, outputs], dim=1).flatten(0, 1),
                                 value_range, nrow=2)


def read_inputs(path: str, channels: int, size, value_range, device) -> torch.Tensor:
    """An image file, or every image in a folder (sorted by name), as the model's inputs: read
    with `channels` channels, centre-cropped and resized to `size`, scaled to the data range."""
    where = Path(path).expanduser()
    files = [where] if where.is_file() else sorted(
        p for p in where.glob("*") if p.suffix.lower() in EXTENSIONS) if where.is_dir() else []
    if not files:
        raise GentoolError(f"input={path} is neither an image file nor a folder with images; "
                           "give a .png/.jpg file or a folder of them.")
    images = torch.stack(list(ImageFiles(files, tuple(int(v) for v in size), channels)))
    return to_float(images.to(device), tuple(value_range), dynamic=False)


MODES = {"sample": mode_sample, "classes": mode_classes, "reconstruct": mode_reconstruct,
         "interpolate": mode_interpolate, "traverse": mode_traverse, "translate": mode_translate}
# The capabilities each mode uses (traverse walks the prior, so it needs one: Samples), and
# what messages call them.
NEEDS = {"sample": (Samples,), "classes": (Samples,), "reconstruct": (Reconstructs,),
         "interpolate": (Encodes, Decodes), "traverse": (Samples, Decodes),
         "translate": (Translates,)}
VERBS = {Samples: "sample", Reconstructs: "reconstruct", Encodes: "encode", Decodes: "decode",
         Translates: "translate"}


def write(images: torch.Tensor, picture: torch.Tensor, value_range, fmt: str, out: Path) -> Path:
    """grid: one PNG (the picture, already scaled); npy: float32 array [N, C, H, W] in data
    units; folder: a PNG per image at the data's own size (what FID tools and the like read)."""
    out = out.expanduser()
    then = "run the same command again (out= says where to write)"
    if fmt == "grid":
        return atomic_write(out, lambda f: visuals.save_png(picture, f), then=then)
    if fmt == "npy":
        array = images.float().cpu().numpy()
        return atomic_write(out, lambda f: np.save(f, array), then=then)
    if out.exists() and not out.is_dir():
        raise GentoolError(f"out={out} is a file, but format=folder writes a folder of PNGs; "
                           "give a folder path.")
    if images.dim() == 2:
        raise GentoolError("format=folder writes images, and this model makes 2-D points; use "
                           "format=npy (the points) or format=grid (a scatter plot).")
    width = max(6, int(math.log10(max(images.shape[0], 1))) + 1)
    unit = visuals.to_unit(images, value_range).cpu()
    for i, image in enumerate(unit):
        atomic_write(out / f"{i:0{width}d}.png", lambda f, im=image: visuals.save_png(im, f),
                     kept=f"the first {i} of {len(unit)} images are there" if i else None,
                     then=then)
    return out
