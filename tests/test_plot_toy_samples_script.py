"""scripts/plot_toy_samples.py: one panel per samples file, draws within 3 sigma in blue."""

import importlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def plot(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("plot_toy_samples")


def colour_count(image: Image.Image, rgb) -> int:
    return int((np.asarray(image) == np.array(rgb)).all(-1).sum())


def test_on_mode_draws_are_blue_and_off_mode_draws_red(plot, tmp_path):
    on_mode = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    off_mode = np.array([[0.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    np.save(tmp_path / "on.npy", on_mode)
    np.save(tmp_path / "off.npy", off_mode)
    out = tmp_path / "picture.png"
    plot.main(["ring", str(tmp_path / "on.npy"), "on", str(tmp_path / "off.npy"), "off",
               "--caption", "test", "--out", str(out)])
    image = Image.open(out).convert("RGB")
    assert image.size == (2 * plot.PANEL, plot.PANEL + 60)
    left = image.crop((0, 0, plot.PANEL, plot.PANEL))
    right = image.crop((plot.PANEL, 0, 2 * plot.PANEL, plot.PANEL))
    assert colour_count(left, (0, 0, 200)) == 3 and colour_count(left, (220, 0, 0)) == 0
    assert colour_count(right, (0, 0, 200)) == 0 and colour_count(right, (220, 0, 0)) == 2


def test_panels_come_in_pairs(plot, tmp_path):
    with pytest.raises(SystemExit):
        plot.main(["ring", "only.npy", "--out", str(tmp_path / "x.png")])
