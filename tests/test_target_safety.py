"""A checkpoint or a config never runs code: `_target_` is checked on what it resolves to, and
the `hydra` node, which Hydra acts on itself, is checked before Hydra acts on it.

Unit tests of the resolver and of `instantiate`, then the three ways a config reaches the installed
`gentool` command: inside a checkpoint (sample, eval, finetune, train resume), from a searchpath
config file, and on the command line. Then the hydra node (logging, callbacks, launcher, sweeper,
environment, search path): every composition Hydra makes, checked in-process and through the
installed command. Every payload would create a marker file if it ran (the controls show that the
hydra-node payloads do run when Hydra gets them unchecked); each test asserts the refusal and that
the marker does not exist.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

import gentool.config
import gentool.hydra_guard
from gentool.config import (UnsafeConfig, check_targets, check_stored_config, instantiate,
                            resolve_target)
from gentool.data import cifar10
from gentool.engine.checkpoint import load_checkpoint
from gentool.errors import GentoolError
from gentool.hydra_guard import (CALLBACKS, CheckedConfigLoader, HydraConfigRefused, check_logging,
                                 check_plugin, checked_composition)
from gentool.losses.likelihoods import MSE
from gentool.methods.vae import VAE
from data_fixtures import write_cifar10
from conftest import CLI_TINY as TINY, assert_user_error

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

def shipped_targets(hydra_node: bool = False) -> set[str]:
    """Every `_target_` of the shipped config tree: outside the `hydra` node (what
    gentool.config.instantiate builds), or inside it (what Hydra builds: its callbacks)."""
    found: set[str] = set()

    def walk(node, inside_hydra):
        if isinstance(node, dict):
            if "_target_" in node and inside_hydra == hydra_node:
                found.add(node["_target_"])
            for key, value in node.items():
                walk(value, inside_hydra or key == "hydra")
        elif isinstance(node, list):
            for value in node:
                walk(value, inside_hydra)

    for path in CONFIGS.rglob("*.yaml"):
        walk(yaml.safe_load(path.read_text()), False)
    return found


def test_the_shipped_hydra_callbacks_are_the_ones_the_guard_allows():
    assert shipped_targets(hydra_node=True) == set(CALLBACKS)


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
    with pytest.raises(UnsafeConfig, match="refusing to build") as refused:
        resolve_target(target)
    assert reason in str(refused.value) and repr(target) in str(refused.value)


@pytest.mark.parametrize("target", [42, None, ["os", "system"], {"a": 1}, print, os.system,
                                    io.BytesIO, torch.load])
def test_non_string_targets_are_refused(target):
    with pytest.raises(UnsafeConfig, match="refusing to build"):
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
    assert f"refusing to build {key}:" in str(refused.value)
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
    # (decoder, an option VAE takes, holds a list here only to have a target inside one)
    instantiate(OmegaConf.create({"model": {
        "_target_": "gentool.methods.vae.VAE",
        "encoder": {"_target_": "gentool.nets.mlp.MLPEncoder", "_partial_": True},
        "decoder": [{"_target_": "torch.optim.SGD"}]}}).model)
    config = handed[0]
    assert config._get_node("_target_")._value() is VAE
    assert config.encoder._get_node("_target_")._value().__name__ == "MLPEncoder"
    assert config.decoder[0]._get_node("_target_")._value() is torch.optim.SGD


def test_check_targets_returns_a_copy_with_the_resolved_objects():
    optimizer = {"_target_": "torch.optim.SGD"}
    node = {"model": {"_target_": "gentool.methods.vae.VAE", "_args_": [optimizer]}}
    checked = check_targets(node)
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
                                                             "encoder": make(marker)},
                                                   "dataset": {"name": "digits"}})
    with pytest.raises(GentoolError, match=re.escape(f"{evil} is refused: its stored config "
                                                     "sets model.encoder._target_ to 'gentool.")):
        load_checkpoint(evil)
    assert not marker.exists()


def test_load_checkpoint_checks_a_finetune_runs_pretrained_config(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "finetuned.pt"
    torch.save({"format_version": 1, "step": 4,
                "config": {"model": {"name": "vae"}, "dataset": {"name": "digits"}},
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
def trained(forked, tmp_path_factory) -> Path:
    """A real checkpoint of a tiny VAE run on digits (what the payloads are planted into)."""
    root = tmp_path_factory.mktemp("trained")
    result = run(forked, root, "train", *TINY, "hydra.run.dir=run")
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


def run(forked, cwd: Path, *args):
    """The installed command, in a process forked from the tests' server (conftest.forked)."""
    return forked.run(args, cwd, timeout=600)


