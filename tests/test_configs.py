"""Tier 1: every option of every config group composes, and what it describes can be built."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import gentool.configs
from gentool.capabilities import Reconstructs, Translates
from gentool.config import instantiate
from gentool.errors import GentoolError
from gentool.losses.adversarial import AdversarialLoss
from gentool.losses.likelihoods import Likelihood, ReconstructionLoss
from gentool.methods import build_method
from gentool.methods.base import build_optimizer

CONFIGS = Path(gentool.configs.__file__).parent


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in ("model", "dataset", "loss", "optimizer", "trainer"):
        assert options(group), group


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_composes_with_the_common_keys(compose_train, dataset):
    cfg = compose_train(f"dataset={dataset}")
    assert set(cfg.dataset) >= {"name", "shape", "num_classes", "range", "binarize", "source"}
    if not OmegaConf.is_missing(cfg.dataset, "shape"):   # vectors: the file's width, given
        assert len(cfg.dataset.shape) in (1, 3)  # points, vectors or images
    if "pair" in cfg.dataset:   # derived from another data set, composed in as its source
        assert cfg.dataset.source.source._target_.startswith("gentool.data.")
    else:
        assert cfg.dataset.source._target_.startswith("gentool.data.")


def loss_fits(model: str, loss) -> bool:
    if model.endswith("gan") or model == "pix2pix":
        return isinstance(loss, AdversarialLoss)
    if model.endswith("vae"):
        return isinstance(loss, Likelihood)
    return isinstance(loss, ReconstructionLoss)


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("loss", options("loss"))
@pytest.mark.parametrize("shape", ["[1,8,8]", "[3,32,32]"])
def test_every_model_builds_with_every_loss_or_refuses_it_clearly(compose_train, model, loss,
                                                                     shape):
    data = [f"dataset.shape={shape}"]
    if model == "pix2pix":   # image pairs of the same sizes: grey edges -> digits, grey -> colour
        data = {"[1,8,8]": ["dataset=derived_pairs", "dataset@dataset.source=digits"],
                "[3,32,32]": ["dataset=derived_pairs", "dataset@dataset.source=cifar10",
                              "dataset/pair=colorize"]}[shape]
    cfg = compose_train(f"model={model}", f"loss={loss}", *data)
    if not loss_fits(model, instantiate(cfg.loss)):
        with pytest.raises(GentoolError, match=f"loss={loss} does not fit model={model}"):
            build_method(cfg)
        return
    if "unit" not in getattr(instantiate(cfg.loss), "models_values", ("unit",)):   # counts only
        with pytest.raises(GentoolError, match=f"loss={loss} models counts values but "
                                               "dataset=.* holds unit values"):
            build_method(cfg)
        return
    method = build_method(cfg)
    x = torch.rand(2, *[int(v) for v in cfg.dataset.shape])
    if isinstance(method, Translates):
        inputs = x[:, :method.input_channels]
        assert method.translate(inputs).shape == x[:, method.input_channels:].shape
    elif isinstance(method, Reconstructs):
        assert method.reconstruct(x).shape == x.shape
    else:
        assert method.sample(2).shape == x.shape


def test_each_model_picks_its_default_loss(compose_train):
    assert compose_train("model=vae").loss._target_.endswith("Bernoulli")
    assert compose_train("model=ae").loss._target_.endswith("MSE")
    assert compose_train("model=ae", "loss=gaussian").loss._target_.endswith("Gaussian")


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_optimizer_builds(compose_train, optimizer):
    cfg = compose_train(f"optimizer={optimizer}")
    built = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.optimizer)
    assert built.param_groups[0]["lr"] == cfg.optimizer.lr


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_composes(compose_train, trainer):
    cfg = compose_train(f"trainer={trainer}")
    assert cfg.trainer.max_steps > 0


def test_sample_config_composes():
    from conftest import compose_config

    cfg = compose_config("sample", ["checkpoint=x.pt"])
    assert cfg.mode == "sample" and cfg.format is None and cfg.n == 64   # format: from out=


def test_instantiate_refuses_targets_outside_gentool():
    with pytest.raises(GentoolError, match="Refusing to build"):
        instantiate({"_target_": "os.system", "command": "true"})


def test_typed_keys_refuse_wrong_types(compose_train):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_train("trainer.max_steps=abc")
