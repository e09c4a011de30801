"""`gentool finetune`: a classifier on a pretrained encoder from a few labels per class.

The encoder of an AE or VAE checkpoint (the VAE's posterior mean) feeds a head trained on
`labels_per_class` labelled train examples per class (a fixed, seeded subset). The default head,
`label_spreading`, is transductive: the labels spread over a k-NN graph of the frozen encoder's
codes of the whole (unlabelled) train split, as the TSVM does in Kingma et al. 2014's M1 + TSVM
(gentool.spreading_classifier). The network heads (`linear`, `mlp`) train on the labelled codes
alone, with the encoder frozen or fine-tuned end to end (`encoder_lr_scale` slows the pretrained
encoder against its new head). With `standardize_codes` the codes are shifted and scaled by their
mean and std over the whole unlabelled train split first. A network - the same encoder
architecture from a random initialisation, trained end to end - is trained from scratch on the
same labels alone, and both test accuracies are reported: what the pretraining and the
unlabelled images are worth. With label spreading, controls spread the labels over a random
encoder's codes (and, when asked, the pixels) too, so the two sources of the gain show apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from gentool.capabilities import Encodes
from gentool.data import build_data, take
from gentool.data.subsets import labelled_subset
from gentool.engine.checkpoint import CHECKPOINTS_FOLDER, run_checkpoint, save_checkpoint
from gentool.engine.run_directory import RunDirectory
from gentool.engine.run_metrics import write_metrics
from gentool.errors import GentoolError
from gentool.hydra_run import job_name_in
from gentool.methods import build_method
from gentool.metrics.classifier import accuracy
from gentool.nets.mlp import mlp
from gentool.options import check_schema, not_one_of
from gentool.spreading_classifier import Pixels, SpreadingClassifier
from gentool.trained import start_from_checkpoint

log = logging.getLogger("gentool")


NETWORK_HEADS = ("linear", "mlp")
HEADS = ("label_spreading", *NETWORK_HEADS)


def _check_head(head: str, key: str = "finetune.head", heads=NETWORK_HEADS) -> None:
    if head not in heads:
        raise not_one_of(key, head, heads, f"e.g. {key}={heads[0]}.")


def check_options(options) -> None:
    """The head choices, before anything is loaded (the numbers' ranges are the schema's)."""
    _check_head(options.head, heads=HEADS)
    if options.scratch_head is not None:
        _check_head(options.scratch_head, "finetune.scratch_head")
    if options.head == "label_spreading" and not options.freeze_encoder:
        raise GentoolError("finetune.head=label_spreading trains no weights, so it needs "
                           "finetune.freeze_encoder=true; or pick finetune.head=linear or mlp.")


def scratch_head(options) -> str:
    """The head of the network trained from scratch: `scratch_head`, else the pretrained
    classifier's head, else (label spreading is no network to repeat) a linear head, the best
    setting from scratch measured on Fashion-MNIST (docs/benchmarks.md)."""
    if options.scratch_head is not None:
        return options.scratch_head
    return options.head if options.head in NETWORK_HEADS else "linear"


class EncoderClassifier(nn.Module):
    """x -> method.encode(x) -> (codes - code_mean) / code_std -> head: a trained (or fresh)
    AE/VAE encoder with a class head. The code statistics are 0 and 1 (no change) until
    `fit_code_statistics` measures them."""

    def __init__(self, method, num_classes: int, head: str, hidden: int, freeze: bool):
        super().__init__()
        _check_head(head)
        self.method, self.freeze = method, freeze
        sizes = [method.latent_dim, num_classes] if head == "linear" else \
            [method.latent_dim, hidden, num_classes]
        self.head = mlp(sizes, "relu")
        self.register_buffer("code_mean", torch.zeros(method.latent_dim))
        self.register_buffer("code_std", torch.ones(method.latent_dim))
        method.requires_grad_(not freeze)

    def codes(self, x):
        """The encoder's codes of x, not yet standardised (without gradients when frozen)."""
        if self.freeze:
            with torch.no_grad():
                self.method.eval()
                return self.method.encode(x).float()
        return self.method.encode(x).float()

    def classify(self, codes):
        return self.head((codes - self.code_mean) / self.code_std)

    def forward(self, x):
        return self.classify(self.codes(x))

    @torch.no_grad()
    def fit_code_statistics(self, x, batch_size: int = 1000) -> None:
        """Per-dimension mean and std of the encoder's codes of `x` (the unlabelled train split),
        in eval mode: the shift and scale every later code gets before the head."""
        training = self.method.training
        self.method.eval()
        codes = torch.cat([self.method.encode(x[i:i + batch_size]).float()
                           for i in range(0, len(x), batch_size)])
        self.method.train(training)
        self.code_mean.copy_(codes.mean(0))
        # A dimension the encoder never varies (a dead unit) keeps its scale instead of blowing up.
        std = codes.std(0)
        self.code_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def trainable(self):
        return [p for p in self.parameters() if p.requires_grad]


