"""Tier 3: every refusal of bad input, through the installed `gentool` command.

A table of cases, each run in a folder that holds a copy of one finished tiny run (trained once
per module) plus whatever the case prepares (odd checkpoints, broken report files, image
folders). For each: a non-zero status, no traceback, one sentence on stderr, and every file that
was in the folder before is byte-identical after. Each command is a process of its own, forked
from the tests' server that has gentool's libraries imported (conftest.forked); the cases marked
`fresh` start the console script in a new interpreter, as a user does. File-system failures (disk
full, read-only folders) run on a small tmpfs, where the platform lets the tests mount one.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CLI_TINY, assert_user_error
from gentool.overrides import merged_overrides

# Refused trainings start their own run directory, so the finished run stays a bystander.
NEW = [*CLI_TINY, "hydra.run.dir=new_run"]
CHECKPOINT = "run/checkpoints/last.pt"
LOG_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\]\[[A-Z]+\] ")


# -- helpers -------------------------------------------------------------------------------------

def run_gentool(forked, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return forked.run(args, cwd)


def run_fresh(installed: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([installed["gentool"], *args], cwd=cwd, env=installed["env"],
                          capture_output=True, text=True, timeout=300)


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_unchanged(before: dict[str, str], folder: Path) -> None:
    after = hashes(folder)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"changed or removed: {changed}"


def paths(folder: Path) -> set[str]:
    """Every file and folder under `folder`, as relative paths."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_nothing_new(before: set[str], folder: Path) -> None:
    """A refused start leaves no new run directory, events file, log or data folder behind."""
    new = sorted(paths(folder) - before)
    assert not new, f"left behind: {new}"


def assert_one_sentence(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user error whose stderr, log lines aside, is the single line `gentool: error: ...`."""
    assert_user_error(result, *fragments)
    message = [line for line in result.stderr.splitlines()
               if line.strip() and not LOG_LINE.match(line)]
    assert len(message) == 1, result.stderr
    # A sentence that ends in its fix: a full stop, or the question of a did-you-mean.
    assert message[0].startswith("gentool: error: ") and message[0].endswith((".", "?")), \
        result.stderr
    # It goes on in lower case, as a sentence does after "gentool: error:" (a name such as
    # CIFAR-10 keeps its capitals).
    assert not re.match(r"[A-Z][a-z]*[ ,;:]", message[0][len("gentool: error: "):]), \
        result.stderr


# -- what cases prepare ----------------------------------------------------------------------------

def odd_checkpoint(**changes) -> Callable[[Path], None]:
    """A copy of the tiny run's checkpoint with some fields replaced, as odd.pt."""
    def write(folder: Path) -> None:
        state = torch.load(folder / CHECKPOINT, weights_only=True)
        state.update(changes)
        torch.save(state, folder / "odd.pt")
    return write


def raw_file(name: str, content: bytes) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return write


def pickled_checkpoint(folder: Path) -> None:
    # An optimizer object (not its state dict) can only be loaded by unpickling Python classes.
    torch.save({"step": 1, "config": {}, "modules": {},
                "optimizer": torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1)},
               folder / "pickled.pt")


def report_run(metrics: str, overrides: str = "- seed=0\n") -> Callable[[Path], None]:
    """A finished run under sweep/0 with these metrics.json and .hydra/overrides.yaml texts."""
    def write(folder: Path) -> None:
        run = folder / "sweep" / "0"
        (run / ".hydra").mkdir(parents=True)
        (run / "metrics.json").write_text(metrics)
        (run / ".hydra" / "overrides.yaml").write_text(overrides)
    return write


