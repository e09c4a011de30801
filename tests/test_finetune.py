"""`gentool finetune`: the labelled subset, frozen vs fine-tuned encoders, and the errors."""

import json

import pytest
import torch

from conftest import TINY, compose_config
from gentool.data.subsets import labelled_subset
from gentool.errors import GentoolError
from gentool.finetune import run_finetune
from gentool.train import run_train

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


@pytest.mark.parametrize("model,overrides,message", [
    ("gan", [], "has no encoder to fine-tune"),
    ("ae", ["labels_per_class=0"], "must be at least 1"),
    ("ae", ["finetune.head=svm"], "finetune.head=svm is not one of linear, mlp"),
])
def test_bad_requests_are_clear_errors(runs, tmp_path, model, overrides, message):
    with pytest.raises(GentoolError, match=message):
        finetune(runs / model, tmp_path, *overrides)
