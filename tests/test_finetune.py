"""`gentool finetune`: the labelled subset, label spreading and its control, frozen vs
fine-tuned network heads, and the errors."""

import json

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, compose_config
from gentool.data import build_data, take
from gentool.data.subsets import labelled_subset
from gentool.errors import GentoolError
from gentool.finetune import EncoderClassifier, make_optimizer, run_finetune, scratch_head
from gentool.metrics.classifier import accuracy
from gentool.spreading_classifier import Pixels, SpreadingClassifier
from gentool.train import run_train
from gentool.trained import load_trained_method

QUICK = ["device=cpu", "finetune.steps=30", "finetune.batch_size=16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    for model in ("ae", "vae", "gan"):
        run_train(compose_config("train", [*TINY, f"model={model}"]), root / model)
    return root


def finetune(run, out, *overrides):
    cfg = compose_config("finetune", [*QUICK, f"checkpoint={run}/checkpoints/last.pt",
                                      *overrides])
    run_finetune(cfg, out)
    return json.loads((out / "metrics.json").read_text()), torch.load(
        out / "checkpoints" / "last.pt", weights_only=True)


def test_subset_has_exactly_k_per_class_is_seeded_and_nested():
    labels = torch.arange(10).repeat_interleave(30)[torch.randperm(300)]
    subset = labelled_subset(labels, 7, seed=3)
    assert torch.bincount(labels[subset], minlength=10).tolist() == [7] * 10
    assert torch.equal(subset, labelled_subset(labels, 7, seed=3))
    assert not torch.equal(subset, labelled_subset(labels, 7, seed=4))
    assert set(subset.tolist()) <= set(labelled_subset(labels, 20, seed=3).tolist())
    with pytest.raises(GentoolError, match="class 0 has only 30"):
        labelled_subset(labels, 31, seed=0)


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_frozen_encoder_keeps_its_weights_and_both_accuracies_are_reported(runs, tmp_path,
                                                                            model):
    metrics, state = finetune(runs / model, tmp_path, "labels_per_class=3")
    assert metrics["labelled_examples"] == 30
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and 0.0 <= metrics["test/accuracy_scratch"] <= 1
    pretrained = torch.load(runs / model / "checkpoints" / "last.pt",
                            weights_only=True)["modules"]["method"]
    classifier = state["modules"]["classifier"]
    for name, tensor in pretrained.items():
        assert torch.equal(classifier[f"method.{name}"], tensor), name


def test_fine_tuning_end_to_end_changes_the_encoder(runs, tmp_path):
    _, state = finetune(runs / "ae", tmp_path, "finetune.freeze_encoder=false",
                        "finetune.head=mlp", "finetune.hidden=16")
    pretrained = torch.load(runs / "ae" / "checkpoints" / "last.pt",
                            weights_only=True)["modules"]["method"]
    classifier = state["modules"]["classifier"]
    assert not torch.equal(classifier["method.encoder.net.0.weight"],
                           pretrained["encoder.net.0.weight"])
    assert classifier["head.0.weight"].shape == (16, 32)      # the MLP head's hidden layer


def test_same_seed_same_result(runs, tmp_path):
    first, _ = finetune(runs / "ae", tmp_path / "a")
    second, _ = finetune(runs / "ae", tmp_path / "b")
    assert first == second


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_standardised_codes_use_the_statistics_of_the_train_codes(runs, tmp_path, model):
    _, state = finetune(runs / model, tmp_path, "finetune.standardize_codes=true")
    trained = load_trained_method(runs / model / "checkpoints" / "last.pt", torch.device("cpu"))
    cfg = compose_config("finetune", QUICK)
    data_cfg = OmegaConf.merge(trained.train_cfg.dataset, {"binarize": "none"})
    data = build_data(data_cfg, cfg.data_dir, torch.device("cpu"), batch_size=64, seed=0,
                      drop_last=False)
    train_x, _ = take(data.train, data.train.num_examples)
    test_x, _ = take(data.test, data.test.num_examples)
    with torch.no_grad():
        codes = trained.method.encode(train_x)
    classifier = state["modules"]["classifier"]
    assert torch.allclose(classifier["code_mean"], codes.mean(0), atol=1e-5)
    assert torch.allclose(classifier["code_std"], codes.std(0), atol=1e-5)
    with torch.no_grad():   # not the test codes' statistics
        assert not torch.allclose(classifier["code_mean"], trained.method.encode(test_x).mean(0))


def test_standardised_codes_reach_the_head_with_zero_mean_and_unit_std():
    class Shifted(torch.nn.Module):
        latent_dim = 3

        def encode(self, x):
            return x * torch.tensor([2.0, 5.0, 0.0]) + torch.tensor([1.0, -4.0, 7.0])

    classifier = EncoderClassifier(Shifted(), 2, "linear", 8, freeze=True)
    train = torch.randn(500, 3)
    classifier.fit_code_statistics(train, batch_size=64)
    standardised = (classifier.codes(train) - classifier.code_mean) / classifier.code_std
    assert torch.allclose(standardised[:, :2].mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(standardised[:, :2].std(0), torch.ones(2), atol=1e-5)
    assert classifier.code_std[2] == 1.0          # a constant code keeps its scale
    assert torch.all(standardised[:, 2] == 0)


def test_encoder_lr_scale_sets_the_encoder_group_learning_rate(runs):
    trained = load_trained_method(runs / "ae" / "checkpoints" / "last.pt", torch.device("cpu"))
    classifier = EncoderClassifier(trained.method, 10, "linear", 8, freeze=False)
    optimizer = make_optimizer(classifier, lr=1e-3, weight_decay=1e-4, encoder_lr_scale=0.1)
    head, encoder = optimizer.param_groups
    assert head["lr"] == 1e-3 and encoder["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in head["params"]} == {id(p) for p in classifier.head.parameters()}
    assert {id(p) for p in encoder["params"]} == {id(p) for p in trained.method.parameters()}
    assert encoder["weight_decay"] == 1e-4
    frozen = EncoderClassifier(trained.method, 10, "linear", 8, freeze=True)
    assert len(make_optimizer(frozen, 1e-3, 0.0, 0.1).param_groups) == 1   # the head alone


def test_fine_tuning_with_a_lower_encoder_rate_moves_the_encoder_less(runs, tmp_path):
    pretrained = torch.load(runs / "ae" / "checkpoints" / "last.pt",
                            weights_only=True)["modules"]["method"]["encoder.net.0.weight"]
    moved = {}
    for scale in ("1.0", "0.01"):
        _, state = finetune(runs / "ae", tmp_path / scale, "finetune.freeze_encoder=false",
                            "finetune.head=linear", f"finetune.encoder_lr_scale={scale}")
        weight = state["modules"]["classifier"]["method.encoder.net.0.weight"]
        moved[scale] = (weight - pretrained).abs().max().item()
    assert 0 < moved["0.01"] < moved["1.0"] / 10


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_label_spreading_is_the_default_and_reports_its_control(runs, tmp_path, model):
    metrics, state = finetune(runs / model, tmp_path, "labels_per_class=2")
    assert set(metrics) == {"labels_per_class", "labelled_examples", "test/accuracy",
                            "test/accuracy_scratch", "test/accuracy_control"}
    assert all(0 <= metrics[key] <= 1 for key in metrics if key.startswith("test/"))
    classifier = state["modules"]["classifier"]
    trained = load_trained_method(runs / model / "checkpoints" / "last.pt", torch.device("cpu"))
    cfg = compose_config("finetune", QUICK)
    data = build_data(OmegaConf.merge(trained.train_cfg.dataset, {"binarize": "none"}),
                      cfg.data_dir, torch.device("cpu"), batch_size=64, seed=0, drop_last=False)
    train_x, train_y = take(data.train, data.train.num_examples)
    # Every training example is a node of the graph, and the labels reached every one of them.
    assert classifier["train_points"].shape == (len(train_x), trained.method.latent_dim)
    assert classifier["distributions"].shape == (len(train_x), 10)
    assert torch.allclose(classifier["distributions"].sum(0), torch.ones(10))
    subset = labelled_subset(train_y, 2, seed=0)
    # With alpha < 1 a seed keeps its own class.
    assert torch.equal(classifier["distributions"][subset].argmax(1), train_y[subset])


def test_the_pixel_control_spreads_over_the_standardised_pixels(runs, tmp_path):
    metrics, _ = finetune(runs / "ae", tmp_path, "finetune.spreading.pixel_control=true")
    assert 0 <= metrics["test/accuracy_control_pixels"] <= 1
    cfg = compose_config("finetune", QUICK)
    trained = load_trained_method(runs / "ae" / "checkpoints" / "last.pt", torch.device("cpu"))
    data = build_data(OmegaConf.merge(trained.train_cfg.dataset, {"binarize": "none"}),
                      cfg.data_dir, torch.device("cpu"), batch_size=64, seed=0, drop_last=False)
    train_x, train_y = take(data.train, data.train.num_examples)
    test_x, test_y = take(data.test, data.test.num_examples)
    subset = labelled_subset(train_y, 10, seed=0)
    pixels = SpreadingClassifier(Pixels(train_x.shape[1:]), 10, 10, 0.99, 200, standardize=True)
    pixels.fit(train_x, subset, train_y[subset])
    assert pixels.train_points.shape == (len(train_x), train_x[0].numel())
    assert metrics["test/accuracy_control_pixels"] == accuracy(pixels, test_x, test_y)


def test_the_control_can_be_left_out_and_network_heads_have_none(runs, tmp_path):
    without, _ = finetune(runs / "ae", tmp_path / "a", "finetune.spreading.control=false")
    assert "test/accuracy_control" not in without
    assert "test/accuracy_control_pixels" not in without     # not asked for
    mlp, _ = finetune(runs / "ae", tmp_path / "b", "finetune.head=mlp")
    assert "test/accuracy_control" not in mlp


def test_scratch_network_is_linear_beside_label_spreading_and_the_same_head_otherwise():
    cfg = compose_config("finetune", QUICK).finetune
    assert scratch_head(cfg) == "linear"
    cfg.head = "mlp"
    assert scratch_head(cfg) == "mlp"
    cfg.scratch_head = "linear"
    assert scratch_head(cfg) == "linear"


@pytest.mark.parametrize("model,overrides,message", [
    ("gan", [], "has no encoder to fine-tune"),
    ("ae", ["labels_per_class=0"], "must be at least 1"),
    ("ae", ["finetune.head=svm"],
     "finetune.head is 'svm' but must be one of label_spreading, linear, mlp; e.g. "
     "finetune.head=label_spreading."),
    ("ae", ["finetune.scratch_head=label_spreading"],
     "finetune.scratch_head is 'label_spreading' but must be one of linear, mlp; e.g. "
     "finetune.scratch_head=linear."),
    ("ae", ["finetune.freeze_encoder=false"],
     "finetune.head=label_spreading trains no weights, so it needs finetune.freeze_encoder=true"),
    ("ae", ["finetune.encoder_lr_scale=0"], "finetune.encoder_lr_scale"),
    ("ae", ["finetune.spreading.alpha=1"], "finetune.spreading.alpha is 1.0 but must be"),
    ("ae", ["finetune.spreading.neighbours=0"], "finetune.spreading.neighbours is 0 but must be"),
    ("ae", ["finetune.spreading.iterations=0"], "finetune.spreading.iterations is 0 but must be"),
    ("ae", ["finetune.spreading.neighbours=100000"],
     "finetune.spreading.neighbours=100000 needs more than that many training examples"),
])
def test_bad_requests_are_clear_errors(runs, tmp_path, model, overrides, message):
    with pytest.raises(GentoolError, match=message):
        finetune(runs / model, tmp_path, *overrides)


def test_values_left_unset_are_refused_once(runs, tmp_path, check_complete_calls):
    with pytest.raises(GentoolError, match="finetune.steps is 0 but must be"):
        finetune(runs / "ae", tmp_path, "finetune.steps=0")
    assert len(check_complete_calls) == 1
    with pytest.raises(GentoolError, match="needs finetune.lr, which has no value; set it"):
        finetune(runs / "ae", tmp_path, "finetune.lr=???")