@pytest.mark.parametrize("command", [
    ["sample", "n=4", "out=s.png", "device=cpu"],
    ["eval", "device=cpu", "metrics=[likelihood]", "iwae_k=2"],
    ["finetune", "finetune.steps=2", "device=cpu"],
    ["train", *TINY],
])
def test_commands_refuse_a_checkpoint_with_a_payload(command, forked, trained, tmp_path):
    marker = tmp_path / "MARKER"
    evil = planted(trained, tmp_path, "extra", system_payload(marker))
    given = f"resume={evil}" if command[0] == "train" else f"checkpoint={evil}"
    result = run(forked, tmp_path, *command, given)
    assert_user_error(result, f"{evil} is refused: its stored config sets model.extra._target_ "
                              "to 'gentool.engine.files.os.system', which walks through the "
                              "module os")
    assert not marker.exists()


def test_sample_refuses_a_checkpoint_with_a_torch_load_payload(forked, trained, tmp_path):
    marker = tmp_path / "MARKER"
    evil = planted(trained, tmp_path, "encoder", torch_load_payload(marker))
    result = run(forked, tmp_path, "sample", f"checkpoint={evil}", "device=cpu")
    assert_user_error(result, "is refused: its stored config sets model.encoder._target_ to "
                              "'gentool.engine.checkpoint.torch.load'")
    assert not marker.exists()


def test_train_refuses_a_searchpath_config_with_a_payload(forked, tmp_path):
    marker = tmp_path / "MARKER"
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "evil.yaml").write_text(yaml.safe_dump({
        "defaults": ["vae"],
        "extra": system_payload(marker),
        "decoder": {"_target_": "gentool.engine.checkpoint.torch.load",
                    "f": {"_target_": "gentool.data.download.io.BytesIO", "_args_": ["x"]}}}))
    result = run(forked, tmp_path, "train", f"hydra.searchpath=[file://{tmp_path}/mine]",
                 "model=evil", *TINY)
    assert_user_error(result, "refusing to build model.decoder._target_: "
                              "'gentool.engine.checkpoint.torch.load' walks through the module "
                              "torch")
    assert not marker.exists()


@pytest.mark.parametrize("overrides, key", [
    (["model._target_=gentool.engine.files.os.system", "+model._args_=['touch {marker}']"],
     "model._target_"),
    (["+model.extra={{_target_: gentool.engine.files.os.system, _args_: ['touch {marker}']}}"],
     "model.extra._target_"),
    (["+optimizer.extra=[{{_target_: gentool.engine.files.os.system, "
      "_args_: ['touch {marker}']}}]"], "optimizer.extra[0]._target_"),
])
def test_train_refuses_a_payload_given_on_the_command_line(overrides, key, forked, tmp_path):
    marker = tmp_path / "MARKER"
    given = [override.format(marker=marker) for override in overrides]
    result = run(forked, tmp_path, "train", *given, *TINY)
    assert_user_error(result, f"refusing to build {key}: 'gentool.engine.files.os.system'")
    assert not marker.exists()


# -- the hydra node ------------------------------------------------------------------------------

def checked(name: str, *overrides: str):
    """The config `name` composed as the `gentool` command composes it (through
    CheckedConfigLoader), with its hydra node."""
    with checked_composition(), initialize_config_module("gentool.configs", version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=True)


def refused(*overrides: str, name: str = "train") -> str:
    with pytest.raises(HydraConfigRefused) as refusal:
        checked(name, *overrides)
    return str(refusal.value)


@pytest.mark.parametrize("name", ["train", "sample", "eval", "finetune"])
def test_every_command_config_passes(name):
    assert checked(name).hydra.launcher._target_.endswith("BasicLauncher")


