"""`run_eval` end to end on tiny runs: the suites chosen by capability, the outputs, the errors."""

import importlib.util
import json
import logging

import pytest
import torch

from conftest import TINY, compose_config
from gentool.errors import GentoolError
from gentool.evaluate import run_eval
from gentool.evaluate.context import EvalContext
from gentool.evaluate.suites import samples
from gentool.metrics.classifier import features_of
from gentool.train import run_train

# Small enough for seconds on a CPU; the classifier cache goes to each test's data_dir.
CHEAP = ["device=cpu", "iwae_k=20", "naive_mc.k_max=100", "naive_mc.examples=5",
         "n_samples=64", "batch_size=32", "probe_examples=200", "classifier_steps=20"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    models = {"vae": ["model=vae", "model.latent_dim=4"], "ae": ["model=ae", "model.latent_dim=4"],
              "gan": ["model=gan"], "ring": ["model=gan", "dataset=ring"],
              "gan_tanh": ["model=gan", "dataset.range=[-1.0,1.0]"],
              "cgan": ["model=gan", "model.conditional=true"]}
    for name, overrides in models.items():
        run_train(compose_config("train", [*TINY, *overrides]), root / name)
    return root


def evaluate(run, tmp_path, *overrides):
    return run_eval(compose_config("eval", [*CHEAP, f"checkpoint={run}/checkpoints/last.pt",
                                            f"data_dir={tmp_path}", *overrides]))


def test_vae_gets_every_default_suite_and_results_merge_into_the_run(runs, tmp_path, capsys):
    before = json.loads((runs / "vae" / "metrics.json").read_text())
    metrics = evaluate(runs / "vae", tmp_path)
    for key in ("iwae_nll", "nelbo", "naive_mc_nll_k100", "mse", "pca_mse", "fd", "fd_real",
                "precision", "recall", "classes_covered", "class_kl", "classifier_accuracy",
                "linear_probe", "linear_probe_pixels", "linear_probe_pca", "knn", "kmeans_nmi"):
        assert f"eval/{key}" in metrics, key
    assert metrics["eval/iwae_nll"] <= metrics["eval/nelbo"] + 1e-6   # IWAE is the tighter bound
    record = json.loads((runs / "vae" / "metrics.json").read_text())
    assert {k: record[k] for k in before} == before                   # training's keys kept
    assert record["eval/iwae_nll"] == metrics["eval/iwae_nll"]
    assert (runs / "vae" / "eval" / "naive_mc.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((runs / "vae").glob("events.out.tfevents.*"))) >= 2
    table = capsys.readouterr().out
    assert "NLL bound IWAE k=20" in table and "real vs real" in table and "PCA, 4 components" in table
    assert list((tmp_path / "gentool-classifiers").glob("*.pt"))   # cached for next time


def test_an_unreadable_cached_classifier_is_trained_again(runs, tmp_path, caplog):
    evaluate(runs / "gan", tmp_path, "metrics=[samples]")
    (cached,) = (tmp_path / "gentool-classifiers").glob("*.pt")
    first = json.loads((runs / "gan" / "metrics.json").read_text())["eval/fd"]
    cached.write_bytes(cached.read_bytes()[:100])                      # damaged outside gentool
    caplog.set_level(logging.INFO, logger="gentool")
    again = evaluate(runs / "gan", tmp_path, "metrics=[samples]")
    assert "cannot be read" in caplog.text and "Training the feature classifier" in caplog.text
    assert again["eval/fd"] == first                                   # the same classifier
    torch.load(cached, weights_only=True)                              # and the cache repaired


def test_the_feature_classifier_is_trained_once_per_data_set(runs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gentool")
    evaluate(runs / "vae", tmp_path, "metrics=[samples]")
    assert "Training the feature classifier" in caplog.text
    cached = list((tmp_path / "gentool-classifiers").glob("*.pt"))
    stamp = cached[0].stat().st_mtime_ns
    caplog.clear()
    first = evaluate(runs / "gan", tmp_path, "metrics=[samples]")
    assert "Training the feature classifier" not in caplog.text
    assert cached[0].stat().st_mtime_ns == stamp
    again = evaluate(runs / "gan", tmp_path, "metrics=[samples]")
    assert first == again                                              # seeded: repeatable
    # A model trained on [-1, 1] pixels is measured with the same classifier.
    evaluate(runs / "gan_tanh", tmp_path, "metrics=[samples]")
    assert "Training the feature classifier" not in caplog.text
    assert list((tmp_path / "gentool-classifiers").glob("*.pt")) == cached
    # Another recipe length is another classifier, trained with its progress in the log.
    evaluate(runs / "gan", tmp_path, "metrics=[samples]", "classifier_steps=30")
    assert "Training the feature classifier" in caplog.text
    assert "Feature classifier: step 30/30" in caplog.text
    assert len(list((tmp_path / "gentool-classifiers").glob("*.pt"))) == 2


def test_autoencoder_is_sampled_from_a_gaussian_over_its_codes_and_has_no_likelihood(
        runs, tmp_path, capsys):
    metrics = evaluate(runs / "ae", tmp_path)
    assert "eval/fd" in metrics and "eval/mse" in metrics and "eval/linear_probe" in metrics
    assert "eval/retrieval_p100" in metrics   # digits' 359 test examples measure k = 100
    assert not any("iwae" in key or "naive_mc" in key for key in metrics)
    assert "Gaussian fitted to its train codes" in capsys.readouterr().out


def test_gan_gets_sample_metrics_only(runs, tmp_path):
    metrics = evaluate(runs / "gan", tmp_path)
    assert "eval/fd" in metrics and "eval/precision" in metrics
    assert not any(k.split("/")[1].startswith(("mse", "linear_probe", "iwae")) for k in metrics)


def test_conditional_gan_gets_per_class_accuracy_beside_the_real_one(runs, tmp_path):
    metrics = evaluate(runs / "cgan", tmp_path, "metrics=[samples]")
    per_class = [metrics[f"eval/conditional_accuracy_c{c}"] for c in range(10)]
    assert all(0 <= value <= 1 for value in per_class)
    assert metrics["eval/conditional_accuracy"] == pytest.approx(sum(per_class) / 10)
    assert 0 <= metrics["eval/conditional_accuracy_real"] <= 1
    assert "eval/conditional_accuracy_c9_real" in metrics
    assert not any("conditional" in key for key in evaluate(runs / "gan", tmp_path,
                                                            "metrics=[samples]"))


class OneImagePerClass:
    """A class-conditional "generator" that answers class c with one fixed real image: the
    first test image labelled `(c + shift) mod 10`."""

    num_classes = 10

    def __init__(self, images, labels, shift):
        self.answers = torch.stack([images[(labels == (c + shift) % 10).nonzero()[0, 0]]
                                    for c in range(10)])

    def sample(self, n, labels=None, temperature=1.0):
        return self.answers[labels]


def test_conditional_accuracy_is_how_often_the_classifier_reads_class_c_as_c(tmp_path):
    dataset = compose_config("train", TINY).dataset
    cfg = compose_config("eval", [*CHEAP, f"data_dir={tmp_path}", "n_samples=40",
                                  "classifier_steps=100"])
    for shift in (0, 1):   # answers of the asked class, then of the next class
        context = EvalContext(None, dataset, cfg, torch.device("cpu"))
        images, labels = context.test[0], context.test.labels
        context.method = OneImagePerClass(images, labels, shift)
        rows = {row.key: row for row in samples(context)}
        # By hand: every sample of class c is the same image, so class c scores 1 when the
        # classifier reads that image as c, else 0; the reference is its accuracy on the real
        # test images of each class among the first 40.
        classifier = context.classifier[0]
        read = features_of(classifier, context.unit(context.method.answers))[1]
        expected = [float(read[c] == c) for c in range(10)]
        assert [rows[f"conditional_accuracy_c{c}"].value for c in range(10)] == expected
        assert rows["conditional_accuracy"].value == pytest.approx(sum(expected) / 10)
        assert context.sample_labels.tolist() == [i % 10 for i in range(40)]
        real = features_of(classifier, context.unit(images[:40]))[1]
        for c in range(10):
            mine = labels[:40] == c
            assert rows[f"conditional_accuracy_c{c}"].references[0][2] == pytest.approx(
                float((real[mine] == c).double().mean()), nan_ok=True)


def test_toy_gan_gets_mode_metrics_in_raw_coordinates(runs, tmp_path):
    metrics = evaluate(runs / "ring", tmp_path)
    assert {"eval/modes", "eval/high_quality", "eval/reverse_kl", "eval/spread",
            "eval/fd"} <= set(metrics)
    assert metrics["eval/modes_real"] == 8 and metrics["eval/high_quality_real"] > 0.95


@pytest.mark.parametrize("overrides,message", [
    (["metrics=[likelihood]"], "metrics=likelihood needs a model that evaluates p(x|z)"),
    (["metrics=[fid]"], "names unknown suites fid; model=gan on dataset=digits supports "
                        "metrics=[samples,inception], so pick from those."),
    # the closest suite this model can run (likelihood is a VAE's)
    (["metrics=[sampels]"], "names unknown suites sampels; model=gan on dataset=digits "
                            "supports metrics=[samples,inception], so did you mean "
                            "metrics=[samples]?"),
    (["metrics=[likelihod]"], "so pick from those."),
    (["n_samples=0"], "n_samples=0 must be at least 1"),
    # the schema's range (EvalConfig): null is the whole test split, and no count is below 1
    (["likelihood_examples=0"], "likelihood_examples is 0 but must be null or an integer >= 1."),
    (["likelihood_examples=-1"], "likelihood_examples is -1 but must be null or an integer >= 1."),
    (["scale=0"], "scale=0 must be auto"),
])
def test_bad_requests_are_clear_errors(runs, tmp_path, overrides, message):
    with pytest.raises(GentoolError) as error:
        evaluate(runs / "gan", tmp_path, *overrides)
    assert message in str(error.value)
    if message.startswith("metrics=likelihood"):
        assert "this model supports metrics=[samples," in str(error.value)


def test_a_misspelled_suite_gets_the_closest_one_the_model_runs(runs, tmp_path):
    with pytest.raises(GentoolError, match=r"metrics=\[likelihod,samples\] names unknown "
                                           r"suites likelihod; model=vae on dataset=digits "
                                           r"supports metrics=\[likelihood,.*\], so did you "
                                           r"mean metrics=\[likelihood,samples\]\?$"):
        evaluate(runs / "vae", tmp_path, "metrics=[likelihod,samples]")


def test_figures_are_saved_enlarged_by_scale(runs, tmp_path):
    from PIL import Image

    evaluate(runs / "vae", tmp_path, "metrics=[naive_mc]", "scale=2")
    assert Image.open(runs / "vae" / "eval" / "naive_mc.png").size == (1280, 800)   # 640 x 400


@pytest.mark.skipif(importlib.util.find_spec("torchmetrics") is not None,
                    reason="torchmetrics (the inception extra) is installed here")
def test_inception_without_the_extra_is_a_clear_error(runs, tmp_path):
    with pytest.raises(GentoolError, match=r"pip install 'gentool\[inception\]'"):
        evaluate(runs / "gan", tmp_path, "metrics=[inception]")


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(GentoolError, match="needs a checkpoint"):
        run_eval(compose_config("eval", ["device=cpu"]))


def test_a_rejection_rate_out_of_range_is_refused_before_the_model_is_loaded(tmp_path):
    # The file is no checkpoint at all: refusing the rate first shows that nothing was loaded.
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GentoolError, match=r"^rejection=1.5 must be a share of draws in \[0, 1\)"):
        run_eval(compose_config("eval", [f"checkpoint={tmp_path / 'last.pt'}", "device=cpu",
                                         "rejection=1.5"]))
