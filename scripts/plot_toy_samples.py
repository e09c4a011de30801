#!/usr/bin/env python
"""Side-by-side scatter plots of 2-D samples (`gentool sample ... format=npy`) on a toy set.

Each panel marks the draws within 3 sigma of a mode (blue) and the others (red), draws the
modes' 3-sigma circles (green) and titles itself with the high-quality share.

    gentool sample checkpoint=CKPT n=2500 rejection=0 format=npy out=plain.npy
    gentool sample checkpoint=CKPT n=2500 format=npy out=kept.npy
    .venv/bin/python scripts/plot_toy_samples.py ring plain.npy "plain draws" kept.npy \
        "with rejection" --caption "..." --out picture.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

from gentool.data.toy2d import grid_centres, ring_centres

SETS = {"ring": (ring_centres, 0.01, 190), "grid": (grid_centres, 0.05, 45)}  # pixels per unit
PANEL = 460


def panel(points: np.ndarray, centres: np.ndarray, sigma: float, scale: float,
          title: str) -> Image.Image:
    distance = np.linalg.norm(points[:, None] - centres[None], axis=-1).min(1)
    good = distance < 3 * sigma
    image = Image.new("RGB", (PANEL, PANEL + 40), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), f"{title}: {100 * good.mean():.1f}% within 3 sigma", fill="black")

    def pixel(p):
        return PANEL / 2 + p[0] * scale, PANEL / 2 + 35 - p[1] * scale

    for p, g in zip(points, good):
        draw.point(pixel(p), fill=(0, 0, 200) if g else (220, 0, 0))
    radius = max(3 * sigma * scale, 2)
    for c in centres:
        u, v = pixel(c)
        draw.ellipse((u - radius, v - radius, u + radius, v + radius), outline=(0, 150, 0))
    return image


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=list(SETS))
    parser.add_argument("panels", nargs="+", help="pairs: samples.npy title")
    parser.add_argument("--caption", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if len(args.panels) % 2:
        parser.error("give the panels as pairs: samples.npy title")
    centres_of, sigma, scale = SETS[args.dataset]
    centres = centres_of().numpy()
    pairs = list(zip(args.panels[::2], args.panels[1::2]))
    out = Image.new("RGB", (PANEL * len(pairs), PANEL + 60), "white")
    for i, (path, title) in enumerate(pairs):
        points = torch.as_tensor(np.load(path)).reshape(-1, 2).numpy()
        out.paste(panel(points, centres, sigma, scale, title), (PANEL * i, 0))
    ImageDraw.Draw(out).text((10, PANEL + 42), args.caption, fill="black")
    out.save(args.out)


if __name__ == "__main__":
    main()