def image_folder(good: int = 0, garbage: int = 0, truncated: int = 0) -> Callable[[Path], None]:
    """pics/: `good` PNGs, `garbage` files that are no image at all, and `truncated` JPEGs whose
    header reads but whose pixels stop a third of the way."""
    def write(folder: Path) -> None:
        pics = folder / "pics"
        pics.mkdir()
        rng = np.random.default_rng(0)
        for i in range(good):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                pics / f"good{i}.png")
        for i in range(garbage):
            (pics / f"garbage{i}.png").write_bytes(b"not an image" * i)
        for i in range(truncated):
            path = pics / f"cut{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path,
                                                                                    quality=95)
            path.write_bytes(path.read_bytes()[:path.stat().st_size // 3])
    return write


FOLDER = ["dataset=folder", "dataset.source.path=pics", "dataset.shape=[3,16,16]",
          "trainer.batch_size=2", "trainer.image_examples=2", "trainer.scatter_examples=2"]
OPTUNA_INSTALLED = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None


@dataclass
class Case:
    args: tuple[str, ...]
    fragments: tuple[str, ...]
    prepare: Callable[[Path], None] | None = None
    marks: list = field(default_factory=list)
    # Run as a user starts the command (the console script in a fresh interpreter), not forked.
    fresh: bool = False
    # The error ends a run that had started (a diverged loss, an image that fails to decode in
    # a batch): its new run directory stays, the other files stay unchanged.
    started: bool = False


CASES = {
    # trainer options: ranges of the schema
    "checkpoint_every=0": Case(("train", *merged_overrides(*NEW, "trainer.checkpoint_every=0")),
                               ("trainer.checkpoint_every is 0 but must be an integer >= 1",)),
    "log_every=0": Case(("train", *merged_overrides(*NEW, "trainer.log_every=0")),
                        ("trainer.log_every is 0 but must be an integer >= 1",)),
    "eval_every=0": Case(("train", *merged_overrides(*NEW, "trainer.eval_every=0")),
                         ("trainer.eval_every is 0 but must be an integer >= 1",)),
    "max_steps=0": Case(("train", *merged_overrides(*NEW, "trainer.max_steps=0")),
                        ("trainer.max_steps is 0 but must be an integer >= 1",)),
    # checked before the run starts, though the loop reads it only at its first step
    "schedule name": Case(("train", *NEW, "trainer.schedule.name=exp"),
                          ("trainer.schedule.name is 'exp' but must be one of constant, cosine, "
                           "linear, step; e.g. trainer.schedule.name=cosine",)),
    "schedule name, unfinished run": Case(
        ("train", *merged_overrides(*CLI_TINY, "trainer.max_steps=12", "hydra.run.dir=run",
                                    "trainer.schedule.name=exp")),
        ("trainer.schedule.name is 'exp'",)),
    "schedule name, finished run": Case(
        ("train", *CLI_TINY, "hydra.run.dir=run", "trainer.schedule.name=exp"),
        ("trainer.schedule.name is 'exp'",)),
    "max_steps=many": Case(("train", *merged_overrides(*NEW, "trainer.max_steps=many")),
                           ("trainer.max_steps is 'many' but must be an integer >= 1; e.g. "
                            "trainer.max_steps=10000.",)),   # the config's value
    # keys and types of the command line, as Hydra composes it (gentool.overrides)
    "unknown trainer key": Case(("train", *NEW, "trainer.max_stpes=20"),
                                ("trainer.max_stpes is not an option of trainer=default; did you "
                                 "mean trainer.max_steps? (its options: max_steps, batch_size,",),
                                fresh=True),
    "unknown model key": Case(("train", *NEW, "model.latent_dimm=3"),
                              ("model.latent_dimm is not an option of model=vae; did you mean "
                               "model.latent_dim? (its options: name, data_shape,",)),
    "key of another loss": Case(("train", *NEW, "loss.variance=foo"),
                                ("loss.variance is not an option of loss=bernoulli, which takes "
                                 "none; loss=gaussian has loss.variance.",)),
    "key added to a loss that has none": Case(
        ("train", *NEW, "+loss.variance=fixed"),
        ("loss.variance is not an option of loss=bernoulli, which takes none; loss=gaussian has "
         "loss.variance.",)),
    "key added to a data set": Case(("train", *NEW, "+dataset.foo=1"),
                                    ("dataset.foo is not an option of dataset=digits (its "
                                     "options: name, shape, num_classes, range, binarize, "
                                     "validation, source).",)),
    "key of image pairs added to a data set": Case(
        ("train", *NEW, "dataset=digits", "+dataset.input_channels=1"),
        ("dataset.input_channels is not an option of dataset=digits (its options: name, shape, "
         "num_classes, range, binarize, validation, source); dataset=derived_pairs and "
         "dataset=paired_folder have dataset.input_channels.",)),
    "key added to the pair of derived pairs": Case(
        ("train", *NEW, "model=pix2pix", "dataset=derived_pairs", "+dataset.pair.foo=1"),
        ("dataset.pair.foo is not an option of dataset/pair=edges (its options: name, "
         "input_channels, transform).",)),
    "unknown top-level key added": Case(("train", *NEW, "+foo=1"),
                                        ("foo is not an option of gentool train (its options: "
                                         "model, dataset, loss, optimizer, trainer, seed,",)),
    "key below an integer": Case(("train", *NEW, "seed.x=1"),
                                 ("seed.x is not an option: seed is an integer, which has no "
                                  "options; set seed itself, e.g. seed=0.",)),
    "key below a trainer option": Case(("train", *NEW, "trainer.max_steps.foo=1"),
                                       ("trainer.max_steps.foo is not an option: "
                                        "trainer.max_steps is an integer >= 1, which has no "
                                        "options; set trainer.max_steps itself, e.g. "
                                        "trainer.max_steps=4.",)),
    "a word for the schedule": Case(("train", *NEW, "trainer.schedule=abc"),
                                    ("trainer.schedule is 'abc' but holds options (name, ",
                                     "each set by its own key; e.g. trainer.schedule.name=")),
    "launcher option without the launcher": Case(
        ("train", *NEW, "hydra.launcher.n_jobs=2"),
        ("hydra.launcher.n_jobs is not an option of hydra/launcher=basic, which takes none; ",
         "hydra/launcher=parallel", "have hydra.launcher.n_jobs.")),
    "sbatch option misspelt": Case(
        ("train", "-m", "hydra/launcher=slurm", *NEW,
         "hydra.launcher.additional_parameters.qoss=high"),
        ("hydra.launcher.additional_parameters.qoss: 'high' is not an sbatch option gentool "
         "passes on from a config; write hydra.launcher.additional_parameters.qos if you meant "
         "qos, or set it through sbatch's SBATCH_* environment variables instead.",)),
    "--cfg with -m": Case(("train", "-m", *NEW, "seed=0,1", "--cfg", "job"),
                          ("--cfg prints the config of one job, so it does not take -m; drop -m "
                           "and give one value of each swept key to print that job's config.",)),
    "seed=abc": Case(("train", *NEW, "seed=abc"),
                     ("seed is 'abc' but must be an integer; e.g. seed=0.",)),
    # an integer takes no list, a config group one choice per job: only -m is offered
    "sweep values without -m": Case(("train", *NEW, "seed=1,2"),
                                    ("seed=1,2 gives several values, which only a sweep takes; "
                                     "add -m to run one job per value.",)),
    "sweep of models without -m": Case(("train", *NEW, "model=vae,ae"),
                                       ("model=vae,ae gives several values, which only a sweep "
                                        "takes; add -m to run one job per value.",)),
    "list values without brackets": Case(("train", *NEW, "model.encoder.hidden=3,4"),
                                         ("add -m to run one job per value, or write "
                                          "model.encoder.hidden=[3,4] for a list.",)),
    "string values without quotes": Case(("train", *merged_overrides(*NEW, "device=a,b")),
                                         ("add -m to run one job per value, or quote it for one "
                                          "string: device='a,b'.",)),
    "unknown dataset": Case(("train", *NEW, "dataset=fashionmnist"),
                            ("dataset=fashionmnist is not a choice of dataset; did you mean "
                             "dataset=fashion_mnist? (its choices: cifar10,",)),
    "unknown source of derived pairs": Case(
        ("train", *NEW, "model=pix2pix", "dataset=derived_pairs",
         "dataset@dataset.source=fashon_mnist", "dataset/pair=edges"),
        ("dataset@dataset.source=fashon_mnist is not a choice of dataset; did you mean "
         "dataset@dataset.source=fashion_mnist? (its choices:",)),
    # + appends a config group that the config already chooses from
    "+model= for train": Case(("train", *NEW, "+model=ae"),
                              ("model is already chosen (model=vae); drop the +: model=ae.",)),
    "+experiment= for train": Case(("train", *NEW, "+experiment=gan_ring"),
                                   ("experiment already has its place in the config "
                                    "(experiment=null); drop the +: experiment=gan_ring.",)),
    "several models at once": Case(("train", *NEW, "model=[vae,ae]"),
                                   ("model=[vae,ae] chooses several configs of model, but a run "
                                    "takes one; choose one (model=vae), or add -m and write "
                                    "model=vae,ae to run one job per choice.",)),
    "~ on a trainer option": Case(("train", *merged_overrides(*NEW, "~trainer.max_steps")),
                                  ("trainer.max_steps cannot be removed, as gentool train reads "
                                   "it; give it a value instead, e.g. trainer.max_steps=10000.",)),
    "~ on a null trainer option": Case(("train", *NEW, "~trainer.grad_clip"),
                                       ("trainer.grad_clip cannot be removed, as gentool train "
                                        "reads it; give it a value instead, e.g. "
                                        "trainer.grad_clip=null.",)),
    # a key given twice, of which Hydra would take the last without a word
    "model given twice": Case(("train", *NEW, "model=vae", "model=ae"),
                              ("model= is given twice (model=vae, then model=ae); keep one.",)),
    "trainer key given twice": Case(("train", *NEW, "trainer.max_steps=5"),
                                    ("trainer.max_steps= is given twice (trainer.max_steps=4, "
                                     "then trainer.max_steps=5); keep one.",), fresh=True),
    "added key given twice": Case(("train", *NEW, "+optimizer.eps=1e-6", "++optimizer.eps=1e-7"),
                                  ("optimizer.eps= is given twice (+optimizer.eps=1e-6, then "
                                   "++optimizer.eps=1e-7); keep one.",)),
    "removed and set": Case(("train", *NEW, "~trainer.grad_clip", "trainer.grad_clip=1"),
                            ("trainer.grad_clip= is given twice (~trainer.grad_clip, then "
                             "trainer.grad_clip=1); keep one.",)),
    "run directory given twice": Case(("train", *NEW, "hydra.run.dir=other"),
                                      ("hydra.run.dir= is given twice (hydra.run.dir=new_run, "
                                       "then hydra.run.dir=other); keep one.",)),
    "sweep with a key given twice": Case(("train", "-m", *NEW, "model=vae,ae", "model=conv_vae"),
                                         ("model= is given twice (model=vae,ae, then "
                                          "model=conv_vae); keep one.",)),
    "unknown experiment": Case(("train", *NEW, "experiment=gan_rings"),
                               ("did you mean experiment=gan_ring?",)),
    "model= for sample": Case(("sample", f"checkpoint={CHECKPOINT}", "model=vae"),
                              ("gentool sample takes the model and its settings from the "
                               "checkpoint; model= is an option of gentool train",)),
    "+model= for sample": Case(("sample", f"checkpoint={CHECKPOINT}", "+model=vae"),
                               ("gentool sample takes the model and its settings from the "
                                "checkpoint; model= is an option of gentool train",)),
    "sample n=abc": Case(("sample", f"checkpoint={CHECKPOINT}", "n=abc"),
                         ("n is 'abc' but must be an integer >= 1; e.g. n=64.",)),
    "sample +num=5": Case(("sample", f"checkpoint={CHECKPOINT}", "+num=5"),
                          ("num is not an option of gentool sample (its options: checkpoint, "
                           "n, out,",)),
    # a value that must be one of a few words: the words, and the closest of them
    "sample mode=sampel": Case(("sample", f"checkpoint={CHECKPOINT}", "mode=sampel"),
                               ("mode is 'sampel' but must be one of classes, interpolate, "
                                "reconstruct, sample, translate, traverse; did you mean "
                                "mode=sample?",)),
    "sample format=gird": Case(("sample", f"checkpoint={CHECKPOINT}", "format=gird"),
                               ("format is 'gird' but must be one of grid, npy, folder; did you "
                                "mean format=grid?",)),
    "precision=64": Case(("train", *NEW, "trainer.precision=64"),
                         ("trainer.precision is '64' but must be one of 32, bf16, 16; e.g. "
                          "trainer.precision=32.",)),
    "loss.variance=fixd": Case(("train", *NEW, "loss=gaussian", "loss.variance=fixd"),
                               ("loss.variance is 'fixd' but must be one of fixed, shared, "
                                "per_pixel; did you mean loss.variance=fixed?",)),
    "finetune.head=mpl": Case(("finetune", f"checkpoint={CHECKPOINT}", "hydra.run.dir=ft",
                               "finetune.head=mpl"),
                              ("finetune.head is 'mpl' but must be one of label_spreading, "
                               "linear, mlp; did you mean finetune.head=mlp?",)),
    "eval metrics a word": Case(("eval", f"checkpoint={CHECKPOINT}", "metrics=likelihood"),
                                ("metrics is 'likelihood' but must be null or a list; e.g. "
                                 "metrics=[likelihood].",)),
    "eval metrics=[]": Case(("eval", f"checkpoint={CHECKPOINT}", "metrics=[]"),
                            ("metrics=[] chooses no suite; leave metrics= out for every one that "
                             "applies, or name some (model=vae on dataset=digits supports "
                             "metrics=[likelihood,naive_mc,reconstruction,samples,",)),
    "eval rejection= without a discriminator": Case(
        ("eval", f"checkpoint={CHECKPOINT}", "rejection=0.2", "metrics=[likelihood]",
         "iwae_k=2"),
        ("rejection=0.2 drops draws by a discriminator's score, and this model has none; drop "
         "rejection= for it.",)),
    # model options: the annotations of the constructors
    "latent_dim=0": Case(("train", *NEW, "model.latent_dim=0"),
                         ("model.latent_dim is 0 but must be an integer >= 1",), fresh=True),
    "latent_dim=abc": Case(("train", *NEW, "model.latent_dim=abc"),
                           ("model.latent_dim is 'abc' but must be an integer >= 1",)),
    "hidden width 0": Case(("train", *NEW, "model.encoder.hidden=[0]"),
                           ("model.encoder.hidden is [0] but must be a list of integers >= 1; "
                            "e.g. model.encoder.hidden=[400]",)),
    "kl_warmup_steps=1.5": Case(("train", *NEW, "model.kl_warmup_steps=1.5"),
                                ("model.kl_warmup_steps is 1.5 but must be an integer >= 0",)),
    "unknown model": Case(("train", *NEW, "model=vea"),
                          ("model=vea is not a choice of model; did you mean model=vae? (its "
                           "choices: ae, ae_linear,",)),
    # optimizer options: named by their key, before torch's constructor sees them
    "optimizer.lr=abc": Case(("train", *NEW, "optimizer.lr=abc"),
                             ("optimizer.lr is 'abc' but must be a number >= 0; e.g. "
                              "optimizer.lr=0.001",)),
    "optimizer.lr=-0.1": Case(("train", *NEW, "optimizer.lr=-0.1"),
                              ("optimizer.lr is -0.1 but must be a number >= 0",)),
    "generator lr of a GAN": Case(("train", *NEW, "model=gan", "dataset=ring",
                                   "model.generator_optimizer.lr=-1"),
                                  ("model.generator_optimizer.lr is -1 but must be a number >= 0; "
                                   "e.g. model.generator_optimizer.lr=0.0002",)),
    "optimizer key misspelt": Case(("train", *NEW, "+optimizer.weight_decy=0.1"),
                                   ("optimizer.weight_decy is not an option of optimizer=adam; "
                                    "did you mean optimizer.weight_decay?",)),
    "unknown key of a player's optimizer": Case(
        ("train", *NEW, "model=gan", "dataset=ring", "+model.generator_optimizer.fo=1"),
        ("model.generator_optimizer.fo is not an option of torch.optim.Adam (its options: lr,",)),
    "dcgan on points": Case(("train", *NEW, "model=dcgan", "dataset=ring"),
                            ("model=dcgan needs images", "dataset=ring holds 2-D points",
                             "use model=ae, model=ae_linear or model=gan for points (model=doc_ae "
                             "with loss=gaussian or loss=mse; model=doc_vae or model=vae with "
                             "loss=gaussian)")),
    "toy GAN preset on images": Case(
        ("train", *NEW, "experiment=gan_ring", "dataset=fashion_mnist"),
        ("experiment=gan_ring builds its networks for 2-D points (model.data_shape=[2]) but "
         "dataset=fashion_mnist holds 1x28x28 images (shape [1, 28, 28]); use dataset=grid or "
         "dataset=ring, or drop experiment=gan_ring and use model=cgan, model=dcgan or model=gan "
         "for images.",), fresh=True),
    "toy GAN preset on digits": Case(("train", *NEW, "experiment=gan_toy", "dataset=digits"),
                                     ("experiment=gan_toy builds its networks for 2-D points",
                                      "dataset=digits holds 1x8x8 images (shape [1, 8, 8])")),
    "toy GAN preset on vectors": Case(
        ("train", *NEW, "experiment=gan_grid", "dataset=newsgroups20"),
        ("dataset=newsgroups20 holds 2000-D points (shape [2000]); use dataset=grid or "
         "dataset=ring, or drop experiment=gan_grid and use model=gan for points.",)),
    "networks of another shape": Case(
        ("train", *NEW, "model=gan", "dataset=ring", "model.data_shape=[3]"),
        ("model.data_shape=[3] builds the networks for 3-D points but dataset=ring holds 2-D "
         "points (shape [2]); use dataset=vectors dataset.source.path=<file.npy> "
         "dataset.shape=[3], or leave model.data_shape out so "
         "that it follows dataset.shape.",)),
    "conditional GAN on unlabelled images": Case(
        ("train", *NEW, "model=cgan", "dataset=frey_faces"),
        ("model=cgan is class-conditional but dataset=frey_faces has no labels "
         "(dataset.num_classes is null); use a labelled data set, or model.conditional=false.",)),
    "MLP GAN on image pairs": Case(
        ("train", *NEW, "model=gan", "dataset=derived_pairs"),
        ("model=gan needs images or points, and dataset=derived_pairs holds 2x28x28 image pairs "
         "(shape [2, 28, 28]); use model=pix2pix for image pairs, or pick a data set of images "
         "or points.",)),
    "toy GAN preset with networks of another shape": Case(
        ("train", *NEW, "experiment=gan_ring", "model.data_shape=[3]"),
        ("model.data_shape=[3] builds the networks for 3-D points but dataset=ring holds 2-D "
         "points (shape [2]); ", "or leave model.data_shape out so that it follows "
         "dataset.shape.")),
    "DCGAN preset on points": Case(
        ("train", *NEW, "experiment=dcgan_fashion_mnist", "dataset=ring"),
        ("model=dcgan needs images, and dataset=ring holds 2-D points",)),
    "conv VAE on points": Case(("train", *NEW, "model=conv_vae", "dataset=grid"),
                               ("model=conv_vae needs images, and dataset=grid holds 2-D points",)),
    "image VAE preset on points": Case(
        ("train", *NEW, "experiment=vae_fashion_mnist", "dataset=ring"),
        ("loss=bernoulli models unit or binary values but dataset=ring holds real values",)),
    "doc_ae on points": Case(("train", *NEW, "model=doc_ae", "dataset=ring"),
                             ("loss=multinomial models counts values but dataset=ring holds "
                              "real values (dataset.values=real); use loss=gaussian or loss=mse, "
                              "or keep it for word counts",)),
    "multinomial on images": Case(("train", *NEW, "model=ae", "loss=multinomial"),
                                  ("loss=multinomial models counts values but dataset=digits "
                                   "holds unit values",)),
    "compare without a run": Case(("compare", "no_such_run", "--out", "c.png"),
                                  ("no checkpoint at no_such_run",)),
    "compare of a run": Case(("compare", "run", "--examples", "1"),
                             ("--examples is 1 but must be at least 2",)),
    "vectors without a file": Case(("train", *NEW, "model=ae", "dataset=vectors",
                                    "dataset.shape=[4]"),
                                   ("dataset=vectors needs dataset.source.path, which has no "
                                    "value; set it on the command line, e.g. "
                                    "dataset.source.path=<path>",)),
    "vectors without a shape": Case(("train", *NEW, "model=ae", "loss=gaussian", "dataset=vectors",
                                     "dataset.source.path=x.npy"),
                                    ("dataset=vectors needs dataset.shape, which has no value; "
                                     "set it on the command line, e.g. "
                                     "dataset.shape=[<features>]",),
                                    prepare=lambda folder: np.save(folder / "x.npy",
                                                                   np.zeros((20, 4), np.float32))),
    "text folder without a path": Case(("train", *NEW, "model=doc_ae", "dataset=text_folder"),
                                       ("dataset=text_folder needs dataset.num_classes and "
                                        "dataset.source.path, which have no value",)),
    "sample checkpoint unset": Case(("sample", "checkpoint=???"),
                                  ("gentool sample needs checkpoint, which has no value; set it "
                                   "on the command line",)),
    "eval checkpoint unset": Case(("eval", "checkpoint=???"),
                                ("gentool eval needs checkpoint, which has no value",)),
    "vae with mse": Case(("train", *NEW, "model=vae", "loss=mse"),
                         ("gentool: error: loss=mse does not fit model=vae, which needs a "
                          "likelihood; use loss=bernoulli or loss=gaussian.",)),
    "ae with an adversarial loss": Case(
        ("train", *NEW, "model=ae", "loss=hinge"),
        ("loss=hinge does not fit model=ae, which needs a reconstruction loss; use "
         "loss=bernoulli, loss=gaussian or loss=mse.",)),
    "optuna missing": Case(("train", "-m", "hydra/sweeper=optuna", *CLI_TINY),
                           ('pip install "gentool[optuna]"',),
                           marks=[pytest.mark.skipif(OPTUNA_INSTALLED,
                                                     reason="the Optuna sweeper is installed")]),
    # data
    "offline data set": Case(("train", *NEW, "dataset=mnist", "dataset.source.download=false",
                              "data_dir=nothing"), ("MNIST is not in", "MNIST/raw")),
    "no readable image": Case(("train", *merged_overrides(*NEW, *FOLDER)),
                              ("none of the 3 image files under", "can be read"),
                              prepare=image_folder(garbage=3)),
    "error in a DataLoader worker": Case(("train", *merged_overrides(*NEW, *FOLDER)),
                                         ("images of this split can be decoded",),
                                         prepare=image_folder(truncated=6), started=True),
    "diverged": Case(("train", *merged_overrides(*NEW, "optimizer.lr=1e30",
                                                 "trainer.log_every=1",
                                                 "trainer.checkpoint_every=1")),
                     ("training diverged", "is kept"),
                     started=True),
    # checkpoints
    "no checkpoint": Case(("sample", "checkpoint=runs/none/last.pt"),
                          ("checkpoint=runs/none/last.pt: there is no checkpoint at "
                           "runs/none/last.pt; pass a checkpoint file or the directory of a "
                           "train run.",)),
    "checkpoints folder without last.pt": Case(
        ("eval", "checkpoint=run/checkpoints"),
        ("checkpoint=run/checkpoints: there is no checkpoint at run/checkpoints/last.pt; pass a "
         "checkpoint file or the directory of a train run.",),
        prepare=lambda folder: (folder / CHECKPOINT).rename(folder / "run" / "kept.pt")),
    "folder without checkpoints": Case(("eval", "checkpoint=run/.hydra"),
                                       ("checkpoint=run/.hydra: there is no checkpoint at "
                                        "run/.hydra/checkpoints/last.pt",)),
    "eval without a checkpoint": Case(("eval",), ("gentool eval needs a checkpoint",)),
    "corrupt checkpoint": Case(("sample", "checkpoint=cut.pt"), ("truncated or corrupt",),
                               prepare=raw_file("cut.pt", b"PK\x03\x04 truncated")),
    "text as checkpoint": Case(("sample", "checkpoint=notackpt.txt"),
                               ("notackpt.txt is not a gentool checkpoint (it is a text file, "
                                "not a PyTorch file); pass a checkpoint written by gentool train",),
                               prepare=raw_file("notackpt.txt", b"hello\n")),
    "text as eval checkpoint": Case(("eval", "checkpoint=notackpt.txt"),
                                    ("notackpt.txt is not a gentool checkpoint",),
                                    prepare=raw_file("notackpt.txt", b"hello\n")),
    "text to resume": Case(("train", *NEW, "resume=notackpt.txt"),
                           ("notackpt.txt is not a gentool checkpoint",),
                           prepare=raw_file("notackpt.txt", b"hello\n")),
    "text to compare": Case(("compare", "notackpt.txt"),
                            ("notackpt.txt is not a gentool checkpoint",),
                            prepare=raw_file("notackpt.txt", b"hello\n")),
    "metrics.json as checkpoint": Case(("sample", "checkpoint=run/metrics.json"),
                                       ("run/metrics.json is not a gentool checkpoint (it is a "
                                        "text file, not a PyTorch file)",)),
    "picture as checkpoint": Case(("eval", "checkpoint=samples.png"),
                                  ("samples.png is not a gentool checkpoint (it is a PNG image, "
                                   "not a PyTorch file)",),
                                  prepare=lambda folder: Image.new("L", (8, 8)).save(
                                      folder / "samples.png")),
    "pickled checkpoint": Case(("sample", "checkpoint=pickled.pt"), ("needs pickle to load",),
                               prepare=pickled_checkpoint),
    "format_version a string": Case(
        ("sample", "checkpoint=odd.pt"),
        ("not a gentool checkpoint (its format_version is not an integer)",),
        prepare=odd_checkpoint(format_version="1")),
    "config without model": Case(
        ("sample", "checkpoint=odd.pt"),
        ("not a gentool checkpoint (its config has no model and dataset sections)",),
        prepare=odd_checkpoint(config={"dataset": {"name": "digits"}})),
    "config not a mapping": Case(("sample", "checkpoint=odd.pt"),
                                 ("not a gentool checkpoint (its config is not a mapping)",),
                                 prepare=odd_checkpoint(config=["model", "dataset"])),
    # sample options
    "interpolate steps=0": Case(("sample", f"checkpoint={CHECKPOINT}", "mode=interpolate",
                                 "steps=0", "out=lerp.png"),
                                ("steps is 0 but must be an integer >= 1",)),
    "interpolate n over half the test split": Case(
        ("sample", f"checkpoint={CHECKPOINT}", "mode=interpolate", "n=500", "out=lerp.png"),
        ("mode=interpolate n=500 needs 1000 test examples (two per row), and dataset=digits "
         "has 359 in its test split; use n=179 or fewer.",)),
    "labels not integers": Case(("sample", f"checkpoint={CHECKPOINT}", "labels=[1.5,2]"),
                                ("labels=[1.5,2] must be a non-empty list of class numbers",)),
    "labels outside mode=sample": Case(
        ("sample", f"checkpoint={CHECKPOINT}", "mode=reconstruct", "labels=[3]", "out=r.png"),
        ("labels=[3] picks the classes of mode=sample, not mode=reconstruct; use mode=sample or "
         "drop labels=.",)),
    "labels words": Case(("sample", f"checkpoint={CHECKPOINT}", "labels=[three]"),
                         ("labels=['three'] must be a non-empty list of class numbers",)),
    "format out= contradicts": Case(("sample", f"checkpoint={CHECKPOINT}", "format=npy",
                                     "out=x.png"),
                                    ("format=npy writes a NumPy array but out=x.png names a .png "
                                     "file (format=grid); give out= a .npy file",)),
    # eval options
    "likelihood_examples=-1": Case(("eval", f"checkpoint={CHECKPOINT}", "metrics=[likelihood]",
                                    "iwae_k=10", "likelihood_examples=-1"),
                                   ("likelihood_examples is -1 but must be null or an integer "
                                    ">= 1.",)),
    "likelihood_examples=abc": Case(("eval", f"checkpoint={CHECKPOINT}",
                                     "likelihood_examples=abc"),
                                    ("likelihood_examples is 'abc' but must be null or an "
                                     "integer >= 1.",)),
    # report
    "report of nothing": Case(("report", "nowhere"), ("nowhere does not exist",)),
    "metrics.json not an object": Case(("report", "sweep"),
                                       ("sweep/0/metrics.json holds an array",),
                                       prepare=report_run("[1, 2]")),
    "broken overrides.yaml": Case(("report", "sweep"),
                                  ("sweep/0/.hydra/overrides.yaml is not valid YAML",),
                                  prepare=report_run('{"test/loss": 1.0}', "- a=1\n - : [\n")),
    "report of a metric no run has": Case(
        ("report", "run", "--metrics", "test/los"),
        ("no run has the metric test/los; did you mean test/loss? (the runs have ",
         "test/loss, ")),
    "report --metrics before a missing folder": Case(
        ("report", "--metrics", "test/loss", "nowhere"),
        ("no run folder given (--metrics took test/loss, nowhere as metric keys); put the run "
         "folders before --metrics, or name folders that exist.",)),
    "report of no folder": Case(("report",), ("no run folder given; name run directories or "
                                              "folders of runs",), fresh=True),
    "report --out empty": Case(("report", "run", "--out", ""),
                               ("--out is empty; give it a .md file path (e.g. --out table.md).",)),
    "compare --out empty": Case(("compare", "run", "--out", ""),
                                ("--out is empty; give it a .png file path (e.g. --out "
                                 "codes.png).",)),
    # outputs of report and compare: their own kind of file, never a run's files
    "report --out a checkpoint": Case(
        ("report", "run", "--out", CHECKPOINT),
        (f"--out {CHECKPOINT} is not a .md file, and gentool report writes its markdown table "
         "only to a .md file, never over a checkpoint, metrics.json or config; give --out a .md "
         "path (e.g. --out table.md).",)),
    "report --out metrics.json": Case(("report", "run", "--out", "run/metrics.json"),
                                      ("--out run/metrics.json is not a .md file",)),
    "report --out a run's config": Case(("report", "run", "--out", "run/.hydra/config.yaml"),
                                        ("--out run/.hydra/config.yaml is not a .md file",)),
    "report --out in a checkpoints folder": Case(
        ("report", "run", "--out", "run/checkpoints/table.md"),
        ("--out run/checkpoints/table.md is inside ", "/run/checkpoints, the checkpoints folder "
         "of a train run; choose another --out (e.g. --out table.md).")),
    "compare --out the checkpoint compared": Case(
        ("compare", "run", "--out", CHECKPOINT),
        (f"--out {CHECKPOINT} is not a .png file, and gentool compare writes its PNG only to a "
         ".png file, never over a checkpoint, metrics.json or config; give --out a .png path "
         "(e.g. --out codes.png).",)),
    "compare --out metrics.json": Case(("compare", "run", "--out", "run/metrics.json"),
                                       ("--out run/metrics.json is not a .png file",)),
    "compare --out a .jpg": Case(("compare", "run", "--out", "codes.jpg"),
                                 ("--out codes.jpg is not a .png file",)),
    "compare --out in a checkpoints folder": Case(
        ("compare", "run", "--out", "run/checkpoints/codes.png"),
        ("--out run/checkpoints/codes.png is inside ", "the checkpoints folder of a train run")),
    # finetune's run directory: new, or an earlier finetune run's
    "finetune into a train run": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=run"),
        ("/run is the run directory of a gentool train run (model=vae, dataset=digits), which "
         "finetune would replace with its own checkpoint, metrics.json and config; give finetune "
         "another hydra.run.dir= (or leave it out).",)),
    "finetune into a train run holding a finetune key": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=run"),
        ("/run is the run directory of a gentool train run (model=vae, dataset=digits)",),
        prepare=lambda folder: (folder / "run" / ".hydra" / "config.yaml").open("a").write(
            "finetune:\n  steps: 2\n")),
    "finetune into a copy of checkpoints": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=copy"),
        ("/copy holds another run's files (checkpoints), which finetune would replace",),
        prepare=lambda folder: shutil.copytree(folder / "run" / "checkpoints",
                                               folder / "copy" / "checkpoints")),
    # train and finetune: a run directory never inside another run's
    "finetune into a train run's checkpoints folder": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=run/checkpoints"),
        ("/run/checkpoints is the checkpoints folder of a train run; choose another "
         "hydra.run.dir= (or leave it out).",)),
    "train into a train run's checkpoints folder": Case(
        ("train", *CLI_TINY, "hydra.run.dir=run/checkpoints/more"),
        ("/run/checkpoints/more is inside ", "/run/checkpoints, the checkpoints folder of a "
         "train run; choose another hydra.run.dir= (or leave it out).")),
    "finetune inside a train run": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=run/ft"),
        ("/run/ft is inside ", "/run, the directory of another run; choose another "
         "hydra.run.dir= (or leave it out).")),
    "finetune into a run's .hydra": Case(
        ("finetune", "checkpoint=run", "hydra.run.dir=run/.hydra"),
        ("/run/.hydra is inside ", "/run, the directory of another run")),
    # finetune -m: the sweep folder is refused before the sweeper writes its multirun.yaml
    "finetune sweep into a train run": Case(
        ("finetune", "-m", "checkpoint=run", "hydra.sweep.dir=run"),
        ("hydra.sweep.dir=run is the directory of a run, which this sweep would write into; "
         "choose another hydra.sweep.dir= (or leave it out).",)),
    "finetune sweep into a train run's checkpoints folder": Case(
        ("finetune", "-m", "checkpoint=run", "hydra.sweep.dir=run/checkpoints"),
        ("hydra.sweep.dir=run/checkpoints is the checkpoints folder of a train run; choose "
         "another hydra.sweep.dir= (or leave it out).",)),
    "finetune sweep into a train sweep": Case(
        ("finetune", "-m", "checkpoint=run", "hydra.sweep.dir=sweep", "finetune.steps=2"),
        ("hydra.sweep.dir=sweep holds the multirun.yaml of another sweep than a gentool "
         "finetune one, which this sweep would replace; choose another hydra.sweep.dir= (or "
         "leave it out).",),
        prepare=lambda folder: (folder / "sweep").mkdir() or (folder / "sweep" / "multirun.yaml")
        .write_text("hydra:\n  job:\n    name: train\n")),
    # train, eval and sample -m: the same check of the sweep folder
    "train sweep into a finetune sweep": Case(
        ("train", "-m", *CLI_TINY, "seed=0,1", "hydra.sweep.dir=sweep"),
        ("hydra.sweep.dir=sweep holds the multirun.yaml of another sweep than a gentool "
         "train one, which this sweep would replace; choose another hydra.sweep.dir= (or "
         "leave it out).",),
        prepare=lambda folder: (folder / "sweep").mkdir() or (folder / "sweep" / "multirun.yaml")
        .write_text("hydra:\n  job:\n    name: finetune\n")),
    "train sweep into a train run": Case(
        ("train", "-m", *CLI_TINY, "seed=0,1", "hydra.sweep.dir=run"),
        ("hydra.sweep.dir=run is the directory of a run, which this sweep would write into; "
         "choose another hydra.sweep.dir= (or leave it out).",)),
    "train sweep inside a train run": Case(
        ("train", "-m", *CLI_TINY, "seed=0,1", "hydra.sweep.dir=run/sweep"),
        ("hydra.sweep.dir=run/sweep is inside ", "/run, the directory of another run; choose "
         "another hydra.sweep.dir= (or leave it out).")),
    "train sweep into a train run's checkpoints folder": Case(
        ("train", "-m", *CLI_TINY, "seed=0,1", "hydra.sweep.dir=run/checkpoints"),
        ("hydra.sweep.dir=run/checkpoints is the checkpoints folder of a train run; choose "
         "another hydra.sweep.dir= (or leave it out).",)),
    "eval sweep into a train sweep": Case(
        ("eval", "-m", "checkpoint=run", "hydra.sweep.dir=sweep"),
        ("hydra.sweep.dir=sweep holds the multirun.yaml of another sweep than a gentool eval "
         "one, which this sweep would replace",),
        prepare=lambda folder: (folder / "sweep").mkdir() or (folder / "sweep" / "multirun.yaml")
        .write_text("hydra:\n  job:\n    name: train\n")),
    "sample sweep into a train run": Case(
        ("sample", "-m", "checkpoint=run", "hydra.sweep.dir=run"),
        ("hydra.sweep.dir=run is the directory of a run, which this sweep would write into",)),
    # a sweep's values are overrides of their keys; Hydra cannot merge hydra.sweeper.params
    # from the command line
    "sweep of hydra.sweeper.params": Case(
        ("train", "-m", 'hydra.sweeper.params={seed:"0,1"}', *CLI_TINY, "hydra.sweep.dir=sweep"),
        ('hydra.sweeper.params={seed:"0,1"} sets Hydra\'s sweep parameters, which Hydra cannot '
         "take from the command line; give the sweep's values as overrides of their keys "
         "instead (seed=0,1).",)),
    "sweep of +hydra.sweeper.params.seed": Case(
        ("train", "-m", "+hydra.sweeper.params.seed=0,1", *CLI_TINY, "hydra.sweep.dir=sweep"),
        ("+hydra.sweeper.params.seed=0,1 sets Hydra's sweep parameters, which Hydra cannot "
         "take from the command line; give the sweep's values as overrides of their keys "
         "instead (seed=0,1).",)),
    "sweep of a quoted hydra.sweeper.params.seed": Case(
        ("train", "-m", "hydra.sweeper.params.seed='0,1'", *CLI_TINY, "hydra.sweep.dir=sweep"),
        ("instead (seed=0,1).",)),
    # the dispatcher
    "unknown command": Case(("trian",), ("unknown command 'trian'", "train, sample"), fresh=True),
}