@pytest.mark.parametrize("setup", [
    ["hydra/launcher=parallel", "hydra.launcher.n_jobs=4", "hydra.launcher.pre_dispatch=3*n_jobs"],
    ["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
     "+hydra.launcher.additional_parameters={qos: high, mail_user: me@lab.org, time-min: 30}"],
    ["hydra/launcher=slurm", "hydra.launcher.additional_parameters={qos: high, account: mylab}"],
    ["hydra/job_logging=stdout", "hydra/hydra_logging=hydra_debug"],
    ["hydra/job_logging=disabled", "hydra/hydra_logging=none"],
    ["hydra/job_logging=none", "hydra/hydra_logging=disabled"],
    ["hydra.job_logging.handlers.file.filename=${hydra:runtime.output_dir}/mine.log"],
    ["+hydra.job.env_set.OMP_NUM_THREADS=2", "hydra.job.env_copy=[HOME]"],
    ["hydra.searchpath=[file:///tmp]", "hydra.job.chdir=false", "hydra.sweeper.max_batch_size=2"],
])
def test_hydra_setups_gentool_documents_pass(setup):
    checked("train", *setup)


@pytest.mark.parametrize("overrides, key, reason", [
    # callbacks: gentool's own only, without options
    (["+hydra.callbacks.x._target_=io.open"], "hydra.callbacks.x", "is a Hydra callback"),
    (["+hydra.callbacks.new_folders._args_=[x]"], "hydra.callbacks.new_folders",
     "is a Hydra callback"),
    # logging: named classes only, no imports through values, .log files only
    (["+hydra.job_logging.handlers.x={class: zipfile.ZipFile, file: m, mode: w}"],
     "hydra.job_logging.handlers.x.class", "is not a handler class"),
    (["+evil=zipfile.ZipFile", "+hydra.hydra_logging.handlers.x={class: '${evil}'}"],
     "hydra.hydra_logging.handlers.x.class", "'zipfile.ZipFile' is not a handler class"),
    (["+hydra.job_logging.formatters.simple.class=gentool.data.download.io.open"],
     "hydra.job_logging.formatters.simple.class", "is not a formatter class"),
    (["hydra.hydra_logging.handlers.console.stream=ext://gentool.engine.files.os.system"],
     "hydra.hydra_logging.handlers.console.stream", "names an object logging.config would import"),
    (["hydra.job_logging.root.level=ext://os.system"], "hydra.job_logging.root.level",
     "names an object"),
    (["hydra.job_logging.handlers.file.filename=/home/me/.bashrc"],
     "hydra.job_logging.handlers.file.filename", "is not a .log file"),
    (["+hydra.job_logging.formatters.simple.style='{'"],
     "hydra.job_logging.formatters.simple.style", "walk Python objects"),
    (["hydra.job_logging.handlers.file.filename=${oc.env:GENTOOL_NO_SUCH_VARIABLE}"],
     "hydra.job_logging", "does not resolve before Hydra uses it"),
    # launcher: the plugins gentool names, their own options, nothing nested to build
    (["hydra.launcher._target_=gentool.engine.files.os.system"], "hydra.launcher._target_",
     "is not a plugin gentool uses"),
    (["hydra.launcher._target_=hydra_plugins.hydra_submitit_launcher.submitit_launcher."
      "LocalLauncher"], "hydra.launcher._target_", "is not a plugin gentool uses"),
    (["+hydra.launcher.x={_target_: io.open}"], "hydra.launcher.x", "is not an option of "
                                                                   "BasicLauncher"),
    (["hydra/launcher=slurm", "+hydra.launcher.additional_parameters={x: {_target_: io.open}}"],
     "hydra.launcher.additional_parameters.x._target_", "is a _target_ Hydra would build"),
    (["hydra/launcher=slurm", "hydra.launcher.setup=['touch m']"], "hydra.launcher.setup",
     "is shell commands"),
    (["hydra/launcher=slurm", "+hydra.launcher.srun_args=['--prolog=./m']"],
     "hydra.launcher.srun_args", "is not an option of SlurmLauncher"),
    (["hydra/launcher=slurm", "+hydra.launcher.additional_parameters.export='LD_PRELOAD=m.so'"],
     "hydra.launcher.additional_parameters.export", "is not an sbatch option"),
    (["hydra/launcher=slurm", "+hydra.launcher.additional_parameters.chd=m"],
     "hydra.launcher.additional_parameters.chd", "is not an sbatch option"),
    # additional_parameters is an open mapping (no + needed), checked all the same
    (["hydra/launcher=slurm", "hydra.launcher.additional_parameters={export: ALL, qos: high}"],
     "hydra.launcher.additional_parameters.export", "is not an sbatch option"),
    (["hydra/launcher=slurm", "hydra.launcher.partition='gpu\ntouch m'"],
     "hydra.launcher.partition", "holds a line break"),
    (["hydra/launcher=slurm", "hydra.job.name='x\ntouch m'"], "hydra.launcher.name",
     "holds a line break"),
    (["hydra/launcher=parallel", "hydra.launcher.pre_dispatch='__import__(\"os\")'"],
     "hydra.launcher.pre_dispatch", "is an expression joblib would evaluate"),
    # sweeper
    (["hydra.sweeper._target_=gentool.engine.files.os.system"], "hydra.sweeper._target_",
     "is not a plugin gentool uses"),
    (["+hydra.sweeper.x={_target_: io.open}"], "hydra.sweeper.x", "is not an option of "
                                                                 "BasicSweeper"),
    # the job's environment and working directory
    (["+hydra.job.env_set.LD_PRELOAD=m.so"], "hydra.job.env_set.LD_PRELOAD",
     "is an environment variable a config may not set"),
    (["+hydra.job.env_set.PYTHONPATH=."], "hydra.job.env_set.PYTHONPATH", "may not set"),
    (["hydra.job.chdir=true"], "hydra.job.chdir", "would start the job inside its run directory"),
    # search path entries that are modules to import
    (["hydra.searchpath=[pkg://json]"], "hydra.searchpath[0]",
     "has Hydra import the module 'json'"),
    (["hydra.searchpath=[file:///tmp,structured://json]"], "hydra.searchpath[1]",
     "has Hydra import the module 'json'"),
])
def test_hydra_node_settings_that_run_code_are_refused(overrides, key, reason):
    message = refused(*overrides)
    assert message.startswith(f"refusing to use {key}: ") and reason in message, message
    assert message.count(";") == 1 and message.endswith("."), message


