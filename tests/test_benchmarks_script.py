"""scripts/benchmarks.py: end to end on digits with a tiny budget (no claims about the figures),
its result files, and the table rebuilt from them."""

import importlib
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("benchmarks")


def refuse_to_measure(script, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("measured a model that has a result file")

    monkeypatch.setattr(script, "measure", refuse)
    monkeypatch.setattr(script, "measure_pca", refuse)


def test_an_autoencoder_and_pca_are_measured_once_into_files_and_tabled(tmp_path, monkeypatch,
                                                                         script):
    out, cells = tmp_path / "benchmarks.md", tmp_path / "cells"
    out.write_text("# Benchmarks\n\nkept before\n")
    argv = ["--models", "ae", "pca", "--dataset", "digits", "--steps-scale", "0.001",
            "--device", "cpu", "--data-dir", str(tmp_path), "--runs", str(tmp_path / "runs"),
            "--cells", str(cells), "--out", str(out), "--likelihood-examples", "10",
            "--eval", "n_samples=100", "classifier_steps=10", "probe_examples=200"]
    script.main(argv)
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept before\n")
    assert "| AE (MLP 784-400-20) | 0." in text and "| PCA | 0." in text
    assert "*real vs real*" in text
    assert text.count(script.BEGIN) == 1 and text.count(script.END) == 1
    files = {name: cells / "digits" / "seed0" / f"{name}.json" for name in ("ae", "pca")}
    ae = json.loads(files["ae"].read_text())
    assert "mse" in ae["metrics"] and not any(k.startswith("eval/") for k in ae["metrics"])
    assert ae["train_seconds"] > 0 and ae["eval_seconds"] > 0 and ae["torch_threads"] >= 1
    assert "trainer.max_steps=10" in ae["overrides"] and ae["machine"]
    # The AE's evaluation, the first, found no cached classifier and trained it; the table says so.
    assert ae["trained_classifier"] is True
    assert "(training the feature classifier included)" in text.split("| AE (MLP")[2]
    assert "| VAE (MLP 784-400-20, Bernoulli) | missing |" in text
    # PCA's evaluation, after the AE's, found the classifier cached and trained none.
    assert json.loads(files["pca"].read_text())["trained_classifier"] is False
    assert "(training the feature classifier included)" not in text.split("| PCA |")[2]

    # A result file lost, its run folder kept: the file is rebuilt from the run, not retrained.
    files["ae"].unlink()
    with monkeypatch.context() as patch:
        patch.setattr("gentool.train.run_train", lambda *a, **k: pytest.fail("retrained"))
        script.main(argv)
    assert json.loads(files["ae"].read_text())["train_seconds"] == ae["train_seconds"]

    # The same command again finds both files: nothing is trained, evaluated or rewritten.
    written = {name: path.stat().st_mtime_ns for name, path in files.items()}
    refuse_to_measure(script, monkeypatch)
    script.main(argv)
    assert {name: path.stat().st_mtime_ns for name, path in files.items()} == written
    assert out.read_text() == text


def test_wall_times_and_the_classifier_flag_survive_the_sittings_that_reuse_a_run(
        tmp_path, monkeypatch, script):
    """Training and evaluation faked on a fake clock: a training interrupted, resumed, then an
    evaluation interrupted, redone, and the result file rebuilt once more from the run folder."""
    args = script.parse_args(["--models", "ae", "--device", "cpu", "--data-dir", str(tmp_path),
                              "--runs", str(tmp_path / "runs")])
    run, cache = tmp_path / "runs" / "ae", tmp_path / "gentool-classifiers"
    clock = [0.0]
    monkeypatch.setattr(script.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(script, "compose", lambda *a, **k: None)
    monkeypatch.setattr(script, "checkpoint_step",
                        lambda folder: 500 if (folder / "checkpoints").is_dir() else 0)

    def train(seconds, finish):
        def work(cfg, folder):
            clock[0] += seconds
            (Path(folder) / "checkpoints").mkdir(parents=True, exist_ok=True)
            if not finish:
                raise KeyboardInterrupt
            (Path(folder) / "metrics.json").write_text(json.dumps({"step": 1000}))
        return work

    def evaluate(seconds, finish):
        def work(cfg):
            clock[0] += seconds
            cache.mkdir(exist_ok=True)
            (cache / "digits-v2.pt").touch()   # found missing, so trained and cached
            if not finish:
                raise KeyboardInterrupt
            record = json.loads((run / "metrics.json").read_text())
            (run / "metrics.json").write_text(json.dumps({**record, "eval/mse": 0.01}))
        return work

    def sitting(train_work, eval_work):
        with monkeypatch.context() as patch:
            patch.setattr("gentool.train.run_train", train_work)
            patch.setattr("gentool.evaluate.run_eval", eval_work)
            return script.measure("ae", args)

    never = lambda *a: pytest.fail("redid work the run folder holds")
    with pytest.raises(KeyboardInterrupt):
        sitting(train(100.0, finish=False), never)
    with pytest.raises(KeyboardInterrupt):   # training resumed at step 500 and finished
        sitting(train(30.0, finish=True), evaluate(7.0, finish=False))
    (cache / "digits-v2.pt").unlink()   # the interrupted evaluation's classifier is gone
    measured = sitting(never, evaluate(20.0, finish=True))
    assert measured == {"metrics": {"mse": 0.01}, "train_seconds": 30.0, "eval_seconds": 20.0,
                        "resumed_from_step": 500, "trained_classifier": True}
    assert script.training_time(measured) == "30 s (last sitting, resumed at step 500)"
    assert script.evaluation_time(measured) == "20 s (training the feature classifier included)"
    # A sitting that only rebuilds the result file (classifier now cached) reports the same.
    assert sitting(never, never) == measured


def test_an_evaluation_trained_the_classifier_when_it_added_one_to_the_cache(tmp_path, script):
    cache = tmp_path / "gentool-classifiers"
    cache.mkdir()
    (cache / "mnist-v2.pt").touch()

    def add(name):
        (cache / name).touch()
        return name

    assert script.training_classifier(tmp_path, lambda: add("mnist-v2.pt")) == (
        "mnist-v2.pt", False)
    assert script.training_classifier(tmp_path, lambda: add("digits-v2.pt")) == (
        "digits-v2.pt", True)


def fake_cell(cells: Path, name: str, metrics: dict, threads: int = 1) -> None:
    path = cells / "fashion_mnist" / "seed0" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "model": name, "metrics": metrics, "train_seconds": 441.2, "eval_seconds": 52.0,
        "resumed_from_step": 0, "machine": "AMD EPYC 7B13, 2 cores", "device": "cpu",
        "torch_threads": threads, "eval_overrides": ["likelihood_examples=500"]}))