@pytest.fixture(scope="module")
def tiny_run(forked, tmp_path_factory) -> Path:
    """One finished tiny VAE run (checkpoints, metrics.json, .hydra/), trained once."""
    root = tmp_path_factory.mktemp("tiny")
    result = run_gentool(forked, root, "train", *CLI_TINY, "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr
    return root / "run"


@pytest.fixture
def folder(tiny_run, tmp_path) -> Path:
    """A folder holding a copy of the tiny run as `run/`."""
    shutil.copytree(tiny_run, tmp_path / "run")
    return tmp_path


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks) for name, case in
                                  CASES.items()])
def test_bad_input_is_one_sentence_and_changes_nothing(installed, forked, folder, name):
    case = CASES[name]
    if case.prepare:
        case.prepare(folder)
    before, listed = hashes(folder), paths(folder)
    result = run_fresh(installed, folder, *case.args) if case.fresh else \
        run_gentool(forked, folder, *case.args)
    assert_one_sentence(result, *case.fragments)
    assert_unchanged(before, folder)
    if not case.started:
        assert_nothing_new(listed, folder)


# Words a message may start with in capitals: names and acronyms.
PROPER_NOUNS = {"CIFAR-10", "MNIST", "PCA", "CUDA", "CPU", "GPU", "Hydra", "SLURM", "JSON"}


