"""scripts/spreading_pixel_controls.py: its PCA whitening by hand, and the table on digits."""

import importlib
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("spreading_pixel_controls")


def test_whitened_components_have_unit_variance_and_no_correlation(monkeypatch):
    torch.manual_seed(0)
    train = torch.randn(500, 6, dtype=torch.float64) @ torch.randn(6, 6, dtype=torch.float64)
    train_pca, test_pca = script(monkeypatch).whitened_pca(train, train[:10], 3)
    assert torch.allclose(torch.cov(train_pca.T), torch.eye(3, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(test_pca, train_pca[:10])


def test_table_on_digits(monkeypatch, capsys):
    text = script(monkeypatch).main(["--dataset", "digits", "--labels", "1", "2",
                                     "--seeds", "0", "1", "--components", "8"])
    rows = text.splitlines()[2:]
    assert len(rows) == 4                  # two feature sets x two label counts
    assert rows[0].startswith("| standardised pixels | 1 | ")
    assert rows[2].startswith("| PCA-whitened pixels (8 components) | 1 | ")
    assert text in capsys.readouterr().out