def make_optimizer(classifier: EncoderClassifier, lr: float, weight_decay: float,
                   encoder_lr_scale: float = 1.0) -> torch.optim.Adam:
    """Adam with two parameter groups: the head at `lr`, the encoder (when it trains) at
    `lr * encoder_lr_scale`, so a pretrained encoder can move more slowly than its new head."""
    groups = [{"params": list(classifier.head.parameters()), "lr": lr}]
    encoder = [p for p in classifier.method.parameters() if p.requires_grad]
    if encoder:
        groups.append({"params": encoder, "lr": lr * encoder_lr_scale})
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


def run_finetune(cfg: DictConfig, output_dir: str | Path | RunDirectory) -> float:
    """Fine-tune in `output_dir`, held by this run alone; a refused start leaves it as it was."""
    run = output_dir if isinstance(output_dir, RunDirectory) else RunDirectory(output_dir)
    with run.held():
        return _finetune(cfg, run)


def _finetune(cfg: DictConfig, run: RunDirectory) -> float:
    run_dir = run.path
    _refuse_other_run(run_dir)

    def check(checkpoint: Path) -> None:
        check_schema(cfg)   # the ranges FinetuneOptions declares (steps >= 1, lr > 0, ...)
        if cfg.labels_per_class < 1:
            raise GentoolError(f"labels_per_class={cfg.labels_per_class} must be at least 1.")
        check_options(cfg.finetune)

    trained = start_from_checkpoint(cfg, "finetune", check, wanted="a pretrained model",
                                    example="<AE or VAE run>/checkpoints/last.pt")
    pretrained, train_cfg, device = trained.method, trained.train_cfg, trained.device
    if not isinstance(pretrained, Encodes):
        raise GentoolError(f"model={train_cfg.model.name} has no encoder to fine-tune; use the "
                           "checkpoint of an autoencoder or VAE run.")
    dataset_cfg = OmegaConf.merge(train_cfg.dataset, {"binarize": "none"})
    data = build_data(dataset_cfg, cfg.data_dir, device, batch_size=512, seed=cfg.seed,
                      drop_last=False)
    if not data.num_classes:
        raise GentoolError(f"dataset={data.name} has no labels to fine-tune on; use a labelled "
                           "data set.")
    train_x, train_y = take(data.train, data.train.num_examples)
    test_x, test_y = take(data.test, data.test.num_examples)
    subset = labelled_subset(train_y, cfg.labels_per_class, cfg.seed).to(device)
    x, y = train_x[subset], train_y[subset]
    log.info("%d labelled examples (%d per class of %d)", len(subset), cfg.labels_per_class,
             data.num_classes)
    options = cfg.finetune
    run.start()
    writer = SummaryWriter(str(run_dir))
    results = {}
    if options.head == "label_spreading":
        classifier = spread_labels(pretrained, data.num_classes, options, train_x, subset, y)
        results["pretrained"] = accuracy(classifier, test_x, test_y)
        if options.spreading.control:
            # The control: the same head on the codes of a random encoder (the scratch network's
            # initialisation), standardised the same way.
            torch.manual_seed(cfg.seed)
            control = spread_labels(build_method(train_cfg).to(device), data.num_classes,
                                    options, train_x, subset, y)
            results["control"] = accuracy(control, test_x, test_y)
        if options.spreading.pixel_control:
            pixels = spread_labels(Pixels(train_x.shape[1:]), data.num_classes, options,
                                   train_x, subset, y)
            results["control_pixels"] = accuracy(pixels, test_x, test_y)
    else:
        torch.manual_seed(cfg.seed)
        classifier = EncoderClassifier(pretrained, data.num_classes, options.head,
                                       options.hidden, options.freeze_encoder).to(device)
        if options.standardize_codes:
            classifier.fit_code_statistics(train_x)
        train_classifier(classifier, x, y, options, writer, "pretrained",
                         options.encoder_lr_scale)
        results["pretrained"] = accuracy(classifier, test_x, test_y)
    save_checkpoint(run_checkpoint(run_dir), {
        "step": options.steps, "config": OmegaConf.to_container(cfg, resolve=True),
        "modules": {"classifier": classifier.state_dict()},
        "pretrained_config": OmegaConf.to_container(train_cfg, resolve=True),
        "pretrained_checkpoint": str(trained.checkpoint.resolve())},
        then="run the same command again")
    # The model from scratch is a network trained end to end at `lr` everywhere, on raw codes: a
    # lower encoder rate only makes sense for a pretrained encoder, and a random encoder's code
    # statistics at initialisation are arbitrary (standardised by them, the conv AE's classifier
    # from scratch lost 5.6 points with 1 label per class on Fashion-MNIST).
    torch.manual_seed(cfg.seed)
    scratch = EncoderClassifier(build_method(train_cfg).to(device), data.num_classes,
                                scratch_head(options), options.hidden, False).to(device)
    train_classifier(scratch, x, y, options, writer, "scratch")
    results["scratch"] = accuracy(scratch, test_x, test_y)
    for name, value in results.items():
        writer.add_scalar(f"test/accuracy_{name}", value, options.steps)
    writer.close()
    record = {"labels_per_class": cfg.labels_per_class, "labelled_examples": len(subset),
              "test/accuracy": results["pretrained"], "test/accuracy_scratch": results["scratch"]}
    for control in ("control", "control_pixels"):
        if control in results:
            record[f"test/accuracy_{control}"] = results[control]
    write_metrics(run_dir, record)
    log.info("Test accuracy with %d labels per class: pretrained %s %.4f, from scratch %.4f%s%s",
             cfg.labels_per_class, describe(options), results["pretrained"], results["scratch"],
             f", {options.head} on a random encoder {results['control']:.4f}"
             if "control" in results else "",
             f", {options.head} on pixels {results['control_pixels']:.4f}"
             if "control_pixels" in results else "")
    log.info("Run directory: %s", run_dir.resolve())
    return -results["pretrained"]   # what a sweeper minimises