def _opening(text: object) -> str | None:
    """The literal start of a message: a str constant, or an f-string's leading text."""
    if isinstance(text, ast.Constant) and isinstance(text.value, str):
        return text.value
    if isinstance(text, ast.JoinedStr) and text.values and isinstance(text.values[0], ast.Constant):
        return text.values[0].value
    return None


def capitalised_messages(source: str, returned: bool = False) -> list[str]:
    """The messages in `source` that start with a capital letter: the first argument of every
    `raise X(...)` and `super().__init__(...)`, every `problem = ...` (engine.files) and, with
    `returned`, every string a function returns (overrides.py's sentences). A first word in
    PROPER_NOUNS, or a path or placeholder (holding / . = { or <), may keep its capitals."""
    openings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            openings.append(_opening(node.exc.args[0]))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "__init__" and node.args:
            openings.append(_opening(node.args[0]))
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "problem"
                                                  for t in node.targets):
            openings.append(_opening(node.value))
        elif returned and isinstance(node, ast.Return) and node.value is not None:
            openings.append(_opening(node.value))
    found = []
    for text in openings:
        words = (text or "").split()
        first = words[0].rstrip(",;:") if words else ""
        if not first[:1].isupper() or first in PROPER_NOUNS or any(c in first for c in "/.={<"):
            continue
        found.append(text)
    return found


