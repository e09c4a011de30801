"""The furniture of the PIL-drawn plots in visuals.py: a font, axes with tick labels, a legend box
and a colour bar, so a scatter plot or a score surface can be read without its caption.

Coordinates are PIL pixels (y grows downwards); a `frame` is the plot area (left, top, right,
bottom) and `bounds` the data values at its edges ((x_lo, x_hi), (y_lo, y_hi)).
"""

from __future__ import annotations

import math

from PIL import ImageDraw, ImageFont

TEXT = (40, 40, 40)
FRAME = (150, 150, 150)
FONT_SIZE = 16


def font(size: int = FONT_SIZE):
    """Pillow's bundled scalable font (no font file needed); its bitmap font where Pillow lacks
    FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, face) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    return right - left, bottom - top


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) within [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_label(value: float) -> str:
    return f"{0.0 if abs(value) < 1e-12 else value:.3g}"


def axes(draw: ImageDraw.ImageDraw, frame, bounds, x_label: str = "", y_label: str = "") -> None:
    """A frame with ticks and their values on the bottom and left edges, and axis labels."""
    left, top, right, bottom = frame
    (x_lo, x_hi), (y_lo, y_hi) = bounds
    face = font()
    draw.rectangle(frame, outline=FRAME)
    for value in nice_ticks(x_lo, x_hi):
        x = left + (value - x_lo) / (x_hi - x_lo) * (right - left)
        draw.line([x, bottom, x, bottom + 4], fill=FRAME)
        width, _ = text_size(draw, tick_label(value), face)
        draw.text((x - width / 2, bottom + 6), tick_label(value), fill=TEXT, font=face)
    for value in nice_ticks(y_lo, y_hi):
        y = bottom - (value - y_lo) / (y_hi - y_lo) * (bottom - top)
        draw.line([left - 4, y, left, y], fill=FRAME)
        width, height = text_size(draw, tick_label(value), face)
        draw.text((left - 7 - width, y - height / 2 - 3), tick_label(value), fill=TEXT, font=face)
    if x_label:
        width, _ = text_size(draw, x_label, face)
        draw.text(((left + right - width) / 2, bottom + 26), x_label, fill=TEXT, font=face)
    if y_label:   # written across the top-left corner: PIL draws no rotated text without a copy
        draw.text((4, top - 24), y_label, fill=TEXT, font=face)


def legend(draw: ImageDraw.ImageDraw, origin, entries) -> None:
    """A boxed list of (colour, name) pairs, one a line, its top-left corner at `origin`."""
    face = font()
    x, y = origin
    line = FONT_SIZE + 7
    width = max(text_size(draw, name, face)[0] for _, name in entries) + 34
    draw.rectangle([x, y, x + width, y + 8 + line * len(entries)], fill="white", outline=FRAME)
    for i, (colour, name) in enumerate(entries):
        cy = y + 6 + i * line + line / 2
        draw.ellipse([x + 8, cy - 5, x + 18, cy + 5], fill=colour)
        draw.text((x + 26, cy - FONT_SIZE / 2 - 2), name, fill=TEXT, font=face)


def colour_bar(draw: ImageDraw.ImageDraw, frame, lo: float, hi: float, colour_at,
               title: str) -> None:
    """A vertical bar shading colour_at(t), t from 0 (bottom, value lo) to 1 (top, value hi),
    with the values of its ends and middle beside it and a title above."""
    left, top, right, bottom = frame
    face = font()
    for y in range(int(top), int(bottom) + 1):
        t = (bottom - y) / max(bottom - top, 1)
        draw.line([left, y, right, y], fill=colour_at(t))
    draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], outline=FRAME)   # around the ends
    for t in (0.0, 0.5, 1.0):
        y = bottom - t * (bottom - top)
        draw.line([right, y, right + 4, y], fill=FRAME)
        _, height = text_size(draw, "0", face)
        draw.text((right + 7, y - height / 2 - 3), tick_label(lo + t * (hi - lo)), fill=TEXT,
                  font=face)
    width, _ = text_size(draw, title, face)
    draw.text((min(left, right + 40 - width), top - 24), title, fill=TEXT, font=face)
