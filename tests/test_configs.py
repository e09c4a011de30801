"""Tier 1: every option of every config group composes, and what it describes can be built."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import gentool.configs
from gentool.capabilities import Reconstructs, Translates
from gentool.config import check_config, instantiate
from gentool.errors import GentoolError
from gentool.losses.adversarial import AdversarialLoss
from gentool.losses.likelihoods import Likelihood, ReconstructionLoss
from gentool.methods import build_method, check_method
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


@pytest.mark.parametrize("dataset", options("dataset"))
def test_values_left_unset_are_named_before_anything_reads_them(compose_train, dataset):
    """A value the config leaves as ??? (vectors' shape, a folder's path) is one sentence from
    check_config; a config that passes it resolves whole (model.data_shape: ${dataset.shape}
    would otherwise raise InterpolationToMissingValueError in whatever reads it first)."""
    cfg = compose_train(f"dataset={dataset}")
    try:
        check_config(cfg)
    except GentoolError as error:
        assert str(error).startswith(f"dataset={dataset} needs dataset.")
        assert "no value; set" in str(error) and str(error).endswith(".")
    else:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def test_unset_values_are_named_with_how_to_set_them(compose_train):
    cfg = compose_train("model=ae", "loss=gaussian", "dataset=vectors", "dataset.source.path=x.npy")
    with pytest.raises(GentoolError) as refused:
        check_config(cfg)
    assert str(refused.value) == ("dataset=vectors needs dataset.shape, which has no value; set "
                                  "it on the command line, e.g. dataset.shape=[<features>].")
    cfg = compose_train("dataset=text_folder")
    with pytest.raises(GentoolError, match=r"^dataset=text_folder needs dataset.num_classes and "
                                           r"dataset.source.path, which have no value; set them "
                                           r"on the command line, e.g. dataset.num_classes="
                                           r"<classes> dataset.source.path=<path>.$"):
        check_config(cfg)
    cfg = compose_train("model.encoder.hidden=[???,8]", "seed=???")
    with pytest.raises(GentoolError, match=r"^This command needs model.encoder.hidden\[0\] and "
                                           r"seed, .* e.g. model.encoder.hidden=\[...\] "
                                           r"seed=<value>.$"):
        check_config(cfg)


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


@pytest.mark.parametrize("overrides,message", [
    (["optimizer.lr=abc"], "optimizer.lr is 'abc' but must be a number > 0; e.g. "
                           "optimizer.lr=0.001."),
    (["optimizer.lr=-0.1"], "optimizer.lr is -0.1 but must be a number > 0; e.g. "
                            "optimizer.lr=0.001."),
    (["optimizer.lr=0"], "optimizer.lr is 0 but must be a number > 0"),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas is [0.9,1.5] but must be a list of 2 values "
                                    "(a number >= 0 and < 1, a number >= 0 and < 1); e.g. "
                                    "optimizer.betas=[0.9,0.999]."),
    (["optimizer=adamw", "optimizer.weight_decay=-1"], "optimizer.weight_decay is -1 but must be "
                                                       "a number >= 0"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum is -1 but must be a number "
                                                 ">= 0"),
    (["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
     "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0"),
    (["model=gan", "dataset=ring", "model.generator_optimizer.lr=-1"],
     "model.generator_optimizer.lr is -1 but must be a number > 0; e.g. "
     "model.generator_optimizer.lr=0.0002."),
    (["model=dcgan", "model.discriminator_optimizer.betas=[0.5,-0.1]",
      "dataset.shape=[1,8,8]"], "model.discriminator_optimizer.betas is [0.5,-0.1] but must be"),
])
def test_optimizer_options_torch_refuses_are_named_by_their_key(compose_train, overrides,
                                                                 message):
    cfg = compose_train(*overrides)
    with pytest.raises(GentoolError) as refused:
        check_method(cfg)   # before any data is loaded
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("model,key,value,must", [
    ("ae", "model.encoder.hidden", "[0]", "a list of integers >= 1; e.g. "
                                          "model.encoder.hidden=[400]."),
    ("vae", "model.decoder.hidden", "[400,0]", "a list of integers >= 1"),
    ("doc_vae", "model.encoder.hidden", "[500,-1]", "a list of integers >= 1"),
    ("gan", "model.generator.hidden", "[0]", "a list of integers >= 1"),
    ("gan", "model.discriminator.hidden", "[256,0]", "a list of integers >= 1; e.g. "
                                                     "model.discriminator.hidden=[256,256]."),
    ("conv_vae", "model.encoder.channels", "0", "an integer >= 1; e.g. "
                                                "model.encoder.channels=32."),
    ("conv_ae", "model.decoder.max_channels", "0", "an integer >= 1"),
    ("dcgan", "model.generator.channels", "0", "an integer >= 1; e.g. "
                                               "model.generator.channels=64."),
    ("dcgan", "model.discriminator.max_channels", "-8", "an integer >= 1"),
    ("pix2pix", "model.generator.channels", "0", "an integer >= 1"),
    ("pix2pix", "model.discriminator.max_channels", "0", "an integer >= 1"),
])
def test_layers_without_units_are_refused(compose_train, model, key, value, must):
    cfg = compose_train(f"model={model}", f"{key}={value}")
    with pytest.raises(GentoolError) as refused:
        check_method(cfg)   # before any data is loaded
    assert str(refused.value).startswith(f"{key} is {value} but must be {must}")


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_composes(compose_train, trainer):
    cfg = compose_train(f"trainer={trainer}")
    assert cfg.trainer.max_steps > 0


def test_sample_config_composes():
    from conftest import compose_config

    cfg = compose_config("sample", ["checkpoint=x.pt"])
    assert cfg.mode == "sample" and cfg.format == "grid" and cfg.n == 64


def test_instantiate_refuses_targets_outside_gentool():
    with pytest.raises(GentoolError, match="Refusing to build"):
        instantiate({"_target_": "os.system", "command": "true"})


def test_typed_keys_refuse_wrong_types(compose_train):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_train("trainer.max_steps=abc")