def test_the_capital_letter_check_finds_a_new_message():
    source = ('def f(x):\n'
              '    if x:\n'
              '        raise SomeNewError("The value is wrong; fix it.")\n'
              '    raise OtherError(f"Bad {x}")\n'
              'def g():\n'
              '    return f"Nothing to do for {1}."\n')
    assert sorted(capitalised_messages(source)) == ["Bad ", "The value is wrong; fix it."]
    assert "Nothing to do for " in capitalised_messages(source, returned=True)
    # names, paths and placeholders keep their capitals
    fine = ('raise E("CIFAR-10 is not there.")\nraise E(f"{x} is wrong")\n'
            'raise E("C:/data is wrong")\n')
    assert capitalised_messages(fine) == []


def test_every_message_of_gentool_errors_goes_on_in_lower_case():
    """Each sentence gentool raises for a user's mistake follows "gentool: error: ", so it does
    not start with a capital (a name such as CIFAR-10 keeps its capitals)."""
    source = Path(__file__).parents[1] / "src" / "gentool"
    found = [f"{path.name}: {text}" for path in sorted(source.rglob("*.py"))
             for text in capitalised_messages(path.read_text(),
                                              returned=path.name == "overrides.py")]
    assert not found


def test_report_takes_the_paths_after_metrics_too(forked, folder):
    before = run_gentool(forked, folder, "report", "--metrics", "test/loss", "test/kl", "run")
    after = run_gentool(forked, folder, "report", "run", "--metrics", "test/loss", "test/kl")
    assert before.returncode == 0, before.stderr
    assert before.stdout == after.stdout
    assert "| test/loss | test/kl |" in before.stdout