def test_each_job_of_a_sweep_is_checked(tmp_path):
    """Hydra composes each job's config again from its sweep values (here a config group that
    brings a logging payload with the second option only) and configures logging from it."""
    searchpath = evil_experiment(tmp_path / "mine", {
        "job_logging": {"handlers": {"x": {"class": "zipfile.ZipFile"}}}})
    (tmp_path / "mine" / "experiment" / "fine.yaml").write_text("# @package _global_\nseed: 3\n")
    assert checked("train", searchpath, "experiment=fine").seed == 3
    assert "hydra.job_logging.handlers.x.class" in refused(searchpath, "experiment=evil")
    with checked_composition(), initialize_config_module("gentool.configs", version_base="1.3"):
        loader = GlobalHydra.instance().hydra.config_loader
        master = loader.load_configuration("train", [searchpath, "experiment=fine,evil"],
                                           run_mode=RunMode.MULTIRUN)
        assert loader.load_sweep_config(master, ["experiment=fine"]).seed == 3
        with pytest.raises(HydraConfigRefused, match="hydra.job_logging.handlers.x.class"):
            loader.load_sweep_config(master, ["experiment=evil"])


def test_the_checking_loader_travels_to_launcher_workers():
    """Launchers pickle Hydra's loader into their worker processes and SLURM jobs, which compose
    each job's config again there: the loader arrives as itself, and so does a refusal."""
    loader = CheckedConfigLoader(create_config_search_path("pkg://gentool.configs"))
    assert type(pickle.loads(pickle.dumps(loader))) is CheckedConfigLoader
    refusal = pickle.loads(pickle.dumps(HydraConfigRefused("refusing to use x: y.")))
    assert isinstance(refusal, HydraConfigRefused) and str(refusal) == "refusing to use x: y."
    assert not isinstance(refusal, Exception)   # no `except Exception` in Hydra swallows it


