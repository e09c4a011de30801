"""Typed options: config values checked against the annotations of what they configure."""

from __future__ import annotations

import pytest

from gentool.errors import GentoolError
from gentool.options import check_options

VAE = {"_target_": "gentool.methods.vae.VAE", "name": "vae", "latent_dim": 20, "beta": 1.0,
       "kl_warmup_steps": 0,
       "encoder": {"_target_": "gentool.nets.mlp.MLPEncoder", "_partial_": True,
                   "hidden": [400], "activation": "relu"}}
GAN = {"_target_": "gentool.methods.gan.GAN", "latent_dim": 64, "weight_clip": None,
       "instance_noise": {"sigma": 0.0, "anneal_steps": 0}, "ema": {"enabled": True,
                                                                    "decay": 0.999}}


def with_value(node: dict, dotted: str, value) -> dict:
    copy = {k: dict(v) if isinstance(v, dict) else v for k, v in node.items()}
    *parents, key = dotted.split(".")
    inner = copy
    for parent in parents:
        inner = inner[parent]
    inner[key] = value
    return copy


def test_the_shipped_values_pass():
    check_options(VAE, "model")
    check_options(GAN, "model")
    check_options(with_value(GAN, "weight_clip", 0.01), "model")
    check_options(with_value(VAE, "beta", 2), "model")   # an integer is a number


@pytest.mark.parametrize("node,key,value,message", [
    (VAE, "latent_dim", "abc", "model.latent_dim is 'abc' but must be an integer >= 1; e.g. "
                               "model.latent_dim=20."),
    (VAE, "latent_dim", 0, "model.latent_dim is 0 but must be an integer >= 1"),
    (VAE, "latent_dim", True, "model.latent_dim is true but must be an integer"),
    (VAE, "kl_warmup_steps", 1.5, "model.kl_warmup_steps is 1.5 but must be an integer >= 0"),
    (VAE, "beta", -1.0, "model.beta is -1.0 but must be a number >= 0"),
    (VAE, "encoder.hidden", [400, "x"], "model.encoder.hidden is [400,'x'] but must be a list "
                                        "of integers"),
    (VAE, "encoder.activation", 3, "model.encoder.activation is 3 but must be a string"),
    (GAN, "weight_clip", 0, "model.weight_clip is 0 but must be null or a number > 0"),
    (GAN, "ema.decay", 2, "model.ema.decay is 2 but must be a number >= 0 and <= 1"),
    (GAN, "instance_noise.typo", 1, "model.instance_noise.typo is not an option of "
                                    "model.instance_noise; its options are sigma, anneal_steps"),
])
def test_a_wrong_value_is_one_sentence_naming_the_key(node, key, value, message):
    with pytest.raises(GentoolError) as error:
        check_options(with_value(node, key, value), "model")
    assert str(error.value).startswith(message)


def test_targets_outside_gentool_and_unknown_ones_are_left_to_instantiate():
    check_options({"_target_": "torch.optim.Adam", "lr": "fast"}, "optimizer")
    check_options({"_target_": "gentool.methods.nope.Nope", "latent_dim": "abc"}, "model")


def test_a_misspelled_choice_gets_the_closest_option_else_the_usual_fix():
    from gentool.data.batching import check_binarize
    from gentool.data.vectors import check_values
    from gentool.engine.schedule import check_schedule
    import torch

    with pytest.raises(GentoolError, match=r"^dataset.binarize is 'dynamc' but must be one of "
                                           r"none, dynamic, static; did you mean "
                                           r"dataset.binarize=dynamic\?$"):
        check_binarize("dynamc")
    with pytest.raises(GentoolError, match=r"; set dataset.binarize=none\.$"):
        check_binarize("xyz")
    with pytest.raises(GentoolError, match=r"did you mean trainer.schedule.name=cosine\?$"):
        check_schedule({"name": "cosin"})
    with pytest.raises(GentoolError, match=r"did you mean dataset.values=counts\?$"):
        check_values(torch.zeros(2, 2), "count", "train")


def test_every_must_be_one_of_sentence_is_written_by_not_one_of():
    from pathlib import Path

    source = Path(__file__).parents[1] / "src" / "gentool"
    writers = [path.name for path in sorted(source.rglob("*.py"))
               if "must be one of" in path.read_text() and path.name != "options.py"]
    assert not writers
