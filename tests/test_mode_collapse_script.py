"""The mode-collapse study script end to end on a tiny budget (no claims about the figures)."""

import importlib
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_study_runs_and_writes_a_markdown_table(tmp_path, monkeypatch):
    # Importable by name: its worker processes (spawned) import the job function from it.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("mode_collapse")
    report = study.main(["--steps", "4", "--seeds", "2", "--workers", "1", "--configs", "plain",
                         "r1", "--datasets", "ring", "--out", str(tmp_path / "table.md")])
    assert (tmp_path / "table.md").read_text() == report
    assert "| plain | " in report and "| R1 (gamma=0.1) | " in report
    assert report.count("| ring | ") == 4  # 2 configurations x 2 seeds, one row each