def test_config_path_must_be_a_folder_or_gentools_configs():
    for config_path in ("pkg://json", "structured://json"):
        with pytest.raises(HydraConfigRefused, match="refusing to use --config-path: "):
            CheckedConfigLoader(create_config_search_path(config_path))
    for config_path in ("file:///tmp", "/tmp", "pkg://gentool.configs", "pkg://gentool/configs"):
        CheckedConfigLoader(create_config_search_path(config_path))


@pytest.mark.parametrize("node, key, reason", [
    ({"handlers": {"x": {"()": "io.open", "file": "m", "mode": "w"}}},
     "hydra.job_logging.handlers.x.()", "is a factory that logging.config would call"),
    ({"formatters": {"x": {"()": "gentool.engine.files.os.system"}}},
     "hydra.job_logging.formatters.x.()", "is a factory"),
    ({"filters": {"x": {"()": "io.open"}}}, "hydra.job_logging.filters.x.()", "is a factory"),
    ({"handlers": {"console": {"class": "logging.StreamHandler", ".": {"emit": "x"}}}},
     "hydra.job_logging.handlers.console..", "sets attributes"),
    ({"handlers": {"x": "ext://os.system"}}, "hydra.job_logging.handlers.x", "names an object"),
    ({"handlers": {"x": "cfg://formatters"}}, "hydra.job_logging.handlers.x", "names an object"),
    ({"handlers": {"x": ["logging.StreamHandler"]}}, "hydra.job_logging.handlers.x",
     "is not a mapping of options"),
    ({"handlers": ["logging.StreamHandler"]}, "hydra.job_logging.handlers",
     "is not a mapping of names to options"),
    ({"handlers": {"x": {"class": "logging.handlers.SocketHandler"}}},
     "hydra.job_logging.handlers.x.class", "is not a handler class"),
    (["version", 1], "hydra.job_logging", "is not a logging config"),
])
def test_logging_configs_name_only_logging_classes(node, key, reason):
    with pytest.raises(UnsafeConfig) as refusal:
        check_logging(node, "hydra.job_logging")
    assert refusal.value.key == key and reason in str(refusal.value), str(refusal.value)


OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
OPTUNA_OPTIONS = {"_target_", "defaults", "sampler", "direction", "storage", "study_name",
                  "n_trials", "n_jobs", "max_failure_rate", "search_space", "custom_search_space",
                  "params"}


@pytest.mark.parametrize("extra, key, reason", [
    ({"custom_search_space": "gentool.engine.files.os.system"},
     "hydra.sweeper.custom_search_space", "names a function the Optuna sweeper would call"),
    ({"sampler": {"_target_": "gentool.engine.files.os.system"}},
     "hydra.sweeper.sampler._target_", "is not a class of optuna.samplers"),
    ({"sampler": {"_target_": "optuna.samplers.TPESampler",
                  "constraints_func": {"_target_": "io.open", "_partial_": True}}},
     "hydra.sweeper.sampler", "is not a class of optuna.samplers"),
    ({"storage": {"_target_": "io.open"}}, "hydra.sweeper.storage._target_",
     "is a _target_ Hydra would build"),
    ({"study_name": "${oc.env:HOME}"}, "hydra.sweeper.study_name", "still holds an "
                                                                   "interpolation"),
])
def test_the_optuna_sweeper_builds_optuna_samplers_only(extra, key, reason, monkeypatch):
    """hydra-optuna-sweeper is an optional extra: its options are given here."""
    real = gentool.hydra_guard._plugin_options
    monkeypatch.setattr(gentool.hydra_guard, "_plugin_options",
                        lambda conf: OPTUNA_OPTIONS if "optuna" in conf else real(conf))
    node = {"_target_": OPTUNA, "n_trials": 20, **extra}
    with pytest.raises(UnsafeConfig) as refusal:
        check_plugin(node, "hydra.sweeper", gentool.hydra_guard.SWEEPERS, "hydra/sweeper=...")
    assert refusal.value.key.startswith(key) and reason in str(refusal.value), str(refusal.value)


