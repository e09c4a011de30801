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
from gentool.methods.base import build_optimizer, check_optimizer_options

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


def test_training_from_scratch_refuses_unset_values_once(compose_train, tmp_path,
                                                         check_complete_calls):
    from gentool.train import run_train

    cfg = compose_train("model=ae", "loss=gaussian", "dataset=vectors", "dataset.source.path=x",
                        "device=cpu")
    with pytest.raises(GentoolError, match="^dataset=vectors needs dataset.shape, which has no "
                                           "value"):
        run_train(cfg, tmp_path / "run")
    assert len(check_complete_calls) == 1


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


# A GAN whose players use SGD (the players' Adam betas dropped).
SGD_PLAYERS = ("optimizer=sgd", "~model.generator_optimizer.betas",
               "~model.discriminator_optimizer.betas")


@pytest.mark.parametrize("overrides,message", [
    (["optimizer.lr=abc"], "optimizer.lr is 'abc' but must be a number >= 0; e.g. "
                           "optimizer.lr=0.001."),
    (["optimizer.lr=-0.1"], "optimizer.lr is -0.1 but must be a number >= 0; e.g. "
                            "optimizer.lr=0.001."),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas is [0.9,1.5] but must be a list of 2 values "
                                    "(a number >= 0 and < 1, a number >= 0 and < 1); e.g. "
                                    "optimizer.betas=[0.9,0.999]."),
    (["optimizer=adamw", "optimizer.weight_decay=-1"], "optimizer.weight_decay is -1 but must be "
                                                       "a number >= 0"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum is -1 but must be a number "
                                                 ">= 0"),
    (["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
     "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0"),
    (["model=gan", "dataset=ring", *SGD_PLAYERS, "+model.generator_optimizer.nesterov=true",
      "+model.generator_optimizer.momentum=0"],
     "model.generator_optimizer.nesterov=true needs model.generator_optimizer.momentum > 0 and "
     "optimizer.dampening=0; set model.generator_optimizer.momentum=0.9 or "
     "model.generator_optimizer.nesterov=false."),
    (["model=gan", "dataset=ring", *SGD_PLAYERS, "optimizer.momentum=0.9",
      "+model.discriminator_optimizer.nesterov=true",
      "+model.discriminator_optimizer.dampening=0.1"],
     "model.discriminator_optimizer.nesterov=true needs optimizer.momentum > 0 and "
     "model.discriminator_optimizer.dampening=0"),
    (["model=gan", "dataset=ring", "model.generator_optimizer.lr=-1"],
     "model.generator_optimizer.lr is -1 but must be a number >= 0; e.g. "
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


@pytest.mark.parametrize("overrides", [
    ["optimizer.lr=0"],
    ["model=gan", "dataset=ring", "model.discriminator_optimizer.lr=0"],   # a frozen player
])
def test_a_learning_rate_of_zero_is_accepted(compose_train, overrides):
    cfg = compose_train(*overrides)
    check_method(cfg)   # torch accepts lr=0
    optimizers = build_method(cfg).configure_optimizers(cfg.optimizer)
    assert 0 in [group["lr"] for built in optimizers.values() for group in built.param_groups]


SGD_NESTEROV = {"_target_": "torch.optim.SGD", "lr": 0.1, "nesterov": True, "momentum": 0}


@pytest.mark.parametrize("players", [None, {}])
def test_nesterov_without_players_is_checked_on_the_shared_optimizer(players):
    with pytest.raises(GentoolError, match=r"^optimizer.nesterov=true needs optimizer.momentum"):
        check_optimizer_options(SGD_NESTEROV, players)


def test_nesterov_is_checked_on_what_each_player_gets():
    # The shared settings alone build no optimizer when every player sets its own momentum.
    check_optimizer_options(SGD_NESTEROV, {"generator": {"momentum": 0.9},
                                           "discriminator": {"momentum": 0.5}})
    with pytest.raises(GentoolError, match=r"^optimizer.nesterov=true needs "
                                           r"optimizer.momentum > 0 and optimizer.dampening=0"):
        check_optimizer_options(SGD_NESTEROV, {"generator": {"momentum": 0.9},
                                               "discriminator": None})


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
    assert cfg.mode == "sample" and cfg.format is None and cfg.n == 64   # format: from out=


def test_instantiate_refuses_targets_outside_gentool():
    with pytest.raises(GentoolError, match="refusing to build"):
        instantiate({"_target_": "os.system", "command": "true"})


def test_typed_keys_refuse_wrong_types(compose_train):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_train("trainer.max_steps=abc")


# -- overrides Hydra cannot apply, as gentool's command line composes them ----------------------

def checked(name: str, *overrides: str, explain: bool = True):
    """`name`'s config composed through gentool's config loader, as the command line does."""
    from hydra import compose, initialize_config_module

    from gentool.hydra_guard import checked_composition

    with checked_composition(explain), initialize_config_module("gentool.configs",
                                                                version_base="1.3"):
        return compose(name, overrides=list(overrides))


def refusal(name: str, *overrides: str) -> str:
    from gentool.hydra_guard import HydraConfigRefused

    with pytest.raises(HydraConfigRefused) as refused:
        checked(name, *overrides)
    return str(refused.value)


@pytest.mark.parametrize("name, overrides, sentence", [
    ("train", ["seed=1,2"], "seed=1,2 gives several values, which only a sweep takes; add -m to "
                            "run one job per value."),   # an integer takes no list
    ("train", ["+seed=3"], "seed is already an option, so it takes no leading +; set it with "
                           "seed=3."),
    ("train", ["seed=[1"], "seed=[1 is not an override Hydra can read (no viable alternative at "
                           "input '[1'); write key=value as its grammar describes "
                           "(https://hydra.cc/docs/1.2/advanced/override_grammar/basic)."),
    ("train", ["trainer.progress_bar=maybe"], "trainer.progress_bar is 'maybe' but must be true "
                                              "or false; e.g. trainer.progress_bar=true."),
    ("train", ["trainer.schedule.nme=cosine"], "trainer.schedule.nme is not an option of "
                                               "trainer.schedule; did you mean "
                                               "trainer.schedule.name? (its options: name, "
                                               "warmup_steps, min_lr_ratio, step_size, gamma)."),
    ("train", ["+trainer.foo=1"], "trainer.foo is not an option of trainer=default (its options: "
                                  "max_steps, batch_size, "),
    ("train", ["+dataset.foo=1"], "dataset.foo is not an option of dataset=digits (its options: "
                                  "name, shape, num_classes, range, binarize, validation, "
                                  "source)."),
    ("train", ["++dataset.foo=1"], "dataset.foo is not an option of dataset=digits (its "
                                   "options: "),
    ("train", ["+dataset.vaules=counts"], "dataset.vaules is not an option of dataset=digits; did "
                                          "you mean dataset.values? (its options: "),
    ("train", ["+dataset.input_channels=1"], "dataset.input_channels is not an option of "
                                             "dataset=digits (its options: name, shape, "
                                             "num_classes, range, binarize, validation, "
                                             "source); dataset=derived_pairs and "
                                             "dataset=paired_folder have "
                                             "dataset.input_channels."),
    ("train", ["++dataset.input_channels=1"], "dataset.input_channels is not an option of "
                                              "dataset=digits (its options: "),
    ("train", ["model=pix2pix", "dataset=paired_folder", "+dataset.pair.foo=1"],
     "dataset.pair is not an option of dataset=paired_folder (its options: name, shape, "
     "input_channels, num_classes, range, binarize, validation, source); "
     "dataset=derived_pairs has dataset.pair."),
    ("train", ["model=pix2pix", "dataset=derived_pairs", "+dataset.pair.foo=1"],
     "dataset.pair.foo is not an option of dataset/pair=edges (its options: name, "
     "input_channels, transform)."),
    ("train", ["model=pix2pix", "dataset=derived_pairs", "+dataset.pair.input_chanels=1"],
     "dataset.pair.input_chanels is not an option of dataset/pair=edges; did you mean "
     "dataset.pair.input_channels? (its options: "),
    ("train", ["model=pix2pix", "dataset=derived_pairs", "+dataset.source.values=real"],
     "dataset.source.values is not an option of dataset@dataset.source=fashion_mnist (its "
     "options: name, shape, num_classes, range, binarize, validation, source)."),
    ("train", ["hydra/launcher=slurmm"], "hydra/launcher=slurmm is not a choice of "
                                         "hydra/launcher; did you mean hydra/launcher=slurm? "),
    ("train", ["dataset/pair=edges"], "dataset/pair=edges picks from the config group "
                                      "dataset/pair, which no config chosen here uses"),
    ("sample", ["dataset=ring"], "gentool sample takes the model and its settings from the "
                                 "checkpoint; dataset= is an option of gentool train (the options "
                                 "of gentool sample: checkpoint, n, out, "),
    ("eval", ["trainer.max_steps=5"], "gentool eval takes the model and its settings from the "
                                      "checkpoint; trainer.max_steps is an option of gentool "
                                      "train"),
    ("finetune", ["+model.latent_dim=3"], "gentool finetune takes the model and its settings "
                                          "from the checkpoint; model.latent_dim is an option "
                                          "of gentool train"),
    ("eval", ["metricss=[likelihood]"], "metricss is not an option of gentool eval; did you mean "
                                        "metrics? (its options: checkpoint, metrics, "),
])
def test_a_mistaken_override_is_one_sentence(name, overrides, sentence):
    message = refusal(name, *overrides)
    assert message.startswith(sentence) and message.endswith(".") and "\n" not in message, \
        message
    assert "+" + overrides[0].lstrip("+") not in message or overrides[0].startswith("+"), message


def test_a_key_the_code_takes_but_the_config_lacks_is_added_with_a_plus():
    # The + that Hydra suggests for any unknown key is suggested only where the code the node
    # configures takes the key, and that form then works.
    assert refusal("train", "optimizer.eps=1e-6") == (
        "optimizer.eps is not set in the config of optimizer=adam, but the code it configures "
        "takes it; add it with +optimizer.eps=1e-6.")
    cfg = checked("train", "+optimizer.eps=1e-6")
    built = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.optimizer)
    assert built.param_groups[0]["eps"] == 1e-6
    assert "+" not in refusal("train", "loss.variance=fixed")   # Bernoulli takes no variance


def test_a_key_added_to_a_node_its_code_does_not_take_is_refused_when_built():
    from gentool.methods import check_method

    cfg = checked("train", "+loss.variance=fixed")   # free-form: the loss's code types it
    with pytest.raises(GentoolError) as refused:
        check_method(cfg)
    assert str(refused.value) == ("loss.variance is not an option of "
                                  "gentool.losses.likelihoods.Bernoulli, which takes none; leave "
                                  "it out.")
    with pytest.raises(GentoolError, match="model.latent_dimm is not an option of "
                                           "gentool.methods.vae.VAE; did you mean "
                                           "model.latent_dim?"):
        check_method(checked("train", "+model.latent_dimm=3"))


def test_keys_of_a_data_set_are_those_gentool_reads(compose_train):
    """Every shipped data set holds only keys of config.DATASET_KEYS, so a key added below
    `dataset` outside them is refused (it would be ignored), and those they leave out can be
    added or set with ++."""
    from gentool.config import DATASET_KEYS, PAIR_KEYS

    for dataset in options("dataset"):
        assert set(compose_train(f"dataset={dataset}").dataset) <= set(DATASET_KEYS), dataset
    for pair in options("dataset/pair"):
        cfg = compose_train("dataset=derived_pairs", f"dataset/pair={pair}")
        assert set(cfg.dataset.pair) <= set(PAIR_KEYS), pair
    assert checked("train", "+dataset.values=real").dataset["values"] == "real"
    assert checked("train", "++dataset.validation=5").dataset.validation == 5
    assert checked("train", "model=ae", "dataset=vectors", "dataset.shape=[3]",
                   "dataset.source.path=x", "+dataset.source.labels=y").dataset.source.labels \
        == "y"   # the loader's own options are checked against its signature when it is built


def test_keys_of_image_pairs_are_set_where_the_pair_configs_hold_them():
    """The keys of image pairs are read of the data sets that hold them (++ sets them there),
    and below a derived pair the options of its transform and of its source's loader are
    checked when they are built."""
    pairs = ["model=pix2pix", "dataset=derived_pairs"]
    assert checked("train", "model=pix2pix", "dataset=paired_folder",
                   "++dataset.input_channels=1").dataset.input_channels == 1
    assert checked("train", *pairs, "++dataset.input_channels=1").dataset.input_channels == 1
    cfg = checked("train", *pairs, "+dataset.pair.transform.first_index=2",
                  "+dataset.source.source.foo=1")
    assert cfg.dataset.pair.transform.first_index == 2 and cfg.dataset.source.source.foo == 1


def test_documented_overrides_still_compose():
    cfg = checked("train", "model=gan", "dataset=ring",
                  "model.discriminator.minibatch_discrimination={num_kernels:50,kernel_dim:5}",
                  "model.ema.decay=0.99", "+hydra.job.env_set.OMP_NUM_THREADS=2")
    assert cfg.model.discriminator.minibatch_discrimination.num_kernels == 50
    assert checked("train", "experiment=gan_ring").model.name == "gan"


def test_shell_completion_keeps_hydras_own_errors():
    # While a shell word is completed, a composition that fails only offers no keys (Hydra
    # catches its own exception), and keys added so far are not judged.
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        checked("train", "trainer.max_stpes=20", explain=False)
    assert checked("train", "+foo=1", explain=False).foo == 1


@pytest.mark.parametrize("model, dataset", [("dcgan", "ring"), ("conv_vae", "ring"),
                                            ("doc_ae", "ring"), ("vae", "ring"),
                                            ("doc_vae", "digits"), ("gan", "digits")])
def test_the_models_and_losses_a_refusal_suggests_are_accepted(compose_train, model, dataset):
    """Every model=... (with its loss=... where one is named) and every loss=... that a refusal
    of a model or loss on a data set suggests passes the same checks."""
    import re

    from gentool.methods import check_method

    base = [f"model={model}", f"dataset={dataset}"]
    for extra in ([], ["loss=mse"], ["loss=multinomial"], ["loss=bernoulli"]):
        try:
            check_method(compose_train(*base, *extra))
            continue
        except GentoolError as error:
            message = str(error)
        suggestions = []
        if "needs images" in message or "needs points" in message:
            fix = message.split("; ", 1)[1]
            for part in re.split(r"; |\(|\)", fix):
                models = re.findall(r"model=(\w+)", part)
                losses = re.findall(r"loss=(\w+)", part) or [None]
                suggestions += [[f"model={m}", *([f"loss={loss}"] if loss else [])]
                                for m in models for loss in losses]
        else:
            suggestions = [[*base[:1], f"loss={loss}"] for loss in
                           re.findall(r"loss=(\w+)", message.split("; ", 1)[1])]
        assert suggestions, message
        for suggestion in suggestions:
            check_method(compose_train(*suggestion, f"dataset={dataset}"))


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_passes_the_checks_a_run_starts_with(experiment):
    cfg = checked("train", f"experiment={experiment}")
    check_config(cfg)
    check_method(cfg)


@pytest.mark.parametrize("overrides", [
    ["experiment=gan_toy", "dataset=ring"], ["experiment=gan_toy_small", "dataset=ring"],
    ["experiment=gan_ring", "dataset=grid"], ["experiment=gan_grid", "dataset=ring"],
    ["experiment=gan_toy_small", "dataset=vectors", "dataset.shape=[2]",
     "dataset.source.path=x.npy"],
    ["experiment=dcgan_fashion_mnist", "dataset=mnist"],
    ["experiment=vae_fashion_mnist", "dataset=mnist"],
    ["experiment=iwae_mnist", "dataset=fashion_mnist"],
    ["model=gan", "dataset=fashion_mnist"],   # the MLP GAN follows the data set's shape
    ["model=gan", "dataset=ring"]])
def test_networks_meet_the_data_they_are_built_for(overrides):
    cfg = checked("train", *overrides)
    check_config(cfg)
    check_method(cfg)
    assert list(cfg.model.data_shape) == list(cfg.dataset.shape)


def test_networks_built_for_another_shape_are_refused_before_they_are_built(compose_train):
    cfg = compose_train("model=gan", "dataset=fashion_mnist", "model.data_shape=[2]")
    sentence = ("model.data_shape=[2] builds the networks for 2-D points but "
                "dataset=fashion_mnist holds 1x28x28 images (shape [1, 28, 28]); use "
                "dataset=grid or dataset=ring, or leave model.data_shape out so that it follows "
                "dataset.shape.")
    for check in (check_method, build_method):
        with pytest.raises(GentoolError) as refused:
            check(cfg)
        assert str(refused.value) == sentence


# The presets whose networks are built for 2-D points (model.data_shape: [2]).
TOY_EXPERIMENTS = ["gan_grid", "gan_ring", "gan_toy", "gan_toy_small", "gan_toy_stabilised"]
# The shipped data sets whose shape the config states (vectors leaves it to the user).
SHAPED_DATASETS = [name for name in options("dataset") if not OmegaConf.is_missing(
    OmegaConf.load(CONFIGS / "dataset" / f"{name}.yaml"), "shape")]
# What a user sets of those data sets besides the path to their files.
DATASET_SETTINGS = {"text_folder": ["dataset.num_classes=3"]}


@pytest.mark.parametrize("dataset", SHAPED_DATASETS)
@pytest.mark.parametrize("experiment", TOY_EXPERIMENTS)
def test_what_a_refused_toy_preset_suggests_is_accepted(experiment, dataset):
    """A toy-set preset on other data names the data sets its networks take and the models of
    its method that take the data; each of them passes the checks a run starts with and builds."""
    import re

    data = [f"dataset={dataset}", *DATASET_SETTINGS.get(dataset, [])]
    cfg = checked("train", f"experiment={experiment}", *data)
    assert list(cfg.model.data_shape) == [2]
    if list(cfg.dataset.shape) == [2]:
        check_method(cfg)
        return
    with pytest.raises(GentoolError) as refused:
        check_method(cfg, {"experiment": experiment}, data)
    message = str(refused.value)
    assert message.startswith(f"experiment={experiment} builds its networks for 2-D points "
                              f"(model.data_shape=[2]) but dataset={dataset} holds ")
    fix = message.split("; ", 1)[1]
    points, _, models = fix.partition(f", or drop experiment={experiment} and ")
    assert re.findall(r"dataset=(\w+)", points) == ["grid", "ring"]
    for name in ("grid", "ring"):
        check_method(checked("train", f"experiment={experiment}", f"dataset={name}"))
    assert "loss=" not in models, message   # every GAN model takes the preset's loss
    if cfg.dataset.get("input_channels") is not None:   # image pairs: no GAN of one image
        assert not models, message
    for name in re.findall(r"model=(\w+)", models):
        suggested = checked("train", f"model={name}", *data)
        check_method(suggested)
        build_method(suggested)


def test_a_shape_refusal_blames_what_set_the_networks_shape():
    """The user's own model.data_shape= is to be left out; else the experiment that set it is
    named; a stored config (build_method) names model.data_shape itself."""
    cfg = checked("train", "experiment=gan_ring", "model.data_shape=[3]")
    own = ("model.data_shape=[3] builds the networks for 3-D points but dataset=ring holds 2-D "
           "points (shape [2]); ")
    with pytest.raises(GentoolError, match=r"^model\.data_shape=\[3\] builds") as refused:
        check_method(cfg, {"experiment": "gan_ring"}, ["model.data_shape=[3]"])
    assert str(refused.value).startswith(own)
    assert str(refused.value).endswith(", or leave model.data_shape out so that it follows "
                                       "dataset.shape.")
    preset = checked("train", "experiment=gan_ring", "dataset=digits")
    with pytest.raises(GentoolError, match=r"^experiment=gan_ring builds its networks"):
        check_method(preset, {"experiment": "gan_ring"}, ["dataset=digits"])
    with pytest.raises(GentoolError, match=r"^model\.data_shape=\[2\] builds the networks"):
        build_method(preset)


@pytest.mark.parametrize("shape, typed", [([3], "[3]"), ([1, 16, 16], "[1,16,16]")])
def test_networks_of_a_shape_no_shipped_data_set_has_are_given_one_to_type(shape, typed):
    """The refusal names the data set config that reads files of any shape of the networks'
    kind, set to their shape; that data set passes the checks with those networks."""
    import re

    cfg = checked("train", "model=gan", "dataset=ring", f"model.data_shape={typed}")
    with pytest.raises(GentoolError) as refused:
        check_method(cfg, {}, [f"model.data_shape={typed}"])
    suggested = re.search(r"; use (dataset=\w+ dataset\.source\.path=<[\w.]+> "
                          r"dataset\.shape=\S+), or leave", str(refused.value))
    assert suggested, refused.value
    data = suggested.group(1).replace("<", "").replace(">", "").split()
    assert data[-1] == f"dataset.shape={typed}"
    fitting = checked("train", "model=gan", *data, f"model.data_shape={typed}")
    assert list(fitting.dataset.shape) == shape
    check_method(fitting)


def test_a_toy_preset_follows_the_data_set_when_told_to():
    """`model.data_shape='${dataset.shape}'` lets a toy-set preset resume a checkpoint trained
    on other data (README): the networks follow the data set again and pass the checks."""
    cfg = checked("train", "experiment=gan_toy", "dataset=digits",
                  "model.data_shape=${dataset.shape}")
    assert list(cfg.model.data_shape) == [1, 8, 8]
    check_method(cfg, {"experiment": "gan_toy"}, ["model.data_shape=${dataset.shape}"])