def test_precision_is_refused_before_the_data_is_loaded(forked, folder):
    result = run_gentool(forked, folder, "train", *NEW, "trainer.precision=bf61")
    assert_one_sentence(result, "did you mean trainer.precision=bf16?")
    assert "Device:" not in result.stderr + result.stdout


def test_a_finetune_run_goes_on_in_its_own_folder_and_its_checkpoint_is_named(forked, folder):
    """finetune replaces an earlier finetune run in its run directory; its checkpoint, a
    classifier, is refused where a trained model is read, naming the one it came from."""
    finetune = ("finetune", "checkpoint=run", "hydra.run.dir=ft", "finetune.steps=2",
                "labels_per_class=1", "device=cpu")
    for _ in range(2):
        result = run_gentool(forked, folder, *finetune)
        assert result.returncode == 0, result.stderr
    before = hashes(folder)
    source = (folder / CHECKPOINT).resolve()
    for args in (("sample", "checkpoint=ft", "out=s.png"), ("eval", "checkpoint=ft"),
                 ("train", *NEW, "resume=ft"), ("compare", "ft")):
        result = run_gentool(forked, folder, *args)
        assert_one_sentence(result, "ft/checkpoints/last.pt is the checkpoint of a gentool "
                                    "finetune run (a fine-tuned classifier), not of a trained "
                                    "model; pass a checkpoint written by gentool train instead, "
                                    f"such as the one it was fine-tuned from ({source}).")
        assert_unchanged(before, folder)
    # Resuming in a finetune run's directory: no checkpoint was passed, the directory is wrong.
    result = run_gentool(forked, folder, "train", *CLI_TINY, "hydra.run.dir=ft")
    assert_one_sentence(result, "/ft is a finetune run's directory; choose another "
                                "hydra.run.dir=.")
    assert_unchanged(before, folder)


