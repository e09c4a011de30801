"""The GAN-claims study script end to end on tiny budgets (no claims about the figures): one
file per cell, finished cells skipped, cells of an older feature classifier re-run, the tables
rebuilt between their markers with the missing cells marked, on each claim's study seeds and any
further seed that has a cell file; a run that diverged written as a failed cell. A stopped cell
resumed and a done one skipped: tests/test_study_cells.py."""

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from gentool.errors import TrainingDiverged

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# The DCGAN claims on the offline digits data, with small networks and a 20-step classifier.
IMAGES = ["--override", "dataset=digits", "trainer.batch_size=16", "trainer.image_examples=8",
          "trainer.eval_examples=64", "trainer.scatter_examples=32",
          "model.generator.channels=8", "model.generator.max_channels=16",
          "model.discriminator.channels=8", "model.discriminator.max_channels=16",
          "--eval-samples", "40", "--classifier-steps", "20"]
# The keys of a toy claim's cell file, in their order (the committed cells' own).
TOY_KEYS = ["claim", "config", "label", "seed", "steps", "overrides", "status", "high_quality",
            "modes", "median_distance", "curve", "train_seconds", "eval_seconds", "cpu_seconds",
            "resumed_from_step", "torch_threads", "torch", "machine", "commit", "finished"]


def test_study_writes_one_file_per_cell_skips_them_and_rebuilds_the_tables(tmp_path,
                                                                          monkeypatch):
    # Importable by name: its worker processes (spawned) import the job function from it.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    out = tmp_path / "study.md"
    begin, end = study.markers("supports")
    out.write_text(f"# notes kept\n\n{begin}\nold\n{end}\n\nafter\n")
    common = ["--steps", "4", "--cells", str(tmp_path / "cells"), "--runs",
              str(tmp_path / "runs"), "--out", str(out), "--data-dir", str(tmp_path / "data")]

    toy = [*common, "--claims", "supports", "--seeds", "1", "--configs", "plain", "noise",
           "--override", "trainer.scatter_examples=32"]
    bodies = study.main(toy)
    images = [*common, "--claims", "saturating", "conditional", "--seeds", "1", "--configs",
              "minimax", "cdcgan", *IMAGES]
    bodies.update(study.main(images))
    cells = sorted((tmp_path / "cells").rglob("*.json"))
    assert [c.relative_to(tmp_path / "cells").as_posix() for c in cells] == [
        "conditional/cdcgan/steps4/seed0.json", "saturating/minimax/steps4/seed0.json",
        "supports/noise/steps4/seed0.json", "supports/plain/steps4/seed0.json"]

    noise = json.loads(cells[2].read_text())
    assert noise["steps"] == 4 and "model.instance_noise.anneal_steps=4" in noise["overrides"]
    assert "trainer.scatter_examples=32" in noise["overrides"]
    assert list(noise) == TOY_KEYS
    study_files = importlib.import_module("study_files")
    assert (noise["status"], noise["resumed_from_step"], noise["torch_threads"]) == \
        ("finished", 0, 1)
    assert (noise["machine"], noise["commit"]) == (study_files.machine(), study_files.commit())
    assert [step for step, _ in noise["curve"]] == [1, 2, 3, 4]   # every tenth, at least 1
    minimax = json.loads(cells[1].read_text())
    assert [point["step"] for point in minimax["curve"]] == [1, 2, 3, 4]
    assert minimax["final"]["fd"] == minimax["curve"][-1]["fd"]
    assert [step for step, _ in minimax["scalars"]["grad_norm/generator"]] == [4]  # log_every
    conditional = json.loads(cells[0].read_text())
    assert "conditional_accuracy_c9" in conditional["final"]
    assert conditional["classifier"]["version"] == study.classifier_version()

    # The study budget is marked missing on the claim's study seeds, whichever seeds ran; the
    # 4-step cells are a probe table of their own.
    assert "seeds 0, 1, 2: 0 of 18 cells finished, 18 missing" in bodies["supports"]   # 6 x 3
    assert "| minimax GAN (the plain game) | missing |" in bodies["supports"]
    assert "Probe at 4 generator steps" in bodies["supports"]
    assert "| minimax + instance noise, sigma 0.5 annealed to 0 over the run | " in \
        bodies["supports"]
    assert "| r1 | 2,000 | 0 | missing |" in bodies["supports"]
    assert "| r1 | 2,000 | 2 | missing |" in bodies["supports"]
    assert "seeds 0: 0 of 1 cells finished, 1 missing" in bodies["conditional"]   # 1 seed
    assert "| minimax (saturating) | " in bodies["saturating"]
    assert "Fréchet distance at every tenth of the run (4 steps)" in bodies["saturating"]
    assert "| 9 | " in bodies["conditional"]               # digits name no classes
    text = out.read_text()
    assert text.startswith("# notes kept\n\n") and "\nold\n" not in text
    assert "\n\nafter\n" in text and study.markers("conditional")[1] in text

    # Image cells measured with today's feature classifier are done: a second run trains
    # nothing and leaves their files alone.
    stamps = [c.stat().st_mtime_ns for c in cells]
    study.main(images)
    assert [c.stat().st_mtime_ns for c in cells] == stamps

    # A cell measured with an older feature classifier is left out and queued again.
    conditional["classifier"]["version"] -= 1
    cells[0].write_text(json.dumps(conditional))
    body = study.main([*images, "--table-only"])["conditional"]
    assert "1 cell file(s) measured with an older feature classifier" in body
    assert "| cdcgan | 4 | 0 |" not in body
    args = study.argparse.Namespace(claims=["conditional"], configs=None, seeds=1, steps=4,
                                    cells=tmp_path / "cells", runs=tmp_path / "runs",
                                    data_dir=tmp_path / "data", eval_samples=40, override=[],
                                    classifier_steps=20)
    assert [(job.claim, job.config) for job in study.jobs_of(args)] == [("conditional",
                                                                         "cdcgan")]

    # A configuration ruled out by probes is tabled as a probe only and not queued at the
    # study budget, unless named.
    monkeypatch.setitem(study.CLAIMS, "supports", dataclasses.replace(
        study.CLAIMS["supports"], probe_only=("noise",)))
    body = study.main([*toy, "--table-only", "--steps", "2000", "--configs", "plain"])["supports"]
    assert "0 of 15 cells finished, 15 missing" in body
    assert "| noise | 2,000 |" not in body and "| noise | 4 | 0 |" in body
    args.claims, args.steps, args.configs = ["supports"], 2000, None
    assert "noise" not in {job.config for job in study.jobs_of(args)}
    args.configs = ["noise"]
    assert {job.config for job in study.jobs_of(args)} == {"noise"}