def test_table_only_tables_the_files_there_and_marks_the_other_models_missing(tmp_path,
                                                                              monkeypatch,
                                                                              script):
    cells, out = tmp_path / "cells", tmp_path / "benchmarks.md"
    fake_cell(cells, "vae", {"mse": 0.0128, "iwae_nll": 238.94, "fd": 73.8, "fd_real": 0.2,
                             "classifier_accuracy": 0.9012})
    fake_cell(cells, "dcgan", {"fd": 17.6, "recall": 0.83}, threads=2)
    refuse_to_measure(script, monkeypatch)
    script.main(["--table-only", "--cells", str(cells), "--out", str(out)])
    text = out.read_text()
    assert "| VAE (MLP 784-400-20, Bernoulli) | 0.0128 | 238.9 | 73.8 | — |" in text
    assert "| DCGAN (experiment=dcgan_fashion_mnist) | — | — | 17.6 | — | 0.830 |" in text
    for label in ("AE (MLP 784-400-20)", "linear AE", "PCA"):
        assert f"| {label} | " + " | ".join(["missing"] * 8) + " |" in text
        assert f"| {label} | missing | missing | missing |" in text
    assert "| *real vs real* |  |  | 0.2 |" in text
    assert ("| VAE (MLP 784-400-20, Bernoulli) | 7 min 21 s | 52 s | "
            "AMD EPYC 7B13, 2 cores; one thread per run |") in text
    assert "| 7 min 21 s | 52 s | AMD EPYC 7B13, 2 cores; 2 threads |" in text
    assert "its test accuracy: 0.901" in text and "first 500 test images" in text
    assert "stabilised" not in text.lower() and "[gan_study.md](gan_study.md), section 3" in text
    assert ("R1 over 3 seeds at its budget; hinge\n  loss, spectral norm, minibatch std and two "
            "time-scales in single-seed 2,000-step probes.") in text


def test_with_no_files_every_model_is_a_missing_row(tmp_path, monkeypatch, script):
    out = tmp_path / "benchmarks.md"
    refuse_to_measure(script, monkeypatch)
    script.main(["--table-only", "--cells", str(tmp_path / "none"), "--out", str(out)])
    text = out.read_text()
    for label, _ in script.MODELS.values():
        assert f"| {label} | missing | missing | missing | missing |" in text
        assert f"| {label} | missing | missing | missing |\n" in text
    assert "| *real vs real* |  |  | — | — | — | — | — |  |" in text
    assert "first 1000 test images" in text and "recorded with the first model" in text


def test_steps_scale_scales_the_dcgan_preset_budget(script):
    assert not any(o.startswith("trainer.max_steps") for o in script.MODELS["dcgan"][1])
    args = script.parse_args(["--steps-scale", "0.01", "--device", "cpu"])
    overrides = script.train_overrides("dcgan", args)
    assert "trainer.max_steps=100" in overrides   # 1% of the preset's 10,000 steps
    cfg = script.compose("train", overrides)
    assert cfg.trainer.max_steps == 100 and cfg.trainer.checkpoint_every == 100
    assert cfg.model.name == "dcgan"
    assert script.train_overrides("dcgan", script.parse_args([])) == [
        "dataset=fashion_mnist", "seed=0", "device=auto", "data_dir=data",
        "trainer.progress_bar=false", "experiment=dcgan_fashion_mnist"]


def test_durations_read_in_minutes_and_seconds(script):
    assert script.duration(441.2) == "7 min 21 s"
    assert script.duration(59.6) == "1 min 0 s" and script.duration(44.4) == "44 s"
    assert script.duration(None) == "—"


def test_a_scaled_budget_takes_the_place_of_a_model_s_own(script):
    from gentool.overrides import repeated_key

    args = script.parse_args(["--steps-scale", "0.01", "--device", "cpu"])
    overrides = script.train_overrides("vae", args)
    assert repeated_key(overrides) is None, overrides
    assert overrides[-4:-1] == ["trainer.max_steps=100", "trainer.eval_every=100",
                                "trainer.checkpoint_every=100"]
