"""`gentool compare RUN...`: the 2-D test codes of trained runs beside PCA's 2-D projection of
the same test data, coloured by class, in one PNG (the lecture's documents-to-2-D-codes slide,
and AE vs VAE latent spaces for images alike).

Each run's method is rebuilt from its checkpoint; its test split is encoded in stored order.
Codes of more than 2 dimensions are drawn by their first two principal components (the panel's
title says so). The PCA panel is fitted on the train split of the first run's data set, on what
`gentool eval` gives PCA: images in [0, 1], vectors as loaded, word counts as log(1 + count).
Each run's panel also gives the retrieval precision at 10 of its full code (cosine k-NN among
the shown test examples, gentool.metrics.retrieval), and the PCA panel that of PCA with as many
components as each run's code has (at most min(N, D), as `gentool eval` gives its PCA baseline,
and the panel's title says when it has fewer), so the figures beside each other compare codes of
one size (the PCA panel draws the first 2 of those components).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gentool.capabilities import Encodes
from gentool.data import build_data, take
from gentool.engine.checkpoint import checkpoint_of
from gentool.engine.files import atomic_write, output_file
from gentool.engine.visuals import to_unit
from gentool.errors import GentoolError
from gentool.metrics.pca import PCA, baseline_components, fewer_components_note
from gentool.metrics.retrieval import measurable, retrieval_precision
from gentool.trained import load_trained_method

# 20 distinguishable colours (Tableau 20, dark shades first), for up to 20 classes.
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
           (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
           (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229)]
PANEL = 560          # pixels per square panel
MARGIN = (70, 30, 40, 60)   # left, right, top, bottom: room for ticks and their numbers


@dataclass
class Panel:
    title: str
    points: torch.Tensor      # [N, 2]
    labels: torch.Tensor | None
    axes: tuple[str, str]


def compare(runs: list[str], out: str, examples: int = 2000, data_dir: str = "data",
            k: int = 10) -> Path:
    """Draw the panels of `runs` (run directories or checkpoints) and the PCA panel to `out`, a
    .png file outside any run's checkpoints folder (checked before any run is read)."""
    path = output_file(out, "--out", ".png", "gentool compare writes its PNG", "codes.png")
    panels, names, caption = compare_panels(runs, examples, data_dir, k)
    image = draw(panels, names, caption)
    # Written beside `path` and renamed over it: a symlink named by --out is replaced, never
    # followed to the file it points at (a checkpoint, say).
    return atomic_write(path, lambda f: image.save(f, format="png"),
                        then="give --out a writable path")


def compare_panels(runs: list[str], examples: int = 2000, data_dir: str = "data",
                   k: int = 10) -> tuple[list[Panel], list[str], str]:
    """The PCA panel and one panel per run, the class names and the figure's caption."""
    device = torch.device("cpu")
    panels, sizes, first = [], [], None
    checkpoints = [checkpoint_of(run) for run in runs]   # every path checked before any work
    for run, checkpoint in zip(runs, checkpoints):
        trained = load_trained_method(checkpoint, device)
        if not isinstance(trained.method, Encodes):
            raise GentoolError(f"{run} holds model={trained.train_cfg.model.name}, which has no "
                               "encoder; compare runs of autoencoders or VAEs.")
        dataset = trained.train_cfg.dataset
        if first is None:
            first = (dataset, build_data(dataset, data_dir, device, batch_size=500, seed=0,
                                         drop_last=False))
        elif dataset != first[0]:
            raise GentoolError(f"{run} was trained on dataset={dataset.name} with other "
                               f"settings than {runs[0]}; compare runs of one data set.")
        test = _test_examples(first[1], examples)
        with torch.no_grad():
            codes = torch.cat([trained.method.encode(chunk).float()
                               for chunk in test[0].split(500)])
        points, axes = _plane(codes)
        size = codes.shape[1]
        sizes.append(size)
        name = f"{trained.train_cfg.model.name}, {size}-D code"
        if size > 2:
            name += " (first 2 principal components)"
        panels.append(Panel(f"{name}{_precision(codes, test.labels, k, f'the {size}-D code')}",
                            points, test.labels, axes))
    dataset, data = first
    test = _test_examples(data, examples)
    train = _features(dataset, data, take(data.train, min(10000, data.train.num_examples))[0])
    # One fit with the most components asked for: PCA with d components is its first d.
    most = baseline_components(max([2, *sizes]), train)
    projected = PCA(train, most).encode(_features(dataset, data, test[0])).float()
    what = "log(1+count)" if str(dataset.get("values", "")) == "counts" else "inputs"
    # One line: "16 / 20 components: a / b"; `gentool eval` gives its PCA baseline as many.
    used = sorted({baseline_components(size, train) for size in sizes})
    figures = [_precision_at(projected[:, :n], test.labels, k) for n in used]
    title = f"PCA of the {what}, first 2 components"
    if None not in figures:
        title += (f"\nretrieval precision@{k} of {' / '.join(map(str, used))} components: "
                  f"{' / '.join(f'{p:.3f}' for p in figures)}")
        note = fewer_components_note(max(sizes), train)
        if note:
            title += f"\n({used[-1]} components: {note})"
    panels.insert(0, Panel(title, projected[:, :2], test.labels, ("PC 1", "PC 2")))
    names = data.class_names or [str(i) for i in range(data.num_classes or 0)]
    return panels, names, f"{len(test[0])} test examples of {data.name}"


