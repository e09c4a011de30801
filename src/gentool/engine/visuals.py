"""Pictures of a method, built from its capabilities: used for TensorBoard and by `gentool sample`.

Every function takes images in data units (the data set's `range`) and returns a float image
tensor [C, H, W] in [0, 1], ready for `add_image` or saving.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from gentool.engine import chart
from gentool.errors import GentoolError

# Ten distinguishable colours (Tableau 10) for class labels in latent scatters.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def to_unit(images: torch.Tensor, value_range) -> torch.Tensor:
    lo, hi = value_range
    return ((images.float() - lo) / (hi - lo)).clamp(0, 1)


def grid(images: torch.Tensor, value_range, nrow: int | None = None, padding: int = 2):
    """Tile [N, C, H, W] images row by row (nrow per row, default a square) on a white sheet.

    Written here rather than taken from torchvision so that `train` and `sample` do not pay
    torchvision's import time (seconds) for one small function.
    """
    images = to_unit(images, value_range).cpu()
    n, c, h, w = images.shape
    nrow = min(nrow or max(1, int(math.ceil(math.sqrt(n)))), n)
    rows = int(math.ceil(n / nrow))
    sheet = torch.ones(c, rows * (h + padding) + padding, nrow * (w + padding) + padding)
    for i, image in enumerate(images):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        sheet[:, top:top + h, left:left + w] = image
    return sheet


def save_png(image: torch.Tensor, file) -> None:
    """A [C, H, W] float image in [0, 1] to PNG (file name or binary file object)."""
    array = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(file, format="png")


# `scale=auto` enlarges a picture by the smallest integer factor that makes its long side at
# least this many pixels: an 8x8-digit grid of 82 pixels is unreadable on a modern screen.
READABLE_PIXELS = 512


def scale_factor(height: int, width: int, scale) -> int:
    """The integer factor `scale` asks for: itself when a number, else (auto) the smallest one
    reaching READABLE_PIXELS on the long side (1 for a picture already that large)."""
    if scale != "auto":
        return int(scale)
    return max(1, math.ceil(READABLE_PIXELS / max(height, width, 1)))


def check_scale(scale) -> None:
    """Refuse a `scale=` option that is neither auto nor a whole factor >= 1."""
    if scale != "auto" and not (isinstance(scale, int) and not isinstance(scale, bool)
                                and scale >= 1):
        shown = "null" if scale is None else scale
        raise GentoolError(f"scale={shown} must be auto (enlarge to at least {READABLE_PIXELS} "
                           "pixels on the long side) or a whole factor >= 1 (scale=1: raw size).")


def upscale(image: torch.Tensor, scale) -> torch.Tensor:
    """A [C, H, W] picture enlarged by an integer factor, nearest neighbour: each pixel becomes
    a square block, so no detail is invented or blurred."""
    factor = scale_factor(image.shape[1], image.shape[2], scale)
    if factor == 1:
        return image
    return image.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)


def captioned(image: torch.Tensor, text: str) -> torch.Tensor:
    """A [C, H, W] picture with a white strip above it holding one line of text."""
    face = chart.font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(image.shape[2], chart.text_size(probe, text, face)[0] + 12)
    strip = Image.new("RGB", (width, chart.FONT_SIZE + 14), "white")
    ImageDraw.Draw(strip).text((6, 4), text, fill=chart.TEXT, font=face)
    body = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    sheet = torch.ones(3, strip.height + image.shape[1], width)
    sheet[:, :strip.height] = _tensor(strip)
    sheet[:, strip.height:, :image.shape[2]] = body
    return sheet


def pairs_grid(inputs: torch.Tensor, outputs: torch.Tensor, value_range, per_row: int = 8):
    """Rows of inputs, each followed by the row of their reconstructions."""
    rows = []
    for start in range(0, inputs.shape[0], per_row):
        rows += [inputs[start:start + per_row], outputs[start:start + per_row]]
    width = min(per_row, inputs.shape[0])
    padded = [torch.cat([r, r.new_full((width - r.shape[0], *r.shape[1:]), value_range[1])])
              for r in rows]
    return grid(torch.cat(padded), value_range, nrow=width)


@torch.no_grad()
def interpolate(method, starts: torch.Tensor, ends: torch.Tensor, steps: int) -> torch.Tensor:
    """[pairs, steps + 2, C, H, W]: start image, decoded points on the line between the two
    codes, end image."""
    za, zb = method.encode(starts), method.encode(ends)
    t = torch.linspace(0, 1, steps, device=za.device).view(1, steps, 1)
    codes = za[:, None] * (1 - t) + zb[:, None] * t
    decoded = method.decode(codes.flatten(0, 1)).view(za.shape[0], steps, *starts.shape[1:])
    return torch.cat([starts[:, None], decoded, ends[:, None]], dim=1)


@torch.no_grad()
def traverse(method, steps: int, dims=(0, 1), span: float = 0.95) -> torch.Tensor:
    """The 2-D latent manifold: [steps * steps, C, H, W] decoded over two latent dimensions, the
    others at zero (the prior's mean).

    Grid points are Gaussian quantiles from 1-span to span (Kingma & Welling's figure), so the
    picture covers the prior's mass evenly; rows go down dims[1], columns along dims[0].
    """
    device = next(method.parameters()).device
    values = torch.distributions.Normal(0.0, 1.0).icdf(
        torch.linspace(1 - span, span, steps, device=device))
    ys, xs = torch.meshgrid(values.flip(0), values, indexing="ij")
    z = torch.zeros(steps * steps, method.latent_dim, device=device)
    z[:, dims[0]] = xs.reshape(-1)
    z[:, dims[1]] = ys.reshape(-1)
    return method.decode(z)


@torch.no_grad()
def class_rows(method, per_class: int, temperature: float = 1.0) -> torch.Tensor:
    """[num_classes * per_class, ...] samples of a class-conditional model, class by class (so a
    grid with `per_class` images per row has one row per class)."""
    device = next(method.parameters()).device
    labels = torch.arange(method.num_classes, device=device).repeat_interleave(per_class)
    return method.sample(len(labels), labels=labels, temperature=temperature)


def project_2d(codes: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The codes themselves when 2-D, else their first two principal components."""
    codes = codes.float()
    if codes.shape[1] <= 2:
        return torch.nn.functional.pad(codes, (0, 2 - codes.shape[1])), "latent dimensions 0, 1"
    centred = codes - codes.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ v[:2].T   # one column only when there is a single code
    return torch.nn.functional.pad(projected, (0, 2 - projected.shape[1])), \
        "PCA of the latent codes"


def scatter_image(points: torch.Tensor, labels: torch.Tensor | None, class_names=None,
                  axis_names=("", ""), title: str = "", size: int = 320) -> torch.Tensor:
    """A scatter plot of 2-D points coloured by label, drawn with PIL (no plotting library): a
    `size`-pixel square plot with ticked axes named `axis_names`, and a legend of the labels
    present (`class_names[label]` beside each number where the data set names its classes)."""
    points = points.detach().cpu().float()
    left, top = 64, 48
    frame = (left, top, left + size, top + size)
    image = Image.new("RGB", (left + size + 170, top + size + 56), "white")
    draw = ImageDraw.Draw(image)
    lo, hi = points.min(0).values, points.max(0).values
    pad = 0.04 * (hi - lo).clamp(min=1e-8)
    lo, hi = lo - pad, hi + pad
    chart.axes(draw, frame, ((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))),
               *axis_names)
    if title:
        draw.text((left, 6), title, fill=chart.TEXT, font=chart.font())
    pixels = (points - lo) / (hi - lo) * size
    pixels[:, 0] += left
    pixels[:, 1] = top + size - pixels[:, 1]  # y grows upwards, as on paper
    for i, (x, y) in enumerate(pixels.tolist()):
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=label_colour(labels, i))
    if labels is not None:
        present = sorted({int(v) for v in labels.tolist()})
        entries = [(PALETTE[c % len(PALETTE)],
                    f"{c} {class_names[c]}" if class_names and c < len(class_names) else str(c))
                   for c in present]
        if len(entries) > len(PALETTE):   # colours repeat: say so rather than list them all
            entries = entries[:len(PALETTE)] + [((255, 255, 255), "(colours repeat)")]
        chart.legend(draw, (left + size + 16, top), entries)
    return _tensor(image)


