"""scripts/benchmarks.py end to end on digits with a tiny budget (no claims about the figures)."""

import importlib
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_table_of_an_autoencoder_and_pca_goes_between_the_markers(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    script = importlib.import_module("benchmarks")
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept before\n")
    monkeypatch.setattr("sys.argv", [
        "benchmarks.py", "--models", "ae", "pca", "--dataset", "digits", "--steps-scale",
        "0.001", "--device", "cpu", "--data-dir", str(tmp_path), "--runs", str(tmp_path / "runs"),
        "--out", str(out), "--likelihood-examples", "10", "--eval", "n_samples=100",
        "classifier_steps=10", "probe_examples=200"])
    script.main()
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept before\n")
    assert "| AE (MLP 784-400-20) | " in text and "| PCA | " in text and "*real vs real*" in text
    assert text.count(script.BEGIN) == 1 and text.count(script.END) == 1