def test_report_out_makes_a_missing_folder_as_sample_out_does(forked, folder):
    result = run_gentool(forked, folder, "report", "run", "--out", "tables/loss.md")
    assert result.returncode == 0, result.stderr
    assert (folder / "tables" / "loss.md").read_text().startswith("| ")


def test_a_checkpoints_folder_stands_for_its_last_pt(forked, folder):
    result = run_gentool(forked, folder, "sample", "checkpoint=run/checkpoints", "n=4",
                         "out=s.png")
    assert result.returncode == 0, result.stderr
    assert (folder / "s.png").is_file()


def test_unreadable_images_are_skipped_with_a_warning_each(forked, folder):
    image_folder(good=12, garbage=2, truncated=1)(folder)
    result = run_gentool(forked, folder, "train", *merged_overrides(*NEW, *FOLDER))
    assert result.returncode == 0, result.stderr
    log = result.stderr + result.stdout
    for i in (0, 1):
        assert len(re.findall(f"Skipping pics/garbage{i}.png: not a readable image", log)) == 1
    assert "Skipped 2 of 15 image files that could not be read" in log
    # The truncated file passes the header check; when a batch draws it, it is named once and
    # the next image takes its place.
    mentions = [line for line in log.splitlines() if "cut0.jpg" in line]
    assert all("Skipping pics/cut0.jpg: image file is truncated" in line for line in mentions)