def _supports_cell(cells: Path, config: str, seed: int, high_quality: float) -> None:
    """A finished cell of the `supports` claim at its study budget (2,000 steps)."""
    path = cells / "supports" / config / "steps2000" / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "claim": "supports", "config": config, "label": config, "seed": seed, "steps": 2000,
        "overrides": [], "status": "finished", "high_quality": high_quality, "modes": 1.0,
        "median_distance": 0.01, "curve": [[2000, high_quality]], "train_seconds": 1.0,
        "eval_seconds": 1.0, "cpu_seconds": 2.0, "resumed_from_step": 0, "torch_threads": 1,
        "torch": "2", "machine": "m", "commit": "c", "finished": "2026-01-01 00:00:00"}))


def test_tables_show_the_study_seeds_and_further_seeds_whatever_seeds_run(tmp_path,
                                                                         monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    cells = tmp_path / "cells"
    for seed, high_quality in ((0, 10.0), (1, 20.0), (5, 60.0)):
        _supports_cell(cells, "plain", seed, high_quality)
    common = ["--claims", "supports", "--table-only", "--cells", str(cells),
              "--out", str(tmp_path / "study.md")]
    body = study.main(common)["supports"]
    # --seeds chooses the cells to run, never the seeds the tables show.
    assert study.main([*common, "--seeds", "1"])["supports"] == body
    assert study.main([*common, "--seeds", "6"])["supports"] == body

    assert ("**Study budget: 2,000 generator steps, seeds 0, 1, 2: 2 of 18 cells finished, 16 "
            "missing.** Also included: 1 cell of further seeds.") in body.splitlines()
    # The further seed joins its row's figures (10, 20 and 60) and the per-cell table.
    assert "| minimax GAN (the plain game) | 30.0 ± 26.5 (2/3 seeds and 1 further) | 30.0 ± " \
           "26.5 | " in body
    assert "| non-saturating generator loss | missing |" in body
    assert "| plain | 2,000 | 5 | 60.0 | finished |" in body
    assert "| plain | 2,000 | 2 | missing |" in body
    assert "Probe" not in body

    _supports_cell(cells, "plain", 2, 30.0)
    body = study.main(common)["supports"]
    assert "3 of 18 cells finished, 15 missing.** Also included: 1 cell of further seeds." in body
    assert "| minimax GAN (the plain game) | 30.0 ± 21.6 (4 seeds) | " in body
    # Without a further seed, a row of every study seed has no note.
    (cells / "supports" / "plain" / "steps2000" / "seed5.json").unlink()
    body = study.main(common)["supports"]
    assert "3 of 18 cells finished, 15 missing.**" in body and "further" not in body
    assert "| minimax GAN (the plain game) | 20.0 ± 10.0 | " in body


def test_a_figure_notes_the_seeds_that_measured_it(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    rows = [{"seed": 0, "fd": None}, {"seed": 1, "fd": 2.0}, {"seed": 4, "fd": 4.0}]
    fd = lambda r: r["fd"]   # noqa: E731
    assert study.mean_std_seeds(rows, fd, 1, [0, 1, 2]) == "3.0 ± 1.4 (1/3 seeds and 1 further)"
    assert study.mean_std_seeds(rows, fd, 1, [0, 1]) == "3.0 ± 1.4 (1/2 seeds and 1 further)"
    assert study.mean_std_seeds(rows[1:2], fd, 1, [0, 1]) == "2.0 (1/2 seeds)"
    assert study.mean_std_seeds(rows[1:2], fd, 1, [1]) == "2.0"
    assert study.mean_std_seeds(rows[1:], fd, 1, [1]) == "3.0 ± 1.4 (2 seeds)"
    assert study.mean_std_seeds(rows[:1], fd, 1, [0]) == "—"


@pytest.mark.parametrize("study_cell", ["gan_study"], indirect=True)
def test_a_run_that_diverged_is_written_as_a_failed_cell(study_cell, monkeypatch, tmp_path):
    import gentool.train

    study, job = study_cell.study, study_cell.job

    def diverge(cfg, run_dir):
        assert cfg.data_dir == job.data_dir and cfg.trainer.max_steps == 4
        raise TrainingDiverged("the loss became nan at step 3")
    monkeypatch.setattr(gentool.train, "run_train", diverge)
    result = study.run_cell(job)
    assert json.loads(Path(job.out).read_text()) == result
    assert list(result) == TOY_KEYS
    assert {key: result[key] for key in ("status", "high_quality", "modes", "median_distance",
                                         "curve")} == {
        "status": "the loss became nan at step 3", "high_quality": 0.0, "modes": 0.0,
        "median_distance": None, "curve": []}
    assert result["overrides"] == job.train_overrides()   # data_dir is the machine's, not kept
    study_files = importlib.import_module("study_files")
    assert (result["resumed_from_step"], result["torch_threads"], result["commit"]) == \
        (0, 1, study_files.commit())
    # It stays in the tables, with its message.
    body = study.main(["--claims", "supports", "--table-only", "--cells",
                       str(tmp_path / "cells"), "--out", str(tmp_path / "study.md")])["supports"]
    assert "| plain | 4 | 0 | 0.0 | the loss became nan at step 3 |" in body



def test_the_feature_classifier_is_trained_on_one_thread_as_in_the_workers(tmp_path,
                                                                           monkeypatch):
    """The parent trains (or loads) the classifier the workers read before they start: on one
    torch thread, as a worker would, whatever thread count the parent's torch started with."""
    import torch

    import gentool.evaluate.context

    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    threads = []

    class Context:
        def __init__(self, *args):
            pass

        @property
        def classifier(self):
            threads.append(torch.get_num_threads())

    monkeypatch.setattr(gentool.evaluate.context, "EvalContext", Context)
    job = study.Job("conditional", "cdcgan", 0, 4, str(tmp_path / "run"), str(tmp_path / "out"),
                    str(tmp_path / "data"), 40, ("dataset=digits",), 20)
    started_with = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        study.ensure_classifier(job)
    finally:
        torch.set_num_threads(started_with)
    assert threads == [1]


def test_summaries_leave_out_the_nulls_a_cell_file_holds_for_non_finite_values(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    assert study.window_mean([[10, 1.0], [20, None], [30, 3.0]], 10, 30) == 2.0
    row = {"status": "finished", "seed": 0, "high_quality": 90.0, "median_distance": 0.1,
           "curve": [[60, 80.0], [80, None], [100, 90.0]]}
    assert study.summary_supports([row], [0], 100)[1:3] == ["85.0", "80.0"]


def test_classifier_accuracies_are_shown_once_each_as_printed(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    results = [{"classifier": {"accuracy": a}} for a in (0.9284, 0.928, 0.9012, 0.928)]
    assert study.classifier_accuracies(results) == "0.901, 0.928"


def test_a_non_finite_sample_metric_is_null_in_the_cell_file(monkeypatch, tmp_path):
    """samples_metrics rounds the figures of `gentool eval metrics=[samples]`; the cell file
    holds null for a non-finite one (study_files.write_json), which the tables leave out."""
    import types

    import gentool.evaluate.context
    import gentool.evaluate.suites
    import gentool.trained

    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    trained = types.SimpleNamespace(method=None, step=4, device="cpu",
                                    train_cfg=types.SimpleNamespace(dataset=None))
    monkeypatch.setattr(gentool.trained, "load_trained_method", lambda path, device: trained)

    class Context:
        def __init__(self, *args):
            self.data = types.SimpleNamespace(class_names=["zero", "one"])

    class Row:
        def metrics(self):
            return {"fd": 1.234567891, "precision": float("nan"), "recall": float("inf")}

    monkeypatch.setattr(gentool.evaluate.context, "EvalContext", Context)
    monkeypatch.setattr(gentool.evaluate.suites, "samples", lambda context: [Row()])
    measured = study.samples_metrics(tmp_path / "last.pt", ["device=cpu"])
    study.write_json(tmp_path / "cell.json", {"final": measured, "curve": [measured]})
    cell = json.loads((tmp_path / "cell.json").read_text())
    expected = {"step": 4, "class_names": ["zero", "one"], "fd": 1.23457, "precision": None,
                "recall": None}
    assert cell == {"final": expected, "curve": [expected]}


def test_every_cell_s_overrides_give_each_key_once(monkeypatch):
    from gentool.overrides import repeated_key

    monkeypatch.syspath_prepend(str(SCRIPTS))
    study = importlib.import_module("gan_study")
    for claim, spec in study.CLAIMS.items():
        for config in spec.configs:
            overrides = study.job_overrides(claim, config, seed=0, steps=spec.budget)
            assert repeated_key(overrides) is None, (claim, config, overrides)
    # a configuration's own loss= takes the place of the base's, where the base has it
    ns = study.job_overrides("supports", "ns", seed=0, steps=2000)
    assert [o for o in ns if o.startswith("loss=")] == ["loss=nonsaturating"]


def test_the_recorded_cells_overrides_replay_on_the_command_line():
    from gentool.overrides import repeated_key

    cells = Path(__file__).resolve().parents[1] / "docs" / "results"
    for path in cells.rglob("*.json"):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and isinstance(record.get("overrides"), list):
            assert repeated_key(record["overrides"]) is None, path
