"""Structured-config schemas for the fixed keys, and the single instantiate helper.

The schemas give every command typed top-level keys (`trainer.max_steps=abc` is refused by Hydra
with the key's name and expected type). Model, dataset, loss and optimizer nodes stay free-form:
their shape is fixed by the `_target_` they name, and `instantiate` below is the only way such a
node becomes an object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from gentool.errors import GentoolError

# Only these importable prefixes may be named by `_target_`: a config file is data, and data must
# not be able to call arbitrary Python (os.system, ...) when a run or a checkpoint is loaded.
ALLOWED_TARGET_PREFIXES = ("gentool.", "torch.optim.")


@dataclass
class TrainerConfig:
    max_steps: int = 2000
    batch_size: int = 128
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 1000
    # Keep these periodic step_<N>.pt files (0: keep only last.pt). Older ones are removed.
    keep_checkpoints: int = 3
    precision: str = "32"  # "32" | "bf16" | "16", checked by engine.device.autocast_for
    # Clip the global gradient norm of each optimizer step (null: no clipping).
    grad_clip: Optional[float] = None
    # Test examples used by each periodic evaluation (null: the whole test split).
    eval_examples: Optional[int] = 10000
    # How many images the visual logs show (reconstruction pairs, samples, latent scatter).
    image_examples: int = 64
    scatter_examples: int = 2000
    progress_bar: bool = True


@dataclass
class TrainConfig:
    model: Any = None
    dataset: Any = None
    loss: Any = None
    optimizer: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    resume: Optional[str] = None
    # Lets all convolution algorithms be picked for speed; resume is then exact only on CPU.
    deterministic: bool = True


@dataclass
class SampleConfig:
    checkpoint: Optional[str] = None
    n: int = 64
    out: str = "samples.png"
    format: str = "grid"
    mode: str = "sample"
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    nrow: Optional[int] = None
    steps: int = 10
    dims: list = field(default_factory=lambda: [0, 1])
    temperature: float = 1.0
    labels: Optional[list] = None
    input: Optional[str] = None


@dataclass
class NaiveMonteCarloConfig:
    k_max: int = 100_000
    examples: int = 100


@dataclass
class EvalConfig:
    checkpoint: Optional[str] = None
    metrics: Optional[list] = None
    n_samples: int = 10_000
    batch_size: int = 500
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    iwae_k: int = 5000
    likelihood_examples: Optional[int] = None
    naive_mc: NaiveMonteCarloConfig = field(default_factory=NaiveMonteCarloConfig)
    max_pairs: int = 32_768
    neighbours: int = 3
    probe_examples: int = 10_000
    classifier_steps: int = 6000


@dataclass
class FinetuneOptions:
    freeze_encoder: bool = True
    head: str = "linear"
    hidden: int = 256
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass
class FinetuneConfig:
    checkpoint: Optional[str] = None
    labels_per_class: int = 10
    seed: int = 0
    device: str = "auto"
    data_dir: str = "data"
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="sample_schema", node=SampleConfig)
    store.store(name="eval_schema", node=EvalConfig)
    store.store(name="finetune_schema", node=FinetuneConfig)


def instantiate(node: Any, **kwargs: Any) -> Any:
    """Build the object a config node describes, refusing targets outside gentool.

    Errors raised by the target's constructor as GentoolError reach the user unchanged; Hydra
    otherwise wraps them in a message with its own internals.
    """
    if isinstance(node, DictConfig):
        container = OmegaConf.to_container(node, resolve=True)
    else:
        container = node
    _check_targets(container)
    try:
        return hydra_instantiate(container, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, GentoolError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise GentoolError(f"Could not build {_target_of(container)}: {_first_line(error)}; "
                           "check the options given for it.") from error


def _check_targets(node: Any) -> None:
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(ALLOWED_TARGET_PREFIXES):
            raise GentoolError(f"Refusing to build '_target_: {target}': configs may only name "
                               f"targets under {', '.join(ALLOWED_TARGET_PREFIXES)}.")
        for value in node.values():
            _check_targets(value)
    elif isinstance(node, list):
        for value in node:
            _check_targets(value)


def _target_of(node: Any) -> str:
    return str(node.get("_target_", "the config node")) if isinstance(node, dict) else "it"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