def _refuse_other_run(run_dir: Path) -> None:
    """A finetune run writes checkpoints/last.pt, metrics.json and the .hydra config snapshot in
    its run directory, so a directory that holds any of them goes on only when its snapshot is
    a finetune config (an earlier finetune run, which this one replaces); the files of a train
    run, or of a run of unknown kind, are never written over."""
    held = [name for name in (CHECKPOINTS_FOLDER, "metrics.json", ".hydra")
            if (run_dir / name).exists()]
    if not held:
        return
    # finetune.yaml's hydra.job.name marks a finetune run (a train run's config could hold any key)
    if job_name_in(run_dir / ".hydra" / "hydra.yaml") == "finetune":
        return
    config = _snapshot(run_dir)
    model, dataset = config.get("model"), config.get("dataset")
    if isinstance(model, dict) and isinstance(dataset, dict):
        kind = (f"is the run directory of a gentool train run (model={model.get('name')}, "
                f"dataset={dataset.get('name')})")
    else:
        kind = f"holds another run's files ({', '.join(held)})"
    raise GentoolError(f"{run_dir} {kind}, which finetune would replace with its own checkpoint, "
                       "metrics.json and config; give finetune another hydra.run.dir= (or leave "
                       "it out).")


def _snapshot(run_dir: Path) -> dict:
    """The run directory's .hydra/config.yaml as written (interpolations unresolved), or {}
    where it is missing or unreadable."""
    snapshot = run_dir / ".hydra" / "config.yaml"
    try:
        config = OmegaConf.to_container(OmegaConf.load(snapshot)) if snapshot.is_file() else {}
    except Exception:   # YAML syntax errors, undecodable bytes: a run of unknown kind
        return {}
    return config if isinstance(config, dict) else {}


def describe(options) -> str:
    if options.head == "label_spreading":
        return "frozen encoder, label spreading"
    return f"{'frozen' if options.freeze_encoder else 'fine-tuned'} encoder, {options.head} head"


def spread_labels(method, num_classes: int, options, train_x, subset, y) -> SpreadingClassifier:
    """A SpreadingClassifier on `method`'s codes of the whole train split, labels spread."""
    spreading = options.spreading
    classifier = SpreadingClassifier(method, num_classes, spreading.neighbours, spreading.alpha,
                                     spreading.iterations, options.standardize_codes)
    classifier.fit(train_x, subset, y)
    return classifier


def train_classifier(classifier: EncoderClassifier, x, y, options, writer, name: str,
                     encoder_lr_scale: float = 1.0) -> None:
    """Adam on cross-entropy over batches drawn (with replacement) from the labelled subset. A
    frozen encoder's codes of the subset are computed once: only the head trains."""
    optimizer = make_optimizer(classifier, options.lr, options.weight_decay, encoder_lr_scale)
    classifier.train()
    codes = classifier.codes(x) if classifier.freeze else None
    for step in range(options.steps):
        index = torch.randint(len(x), (min(options.batch_size, len(x)),), device=x.device)
        logits = classifier.classify(codes[index]) if codes is not None else classifier(x[index])
        loss = F.cross_entropy(logits, y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, options.steps // 20) == 0:
            writer.add_scalar(f"train/loss_{name}", loss.item(), step + 1)
    classifier.eval()