def label_colour(labels, i: int):
    return PALETTE[int(labels[i]) % len(PALETTE)] if labels is not None else PALETTE[0]


# The surface's shades: blue where the discriminator scores fake, orange where it scores real.
COLD, WARM = (198, 219, 239), (253, 208, 162)


def shade(t: float) -> tuple[int, int, int]:
    return tuple(int(c * (1 - t) + w * t) for c, w in zip(COLD, WARM))


def points_image(data_points: torch.Tensor, samples: torch.Tensor, box, surface=None,
                 size: int = 320, resolution: int = 120) -> torch.Tensor:
    """2-D samples (red) over data points (grey) in the square `box` = (lo, hi), optionally on
    the discriminator's output surface (`surface`: points [N, 2] -> scores [N]), shaded from
    blue (lowest score) to orange (highest), with a colour bar giving the scores."""
    lo, hi = float(box[0]), float(box[1])
    left, top = 64, 48
    frame = (left, top, left + size, top + size)
    image = Image.new("RGB", (left + size + 170, top + size + 56), "white")
    draw = ImageDraw.Draw(image)
    if surface is not None:
        ticks = torch.linspace(lo, hi, resolution)
        ys, xs = torch.meshgrid(ticks.flip(0), ticks, indexing="ij")
        grid_points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
        # In chunks: layers that compare examples within a batch (minibatch discrimination)
        # cost memory quadratic in the batch size.
        scores = torch.cat([surface(chunk).float().cpu() for chunk in grid_points.split(256)])
        scores = scores.reshape(resolution, resolution)
        s_lo, s_hi = float(scores.min()), float(scores.max())
        t = ((scores - s_lo) / max(s_hi - s_lo, 1e-8))[..., None]
        cold, warm = torch.tensor(COLD, dtype=torch.float), torch.tensor(WARM, dtype=torch.float)
        shaded = (cold * (1 - t) + warm * t).to(torch.uint8).numpy()
        heat = Image.fromarray(shaded).resize((size, size), Image.BILINEAR)
        image.paste(heat, (left, top))
        bar = (left + size + 24, top, left + size + 42, top + size // 2)
        chart.colour_bar(draw, bar, s_lo, s_hi, shade, "D score (high: real)")
    chart.axes(draw, frame, ((lo, hi), (lo, hi)))

    def to_pixels(points):
        pixels = (points.detach().float().cpu() - lo) / (hi - lo) * size
        pixels[:, 0] += left
        pixels[:, 1] = top + size - pixels[:, 1]
        return pixels.tolist()

    grey, red = (120, 120, 120), PALETTE[3]
    for x, y in to_pixels(data_points):
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=grey)
    for x, y in to_pixels(samples):
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=red)
    chart.legend(draw, (left + size + 16, top + size // 2 + 36),
                 [(grey, "test data"), (red, "samples")])
    return _tensor(image)


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def line_plot(xs: list[float], ys: list[float], reference: float | None, title: str,
              x_label: str, line_label: str, reference_label: str = "", width: int = 640,
              height: int = 400, margin: int = 60) -> torch.Tensor:
    """ys against log10(xs) as a line with dots, and an optional horizontal reference line,
    drawn with PIL: the naive Monte-Carlo estimate against the IWAE bound, for example."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    lx = [math.log10(x) for x in xs]
    values = list(ys) + ([reference] if reference is not None else [])
    x_lo, x_hi = min(lx), max(max(lx), min(lx) + 1)
    y_lo, y_hi = min(values), max(values)
    pad = 0.05 * (y_hi - y_lo or 1.0)
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def at(x, y):
        return (margin + (x - x_lo) / (x_hi - x_lo) * (width - 2 * margin),
                height - margin - (y - y_lo) / (y_hi - y_lo) * (height - 2 * margin))

    draw.rectangle([margin, margin, width - margin, height - margin], outline="grey")
    for power in range(math.ceil(x_lo), math.floor(x_hi) + 1):
        x, _ = at(power, y_lo)
        draw.line([x, height - margin, x, height - margin + 5], fill="grey")
        draw.text((x - 12, height - margin + 8), f"1e{power}", fill="black")
    for fraction in (0.0, 0.5, 1.0):
        value = y_lo + fraction * (y_hi - y_lo)
        _, y = at(x_lo, value)
        draw.text((4, y - 6), f"{value:.4g}", fill="black")
    if reference is not None:
        (x0, y), (x1, _) = at(x_lo, reference), at(x_hi, reference)
        draw.line([x0, y, x1, y], fill=PALETTE[3], width=2)
        draw.text((x0 + 6, y - 14), reference_label, fill=PALETTE[3])
    points = [at(x, y) for x, y in zip(lx, ys)]
    draw.line(points, fill=PALETTE[0], width=2)
    for x, y in points:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=PALETTE[0])
    draw.text((margin, 20), title, fill="black")
    draw.text((width - margin - 6 * len(line_label), margin + 6), line_label, fill=PALETTE[0])
    draw.text((width // 2 - 3 * len(x_label), height - 22), x_label, fill="black")
    return _tensor(image)


@torch.no_grad()
def translation_rows(method, pairs, value_range) -> torch.Tensor:
    """One row per test pair (a PairBatch): input | output | target (a grey input shown as grey
    RGB next to colour outputs)."""
    inputs, targets = pairs.inputs, pairs.targets
    outputs = method.translate(inputs)
    if inputs.shape[1] != targets.shape[1]:
        inputs = inputs.mean(dim=1, keepdim=True).expand(-1, targets.shape[1], -1, -1)
    triples = torch.stack([inputs, outputs, targets], dim=1).flatten(0, 1)
    return grid(triples, value_range, nrow=3)
