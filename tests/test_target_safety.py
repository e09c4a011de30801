"""A checkpoint or a config never runs code: `_target_` is checked on what it resolves to.

Unit tests of the resolver and of `instantiate`, then the three ways a config reaches the installed
`gentool` command: inside a checkpoint (sample, eval, finetune, train resume), from a searchpath
config file, and on the command line. Every payload would create a marker file if it ran; each
test asserts the refusal and that the marker does not exist.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

import gentool.config
from gentool.config import (UnsafeConfig, check_config, check_stored_config, instantiate,
                            resolve_target)
from gentool.data import cifar10
from gentool.engine.checkpoint import load_checkpoint
from gentool.errors import GentoolError
from gentool.losses.likelihoods import MSE
from gentool.methods.vae import VAE
from data_fixtures import write_cifar10
from test_cli import TINY, assert_user_error, installed  # noqa: F401 (a fixture)

CONFIGS = Path(gentool.config.__file__).parent / "configs"


class Payload:
    """Unpickling this runs `touch marker` (what a hostile pickle inside a config would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def system_payload(marker: Path) -> dict:
    """os.system reached through a gentool module that imports os."""
    return {"_target_": "gentool.engine.files.os.system", "_args_": [f"touch {marker}"]}


def torch_load_payload(marker: Path) -> dict:
    """torch.load(BytesIO(<pickle>), weights_only=False), both reached through gentool modules."""
    return {"_target_": "gentool.engine.checkpoint.torch.load",
            "f": {"_target_": "gentool.data.download.io.BytesIO",
                  "_args_": [pickle.dumps(Payload(marker))]},
            "weights_only": False}


# -- the resolver --------------------------------------------------------------------------------

def shipped_targets() -> set[str]:
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "_target_" in node:
                found.add(node["_target_"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in CONFIGS.rglob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return found


def test_every_target_of_the_shipped_configs_resolves_and_is_allowed():
    targets = shipped_targets()
    assert len(targets) > 30 and "gentool.methods.vae.VAE" in targets
    for target in sorted(targets):
        obj = resolve_target(target)
        assert callable(obj), target
        if not target.startswith("torch.optim."):
            assert obj.__module__ + "." + obj.__qualname__ == target


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop"])
def test_torch_optimizer_classes_are_allowed(name):
    assert resolve_target(f"torch.optim.{name}") is getattr(torch.optim, name)


@pytest.mark.parametrize("target, reason", [
    ("os.system", "outside gentool"),
    ("builtins.eval", "outside gentool"),
    ("torch.load", "outside gentool"),
    ("subprocess.run", "outside gentool"),
    # a foreign module or function re-exported by a gentool module
    ("gentool.engine.files.os.system", "walks through the module os"),
    ("gentool.engine.checkpoint.torch.load", "walks through the module torch"),
    ("gentool.data.download.io.BytesIO", "walks through the module io"),
    ("gentool.config.hydra_instantiate", "resolves to hydra."),
    ("gentool.data.partial", "resolves to functools.partial"),
    ("gentool.data.torch", "walks through the module torch"),
    # gentool's own code outside what configs build: commands, engine, file writing
    ("gentool.engine.files.atomic_write", "outside the packages configs build from"),
    ("gentool.engine.checkpoint.save_checkpoint", "outside the packages configs build from"),
    ("gentool.cli.main", "outside the packages configs build from"),
    ("gentool.config.instantiate", "outside the packages configs build from"),
    # torch.optim: optimizer classes only
    ("torch.optim.lr_scheduler.LambdaLR", "not an optimizer class"),
    ("torch.optim.lr_scheduler", "not an optimizer class"),
    ("torch.optim.Optimizer", "not an optimizer class"),
    ("torch.optim.adam.torch.load", "not an optimizer class"),
    # walks through private and special attributes, or into objects
    ("gentool.methods.vae.VAE.__init__.__globals__", "no step may start with '_'"),
    ("gentool.methods.vae.__builtins__", "no step may start with '_'"),
    ("gentool.data.cifar10._unpickle", "no step may start with '_'"),
    ("gentool.methods.vae.VAE.forward", "which is a type, not a module"),
    ("gentool.data.download.log", "not a class or function"),
    ("gentool.methods", "not a class or function"),
    ("gentool.no_such_module.Thing", "names nothing"),
    ("gentool.methods.vae.NoSuchClass", "names nothing"),
    ("gentool..methods", "not a dotted Python name"),
    ("gentool.methods.vae.VAE()", "not a dotted Python name"),
    ("", "not a dotted Python name"),
])
def test_targets_are_refused_on_what_they_resolve_to(target, reason):
    with pytest.raises(UnsafeConfig, match="Refusing to build") as refused:
        resolve_target(target)
    assert reason in str(refused.value) and repr(target) in str(refused.value)


@pytest.mark.parametrize("target", [42, None, ["os", "system"], {"a": 1}, print, os.system,
                                    io.BytesIO, torch.load])
def test_non_string_targets_are_refused(target):
    with pytest.raises(UnsafeConfig, match="Refusing to build"):
        resolve_target(target)


def test_a_resolved_object_given_by_code_gets_the_same_check():
    assert resolve_target(MSE) is MSE and resolve_target(torch.optim.SGD) is torch.optim.SGD


# -- instantiate ---------------------------------------------------------------------------------

def refused_without_hydra(monkeypatch, node, key: str, **kwargs) -> str:
    """instantiate(node) is refused, naming `key`, before Hydra is called at all (so no Hydra
    version's own blocklist is relied on)."""
    def hydra_must_not_run(*args, **kwargs):
        raise AssertionError("Hydra was handed a config that should have been refused")

    monkeypatch.setattr(gentool.config, "hydra_instantiate", hydra_must_not_run)
    with pytest.raises(UnsafeConfig) as refused:
        instantiate(node, **kwargs)
    assert refused.value.key == key, str(refused.value)
    assert f"Refusing to build {key}:" in str(refused.value)
    return str(refused.value)


@pytest.mark.parametrize("make", [system_payload, torch_load_payload])
def test_payloads_are_refused_anywhere_in_a_node(make, monkeypatch, tmp_path):
    marker = tmp_path / "MARKER"
    payload = make(marker)
    loss = "gentool.losses.likelihoods.MSE"
    cases = [
        (payload, "_target_"),
        ({"_target_": loss, "extra": payload}, "extra._target_"),
        ({"_target_": loss, "_args_": [payload]}, "_args_[0]._target_"),
        ({"_target_": loss, "items": [1, [payload]]}, "items[1][0]._target_"),
        ({"_target_": loss, "_recursive_": False, "extra": payload}, "extra._target_"),
        ({"_target_": loss, "_partial_": True, "extra": {"deeper": payload}},
         "extra.deeper._target_"),
        ({"_target_": loss, "_convert_": "all", "extra": payload}, "extra._target_"),
        ({"encoder": {"_partial_": True, **payload}}, "encoder._target_"),
    ]
    for node, key in cases:
        refused_without_hydra(monkeypatch, node, key)
        refused_without_hydra(monkeypatch, OmegaConf.create({"model": node}).model, f"model.{key}")
    assert not marker.exists()


def test_interpolations_are_checked_after_resolving(monkeypatch, tmp_path):
    marker = tmp_path / "MARKER"
    cfg = OmegaConf.create({"evil": "gentool.engine.files.os.system",
                            "payload": system_payload(marker),
                            "model": {"_target_": "${evil}", "_args_": [f"touch {marker}"],
                                      "nested": "${payload}"}})
    refused_without_hydra(monkeypatch, cfg.model, "model._target_")
    cfg.model._target_ = "gentool.losses.likelihoods.MSE"
    refused_without_hydra(monkeypatch, cfg.model, "model.nested._target_")
    assert not marker.exists()


def test_escaped_interpolations_are_not_handed_to_hydra(monkeypatch, tmp_path):
    """Hydra resolves a config again while building it: a `\\${...}` that resolves to the text
    `${...}` would be resolved a second time, unchecked."""
    marker = tmp_path / "MARKER"
    decode = ('\\${oc.decode:"{_target_: gentool.engine.files.os.system, '
              f'_args_: [touch {marker}]}}"}}')
    cfg = OmegaConf.create({"loss": {"_target_": "gentool.losses.likelihoods.MSE",
                                     "extra": decode}})
    message = refused_without_hydra(monkeypatch, cfg.loss, "loss.extra")
    assert "interpolation" in message
    refused_without_hydra(monkeypatch, {"_target_": "gentool.losses.likelihoods.MSE"}, "data_dir",
                          data_dir="${oc.env:HOME}")
    assert not marker.exists()


def test_arguments_may_not_carry_nodes_to_build(monkeypatch, tmp_path):
    marker = tmp_path / "MARKER"
    refused_without_hydra(monkeypatch, {"_target_": "gentool.losses.likelihoods.MSE"},
                          "loss._target_", loss=system_payload(marker))
    assert not marker.exists()


def test_hydra_switches_must_be_booleans(monkeypatch):
    for switch in ("_partial_", "_recursive_"):
        message = refused_without_hydra(
            monkeypatch, {"_target_": "gentool.losses.likelihoods.MSE", switch: "yes"}, switch)
        assert "true or false" in message


def test_hydra_is_handed_the_checked_objects_not_their_names(monkeypatch):
    handed = []
    monkeypatch.setattr(gentool.config, "hydra_instantiate",
                        lambda config, **kwargs: handed.append(config))
    instantiate(OmegaConf.create({"model": {
        "_target_": "gentool.methods.vae.VAE",
        "encoder": {"_target_": "gentool.nets.mlp.MLPEncoder", "_partial_": True},
        "optimizers": [{"_target_": "torch.optim.SGD"}]}}).model)
    config = handed[0]
    assert config._get_node("_target_")._value() is VAE
    assert config.encoder._get_node("_target_")._value().__name__ == "MLPEncoder"
    assert config.optimizers[0]._get_node("_target_")._value() is torch.optim.SGD


def test_check_config_returns_a_copy_with_the_resolved_objects():
    optimizer = {"_target_": "torch.optim.SGD"}
    node = {"model": {"_target_": "gentool.methods.vae.VAE", "_args_": [optimizer]}}
    checked = check_config(node)
    assert checked["model"]["_target_"] is VAE
    assert checked["model"]["_args_"][0]["_target_"] is torch.optim.SGD
    assert node["model"]["_target_"] == "gentool.methods.vae.VAE"


def test_a_dataclass_target_builds_although_omegaconf_would_turn_it_into_a_node():
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    split = instantiate({"_target_": "gentool.data.splits.Split"}, images=images, labels=None)
    assert type(split).__name__ == "Split" and torch.equal(split.images, images)


def test_allowed_targets_still_build():
    net = {"_partial_": True, "hidden": [8]}
    cfg = OmegaConf.create({
        "model": {"_target_": "gentool.methods.vae.VAE", "data_shape": [1, 8, 8],
                  "value_range": [0.0, 1.0], "latent_dim": 2,
                  "encoder": {"_target_": "gentool.nets.mlp.MLPEncoder", **net},
                  "decoder": {"_target_": "gentool.nets.mlp.MLPDecoder", **net}},
        "loss": {"_target_": "gentool.losses.likelihoods.Bernoulli"}})
    method = instantiate(cfg.model, loss=instantiate(cfg.loss))
    assert isinstance(method, VAE)
    optimizer = instantiate({"_target_": "torch.optim.SGD", "lr": 0.5},
                            params=list(method.parameters()))
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.5


# -- stored configs ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [system_payload, torch_load_payload])
def test_a_stored_config_is_checked_whole(make, tmp_path):
    marker = tmp_path / "MARKER"
    config = {"model": {"_target_": "gentool.methods.vae.VAE", "name": "vae",
                        "extra": {"list": [make(marker)]}},
              "trainer": {"max_steps": 4}}
    with pytest.raises(GentoolError) as refused:
        check_stored_config(config, "evil.pt")
    message = str(refused.value)
    assert message.startswith("evil.pt is refused: its stored config sets "
                              "model.extra.list[0]._target_ to ")
    assert message.count(";") == 1 and message.endswith("written by gentool train.")
    assert not marker.exists()


@pytest.mark.parametrize("config", [None, [1, 2], "model: vae", 3])
def test_a_stored_config_that_is_not_a_mapping_is_refused(config):
    with pytest.raises(GentoolError, match="evil.pt is refused: its stored config is a"):
        check_stored_config(config, "evil.pt")


def test_a_stored_config_holds_no_interpolations():
    with pytest.raises(GentoolError, match=r"sets data_dir to '\$\{oc.env:HOME\}'"):
        check_stored_config({"data_dir": "${oc.env:HOME}"}, "evil.pt")


def test_the_torch_load_payload_is_live_when_unchecked(tmp_path):
    """The control for the payload above: built without the check, it does run."""
    marker = tmp_path / "MARKER"
    with pytest.raises(RuntimeError, match="magic number"):   # after running the payload
        torch.load(io.BytesIO(pickle.dumps(Payload(marker))), weights_only=False)
    assert marker.exists()


def write_checkpoint(path: Path, config: dict) -> Path:
    torch.save({"format_version": 1, "step": 4, "config": config, "modules": {}}, path)
    return path


@pytest.mark.parametrize("make", [system_payload, torch_load_payload])
def test_load_checkpoint_refuses_a_planted_config(make, tmp_path):
    marker = tmp_path / "MARKER"
    evil = write_checkpoint(tmp_path / "evil.pt", {"model": {"_target_": "gentool.methods.vae.VAE",
                                                             "encoder": make(marker)}})
    with pytest.raises(GentoolError, match=re.escape(f"{evil} is refused: its stored config "
                                                     "sets model.encoder._target_ to 'gentool.")):
        load_checkpoint(evil)
    assert not marker.exists()


def test_load_checkpoint_checks_a_finetune_runs_pretrained_config(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "finetuned.pt"
    torch.save({"format_version": 1, "step": 4, "config": {"labels_per_class": 1},
                "modules": {}, "pretrained_config": {"loss": system_payload(marker)}}, path)
    with pytest.raises(GentoolError, match=r"sets loss\._target_ to"):
        load_checkpoint(path)
    assert not marker.exists()


# -- data files: CIFAR-10's pickle batches -------------------------------------------------------

def test_a_cifar10_batch_that_asks_for_code_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    folder = write_cifar10(tmp_path, n_per_batch=2, n_test=2)
    with open(folder / "data_batch_1", "wb") as file:
        pickle.dump({b"data": Payload(marker), b"labels": [0]}, file, protocol=2)
    with pytest.raises(GentoolError, match="data_batch_1.*asks for posix.system"):
        cifar10.load_cifar10(str(tmp_path), download=False)
    assert not marker.exists()


def test_cifar10_batches_pickled_by_numpy_1_still_load(tmp_path):
    folder = write_cifar10(tmp_path, n_per_batch=2, n_test=2)
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray",
                                                   b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in (folder / "test_batch").read_bytes()
    data = cifar10.load_cifar10(str(tmp_path), download=False)
    assert data.train.images.shape == (10, 3, 32, 32) and data.train.images.dtype == torch.uint8


# -- the installed command -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(installed, tmp_path_factory) -> Path:
    """A real checkpoint of a tiny VAE run on digits (what the payloads are planted into)."""
    root = tmp_path_factory.mktemp("trained")
    result = subprocess.run([installed["gentool"], "train", *TINY, "hydra.run.dir=run"], cwd=root,
                            env=installed["env"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return root / "run" / "checkpoints" / "last.pt"


def planted(trained: Path, folder: Path, key: str, payload: dict) -> Path:
    """A copy of the trained checkpoint whose stored config has `payload` at model.<key>."""
    state = torch.load(trained, weights_only=True)
    state["config"]["model"][key] = payload
    path = folder / "checkpoints" / "evil.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def run(installed, cwd: Path, *args):
    return subprocess.run([installed["gentool"], *args], cwd=cwd, env=installed["env"],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("command", [
    ["sample", "n=4", "out=s.png", "device=cpu"],
    ["eval", "device=cpu", "metrics=[likelihood]", "iwae_k=2"],
    ["finetune", "finetune.steps=2", "device=cpu"],
    ["train", *TINY],
])
def test_commands_refuse_a_checkpoint_with_a_payload(command, installed, trained, tmp_path):
    marker = tmp_path / "MARKER"
    evil = planted(trained, tmp_path, "extra", system_payload(marker))
    given = f"resume={evil}" if command[0] == "train" else f"checkpoint={evil}"
    result = run(installed, tmp_path, *command, given)
    assert_user_error(result, f"{evil} is refused: its stored config sets model.extra._target_ "
                              "to 'gentool.engine.files.os.system', which walks through the "
                              "module os")
    assert not marker.exists()


def test_sample_refuses_a_checkpoint_with_a_torch_load_payload(installed, trained, tmp_path):
    marker = tmp_path / "MARKER"
    evil = planted(trained, tmp_path, "encoder", torch_load_payload(marker))
    result = run(installed, tmp_path, "sample", f"checkpoint={evil}", "device=cpu")
    assert_user_error(result, "is refused: its stored config sets model.encoder._target_ to "
                              "'gentool.engine.checkpoint.torch.load'")
    assert not marker.exists()


def test_train_refuses_a_searchpath_config_with_a_payload(installed, tmp_path):
    marker = tmp_path / "MARKER"
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "evil.yaml").write_text(yaml.safe_dump({
        "defaults": ["vae"],
        "extra": system_payload(marker),
        "decoder": {"_target_": "gentool.engine.checkpoint.torch.load",
                    "f": {"_target_": "gentool.data.download.io.BytesIO", "_args_": ["x"]}}}))
    result = run(installed, tmp_path, "train", f"hydra.searchpath=[file://{tmp_path}/mine]",
                 "model=evil", *TINY)
    assert_user_error(result, "Refusing to build model.decoder._target_: "
                              "'gentool.engine.checkpoint.torch.load' walks through the module "
                              "torch")
    assert not marker.exists()


@pytest.mark.parametrize("overrides, key", [
    (["model._target_=gentool.engine.files.os.system", "+model._args_=['touch {marker}']"],
     "model._target_"),
    (["+model.extra={{_target_: gentool.engine.files.os.system, _args_: ['touch {marker}']}}"],
     "model.extra._target_"),
    (["+optimizer.extra=[{{_target_: gentool.engine.files.os.system, "
      "_args_: ['touch {marker}']}}]"], "extra[0]._target_"),
])
def test_train_refuses_a_payload_given_on_the_command_line(overrides, key, installed, tmp_path):
    marker = tmp_path / "MARKER"
    given = [override.format(marker=marker) for override in overrides]
    result = run(installed, tmp_path, "train", *given, *TINY)
    assert_user_error(result, f"Refusing to build {key}: 'gentool.engine.files.os.system'")
    assert not marker.exists()