def _test_examples(data, n: int):
    """n test examples drawn evenly (a fixed seeded subset, in stored order): a split stored
    class by class would otherwise show its first classes only."""
    whole = take(data.test, data.test.num_examples)
    if n >= len(whole[0]):
        return whole
    index = torch.randperm(len(whole[0]), generator=torch.Generator().manual_seed(0))[:n]
    index = index.sort().values
    return type(whole)(*[None if part is None else part[index] for part in whole])


def _features(dataset, data, x: torch.Tensor) -> torch.Tensor:
    if data.kind == "vectors":
        return torch.log1p(x) if str(dataset.get("values", "")) == "counts" else x
    return to_unit(x, data.value_range)


def _plane(codes: torch.Tensor) -> tuple[torch.Tensor, tuple[str, str]]:
    if codes.shape[1] == 1:
        return torch.cat([codes, torch.zeros_like(codes)], 1), ("z 1", "")
    if codes.shape[1] == 2:
        return codes, ("z 1", "z 2")
    return PCA(codes, 2).encode(codes).float(), ("PC 1 of the codes", "PC 2 of the codes")


def _precision(codes: torch.Tensor, labels, k: int, of: str) -> str:
    precision = _precision_at(codes, labels, k)
    return "" if precision is None else f"\nretrieval precision@{k} of {of}: {precision:.3f}"


def _precision_at(codes: torch.Tensor, labels, k: int) -> float | None:
    if labels is None or not measurable(k, len(codes)):
        return None
    return retrieval_precision(codes, labels, (k,))[k]


def draw(panels: list[Panel], class_names: list[str], caption: str) -> Image.Image:
    """Panels side by side, each a scatter with its axes, then a legend of the classes."""
    font, small = _font(18), _font(14)
    left, right, top, bottom = MARGIN
    cell_w, cell_h = left + PANEL + right, top + 40 + PANEL + bottom
    legend_w = 30 + max([small.getlength(n) for n in class_names] or [0]) + 30
    sheet = Image.new("RGB", (int(cell_w * len(panels) + legend_w), cell_h + 40), "white")
    ink = ImageDraw.Draw(sheet)
    ink.text((10, 8), caption, fill="black", font=font)
    for i, panel in enumerate(panels):
        x0, y0 = i * cell_w + left, 40 + top + 40
        ink.multiline_text((i * cell_w + left, 40), panel.title, fill="black", font=small)
        _scatter(ink, panel, x0, y0, small)
    ly = 40 + top + 40
    for c, name in enumerate(class_names):
        x = cell_w * len(panels) + 10
        ink.rectangle([x, ly + 4, x + 12, ly + 16], fill=COLOURS[c % len(COLOURS)])
        ink.text((x + 20, ly), name, fill="black", font=small)
        ly += 22
    return sheet


def _scatter(ink: ImageDraw.ImageDraw, panel: Panel, x0: int, y0: int, font) -> None:
    points = panel.points.double()
    lo, hi = torch.quantile(points, 0.005, dim=0), torch.quantile(points, 0.995, dim=0)
    span = (hi - lo).clamp(min=1e-9)
    lo, hi = lo - 0.05 * span, hi + 0.05 * span      # the central 99% of points, and a border
    ink.rectangle([x0, y0, x0 + PANEL, y0 + PANEL], outline="black")
    for axis in (0, 1):
        for value in _ticks(float(lo[axis]), float(hi[axis])):
            at = (value - lo[axis]) / (hi[axis] - lo[axis]) * PANEL
            text = f"{value + 0.0:g}"   # + 0.0: no "-0"
            if axis == 0:
                x = x0 + float(at)
                ink.line([x, y0 + PANEL, x, y0 + PANEL + 6], fill="black")
                ink.text((x - font.getlength(text) / 2, y0 + PANEL + 8), text, fill="black",
                         font=font)
            else:
                y = y0 + PANEL - float(at)
                ink.line([x0 - 6, y, x0, y], fill="black")
                ink.text((x0 - 10 - font.getlength(text), y - 8), text, fill="black", font=font)
    ink.text((x0 + PANEL / 2 - font.getlength(panel.axes[0]) / 2, y0 + PANEL + 30),
             panel.axes[0], fill="black", font=font)
    ink.text((x0 - MARGIN[0] + 2, y0 - 22), panel.axes[1], fill="black", font=font)
    pixels = (points - lo) / (hi - lo) * PANEL
    order = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))
    for i in order.tolist():   # a fixed shuffled order: no class is drawn over all the others
        x, y = float(pixels[i, 0]), float(pixels[i, 1])
        if 0 <= x <= PANEL and 0 <= y <= PANEL:
            colour = COLOURS[int(panel.labels[i]) % len(COLOURS)] if panel.labels is not None \
                else COLOURS[0]
            ink.ellipse([x0 + x - 2.5, y0 + PANEL - y - 2.5, x0 + x + 2.5, y0 + PANEL - y + 2.5],
                        fill=colour)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values inside [lo, hi], about `count` of them."""
    raw = (hi - lo) / count
    step = 10 ** np.floor(np.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = np.ceil(lo / step) * step
    return [float(round(v, 10)) for v in np.arange(first, hi + 1e-12, step)]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:   # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()