# The hydra-node payloads, as Hydra itself acts on them (no gentool check in between): the
# controls for the refusals below, showing the payloads are live in this Hydra version.
LIVE = {
    "callbacks": (["+hydra.callbacks.x._target_=io.open",
                   "+hydra.callbacks.x._args_=['{marker}', w]"],
                  "from hydra._internal.callbacks import Callbacks; Callbacks(cfg)"),
    "logging": (["+hydra.hydra_logging.handlers.x={{class: zipfile.ZipFile, file: '{marker}', "
                 "mode: w}}"],
                "from hydra.core.utils import configure_log\n"
                "try:\n    configure_log(cfg.hydra.hydra_logging)\nexcept ValueError: pass"),
    "launcher": (["hydra/launcher=slurm", "+hydra.launcher.additional_parameters={{x: "
                  "{{_target_: io.open, _args_: ['{marker}', w]}}}}"],
                 "from hydra.utils import instantiate\n"
                 "try:\n    instantiate(cfg.hydra.launcher)\nexcept Exception: pass"),
}


@pytest.mark.parametrize("part", sorted(LIVE))
def test_the_hydra_node_payloads_run_when_unchecked(part, tmp_path):
    marker = tmp_path / "MARKER"
    overrides, act = LIVE[part]
    script = ("import sys, gentool.config\ngentool.config.setup()\n"
              "from hydra import compose, initialize_config_module\n"
              "with initialize_config_module('gentool.configs', version_base='1.3'):\n"
              "    cfg = compose('train', sys.argv[1:], return_hydra_config=True)\n" + act)
    subprocess.run([sys.executable, "-c", script,
                    *[override.format(marker=marker) for override in overrides]],
                   cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert marker.exists()


def evil_experiment(folder: Path, hydra: dict) -> str:
    """A `# @package _global_` config file experiment/evil.yaml under `folder` that sets `hydra`;
    the overrides that select it."""
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    (folder / "experiment" / "evil.yaml").write_text(
        "# @package _global_\n" + yaml.safe_dump({"hydra": hydra}))
    return f"hydra.searchpath=[file://{folder}]"


@pytest.mark.parametrize("hydra, key", [
    ({"callbacks": {"evil": {"_target_": "pathlib.Path.touch",
                             "_args_": [{"_target_": "pathlib.Path", "_args_": ["{marker}"]}]}}},
     "hydra.callbacks.evil: 'pathlib.Path.touch' is a Hydra callback"),
    ({"job_logging": {"version": 1, "handlers": {"evil": {"()": "io.open", "file": "{marker}",
                                                          "mode": "w"}},
                      "root": {"handlers": ["evil"]}}},
     "hydra.job_logging.handlers.evil.(): 'io.open' is a factory that logging.config would call"),
    ({"hydra_logging": {"version": 1, "formatters": {"evil": {"()": "io.open",
                                                              "file": "{marker}", "mode": "w"}},
                        "root": {"level": "INFO"}}},
     "hydra.hydra_logging.formatters.evil.(): 'io.open' is a factory"),
])
def test_train_refuses_a_searchpath_file_that_sets_the_hydra_node(hydra, key, forked,
                                                                  tmp_path):
    marker = tmp_path / "MARKER"
    hydra = yaml.safe_load(yaml.safe_dump(hydra).replace("{marker}", str(marker)))
    searchpath = evil_experiment(tmp_path / "mine", hydra)
    result = run(forked, tmp_path, "train", "-m", searchpath, "experiment=evil", *TINY)
    assert_user_error(result, f"gentool: error: refusing to use {key}")
    assert not marker.exists()


@pytest.mark.parametrize("args, key", [
    (["+hydra.callbacks.x._target_=io.open", "+hydra.callbacks.x._args_=['{marker}', w]"],
     "hydra.callbacks.x: 'io.open' is a Hydra callback"),
    (["+hydra.job_logging.handlers.x={{class: zipfile.ZipFile, file: '{marker}', mode: w}}"],
     "hydra.job_logging.handlers.x.class: 'zipfile.ZipFile' is not a handler class"),
    (["--help", "+hydra.hydra_logging.handlers.x={{class: zipfile.ZipFile, file: '{marker}', "
                "mode: w}}"], "hydra.hydra_logging.handlers.x.class: 'zipfile.ZipFile'"),
    (["-m", "hydra/launcher=slurm", "+hydra.launcher.additional_parameters={{x: {{_target_: "
      "io.open, _args_: ['{marker}', w]}}}}"],
     "hydra.launcher.additional_parameters.x._target_: 'io.open' is a _target_ Hydra would build"),
    (["-m", "hydra.launcher._target_=gentool.engine.files.os.system"],
     "hydra.launcher._target_: 'gentool.engine.files.os.system' is not a plugin gentool uses"),
    (["--cfg", "job", "hydra.job.chdir=true"], "hydra.job.chdir"),
])
def test_train_refuses_hydra_node_payloads_on_the_command_line(args, key, forked, tmp_path):
    marker = tmp_path / "MARKER"
    result = run(forked, tmp_path, "train", *[a.format(marker=marker) for a in args], *TINY)
    assert_user_error(result, f"gentool: error: refusing to use {key}")
    assert not marker.exists()


def test_train_refuses_a_searchpath_launcher_with_a_payload(forked, tmp_path):
    """A hydra/launcher option of one's own replaces the launcher node whole."""
    marker = tmp_path / "MARKER"
    (tmp_path / "mine" / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "mine" / "hydra" / "launcher" / "evil.yaml").write_text(
        "# @package hydra.launcher\n" + yaml.safe_dump({
            "_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
            "n_jobs": 1, "backend": {"_target_": "io.open", "_args_": [str(marker), "w"]}}))
    result = run(forked, tmp_path, "train", "-m", f"hydra.searchpath=[file://{tmp_path}/mine]",
                 "hydra/launcher=evil", *TINY)
    assert_user_error(result, "gentool: error: refusing to use hydra.launcher.backend._target_: "
                              "'io.open' is a _target_ Hydra would build along with "
                              "hydra.launcher; remove hydra.launcher.backend.")
    assert not marker.exists()


def test_a_sweep_refuses_the_job_whose_config_sets_the_hydra_node(forked, tmp_path):
    marker = tmp_path / "MARKER"
    searchpath = evil_experiment(tmp_path / "mine", {"job_logging": {
        "version": 1, "handlers": {"evil": {"()": "io.open", "file": str(marker), "mode": "w"}},
        "root": {"handlers": ["evil"]}}})
    (tmp_path / "mine" / "experiment" / "fine.yaml").write_text("# @package _global_\nseed: 1\n")
    result = run(forked, tmp_path, "train", "-m", searchpath, "experiment=fine,evil", *TINY)
    assert_user_error(result, "refusing to use hydra.job_logging.handlers.evil.()")
    assert not marker.exists() and not list(tmp_path.glob("multirun/*/*/*/*/checkpoints"))


def test_a_search_path_module_is_never_imported(installed, tmp_path):
    """pkg:// and structured:// search-path entries are modules Hydra imports."""
    marker = tmp_path / "MARKER"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "gentool_test_payload.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {**installed["env"],
           "PYTHONPATH": f"{installed['env']['PYTHONPATH']}{os.pathsep}{modules}"}
    for args in (["hydra.searchpath=[pkg://gentool_test_payload]"],
                 ["hydra.searchpath=[structured://gentool_test_payload]"],
                 ["--config-path", "pkg://gentool_test_payload"]):
        result = subprocess.run([installed["gentool"], "train", *args, *TINY], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
        assert_user_error(result, "has Hydra import the module 'gentool_test_payload'; give ")
        assert not marker.exists()
    control = subprocess.run([sys.executable, "-c", "import gentool_test_payload"], env=env)
    assert control.returncode == 0 and marker.exists()


def test_launcher_options_gentool_documents_still_compose(forked, tmp_path):
    result = run(forked, tmp_path, "train", "--cfg", "hydra", "hydra/launcher=slurm",
                 "hydra.launcher.partition=gpu", "+hydra.launcher.additional_parameters.qos=high")
    assert result.returncode == 0, result.stderr
    assert "SlurmLauncher" in result.stdout and "qos: high" in result.stdout