# -- file-system failures on a tmpfs ---------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """Mount a 16 MiB tmpfs at tmp_path/fs (needs root on Linux; skipped with the reason
    otherwise); yields the mount point and a function that remounts it read-only."""
    point = tmp_path / "fs"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'mount failed'}")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    try:
        yield point, read_only
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(point: Path, leave_bytes: int) -> None:
    """Write a ballast file that leaves about `leave_bytes` free on the file system."""
    free = shutil.disk_usage(point).free
    (point / f"ballast-{uuid.uuid4().hex}").write_bytes(b"\0" * max(0, free - leave_bytes))


# A bigger network than CLI_TINY's, so a checkpoint (about 2.4 MB) is much larger than the log and
# TensorBoard bytes written before it.
BIG = ["model.encoder.hidden=[1024]", "model.decoder.hidden=[1024]", "trainer.keep_checkpoints=0"]


def test_disk_full_keeps_the_previous_checkpoint_and_says_so(forked, tmpfs, tmp_path):
    point, _ = tmpfs
    run = point / "run"
    first = run_gentool(forked, tmp_path, "train",
                        *merged_overrides(*CLI_TINY, *BIG, "trainer.max_steps=2",
                                          f"hydra.run.dir={run}"))
    assert first.returncode == 0, first.stderr
    last = run / "checkpoints" / "last.pt"
    before = hashes(run)
    fill(point, leave_bytes=512 * 1024)
    resumed = run_gentool(forked, tmp_path, "train", *CLI_TINY, *BIG, f"hydra.run.dir={run}")
    assert_one_sentence(resumed, f"no space left on the device holding {last}",
                        "the previous checkpoint there is intact", "free some space",
                        f"resume by running the same command with hydra.run.dir={run.resolve()}")
    assert hashes(run)["checkpoints/last.pt"] == before["checkpoints/last.pt"]
    assert torch.load(last, weights_only=True)["step"] == 2
    assert [p.name for p in last.parent.iterdir()] == ["last.pt"]   # no temporary file left


def test_read_only_folders_are_one_sentence(forked, tiny_run, tmpfs, tmp_path):
    point, read_only = tmpfs
    shutil.copytree(tiny_run, point / "run")
    (point / "sweep").mkdir()
    (point / "sweep" / "metrics.json").write_text(json.dumps({"test/loss": 1.0}))
    read_only()
    before = hashes(point)
    cases = [
        (("train", *merged_overrides(*CLI_TINY, "trainer.max_steps=6",
                                     f"hydra.run.dir={point}/run")),
         ("cannot write the run folder", f"{point}/run is on a read-only file system")),
        (("sample", f"checkpoint={point}/run/checkpoints/last.pt", f"out={point}/s.png",
          "device=cpu"), (f"{point} is on a read-only file system", "write elsewhere")),
        (("report", str(point / "sweep"), "--out", str(point / "table.md")),
         (f"{point} is on a read-only file system", "the table was printed above")),
    ]
    for args, fragments in cases:
        assert_one_sentence(run_gentool(forked, tmp_path, *args), *fragments)
    assert_unchanged(before, point)


def test_a_key_given_twice_is_refused_only_when_its_values_differ():
    from gentool.overrides import repeated_key

    assert repeated_key(["seed=1", "model=vae", "seed=1"]) is None
    assert repeated_key(["hydra.run.dir=a", "hydra.run.dir=a"]) is None
    assert repeated_key(["seed=1", "seed=2"]) == \
        "seed= is given twice (seed=1, then seed=2); keep one."


def test_hydra_mode_is_not_taken_for_a_key_given_twice():
    from gentool.overrides import repeated_key

    # With -m Hydra appends hydra.mode=MULTIRUN to the user's own overrides.
    assert repeated_key(["hydra.mode=RUN", "model=vae", "hydra.mode=MULTIRUN"]) is None


def test_merged_overrides_keeps_each_key_once_with_its_last_value_at_its_first_place():
    assert merged_overrides("loss=minimax", "seed=0", "+loss=nonsaturating", "~seed", "x=1") == \
        ["+loss=nonsaturating", "~seed", "x=1"]
