"""The method protocol (DESIGN.md section 3).

A method is an nn.Module that owns its networks and its update rule. The engine calls only:

- `configure_optimizers(optimizer_cfg) -> dict[str, Optimizer]`
- `train_step(batch, ctx) -> dict[str, Tensor]`   (forward, backward and optimizer steps, with
  the engine's `StepContext`: step number, autocast, `optimizer_step(loss, name)`)
- `eval_step(batch) -> dict[str, Tensor]`          (no gradients, full precision)
- `summarize(means) -> dict[str, float]`           (derived metrics from averaged ones)

and reads `batches_per_step` (how many batches one train step consumes; more than one arrive as
a list) and `progress_keys` (the metrics the progress bar shows). What a trained method can do
besides (encode, decode, sample, translate) is present only where it makes sense. Images going
in and out of these are in data units (the data set's `range`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Iterable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gentool.config import instantiate
from gentool.errors import GentoolError
from gentool.options import NonNegativeFloat, Range, check_known, check_value

if TYPE_CHECKING:
    from gentool.engine.step import StepContext


# The two players of a two-player method; `model.<player>_optimizer` holds each one's own
# optimizer settings, merged over `optimizer.*`.
PLAYERS = ("generator", "discriminator")
_Beta = Annotated[float, Range(min=0, max=1, max_open=True)]
# The options torch.optim's optimizers share, with what each must be and an example value.
# torch refuses a bad value only inside the optimizer's constructor ("Invalid learning rate:
# -0.1"), without the config key that set it.
OPTIMIZER_OPTIONS: dict[str, tuple[Any, Any]] = {
    # torch accepts lr=0 (a player frozen while the other trains); stored run configs may hold it.
    "lr": (NonNegativeFloat, 1e-3),
    "betas": (tuple[_Beta, _Beta], (0.9, 0.999)),
    "weight_decay": (NonNegativeFloat, 0.0),
    "momentum": (NonNegativeFloat, 0.9),
    "alpha": (NonNegativeFloat, 0.99),
    "eps": (NonNegativeFloat, 1e-8),
}
# A player's own examples: the GAN settings gentool's model configs ship.
PLAYER_EXAMPLES = {"lr": 2e-4, "betas": (0.5, 0.999)}


def check_optimizer_options(optimizer: dict, players: dict[str, dict | None] | None = None) -> None:
    """Refuse the optimizer settings of a run config (plain containers) that torch would refuse,
    naming the key a user sets them by: `optimizer.lr`, or `model.generator_optimizer.lr` for a
    player's own value. A run checks them before it loads its data
    (gentool.methods.check_method)."""
    sources = [(dict(optimizer), "optimizer", {})]
    for name, own in (players or {}).items():
        sources.append((dict(own or {}), f"model.{name}_optimizer", PLAYER_EXAMPLES))
    for values, prefix, examples in sources:
        # A player's own settings go to the optimizer that `optimizer._target_` names.
        check_known({"_target_": optimizer.get("_target_"), **values}, prefix)
        for key, value in values.items():
            if key in OPTIMIZER_OPTIONS:
                annotation, example = OPTIMIZER_OPTIONS[key]
                check_value(value, annotation, f"{prefix}.{key}", examples.get(key, example))
    # Each optimizer gets the shared settings with its player's own merged over them; a method
    # without players has one optimizer, with the shared settings alone.
    if not players:
        _check_nesterov(optimizer, player=None, own={})
        return
    for name, own in players.items():
        _check_nesterov(optimizer, player=name, own=dict(own or {}))


def _check_nesterov(optimizer: dict, player: str | None, own: dict) -> None:
    """Refuse Nesterov momentum (which torch.optim.SGD refuses) without momentum > 0 and
    dampening 0 in the settings one optimizer gets: `optimizer` with `player`'s `own` over it."""
    merged = {**optimizer, **own}
    wants_nesterov = merged.get("nesterov") is True
    lacks_momentum = merged.get("momentum", 0) <= 0 or merged.get("dampening", 0) != 0
    if wants_nesterov and lacks_momentum:
        nesterov = _set_by("nesterov", player, own)
        momentum = _set_by("momentum", player, own)
        dampening = _set_by("dampening", player, own)
        raise GentoolError(f"{nesterov}=true needs {momentum} > 0 and {dampening}=0; set "
                           f"{momentum}=0.9 or {nesterov}=false.")


def _set_by(option: str, player: str | None, own: dict) -> str:
    """The key that sets `option` of `player`'s optimizer: its own, or the shared optimizer's
    (always the shared one's without a player)."""
    if player is not None and option in own:
        return f"model.{player}_optimizer.{option}"
    return f"optimizer.{option}"


def build_optimizer(params: Iterable[nn.Parameter], optimizer_cfg: Any) -> torch.optim.Optimizer:
    node = OmegaConf.to_container(optimizer_cfg, resolve=True) if isinstance(
        optimizer_cfg, DictConfig) else dict(optimizer_cfg)
    return instantiate(node, params=list(params))


class Method(nn.Module):
    """The defaults of the protocol: one optimizer over all parameters, one batch per step."""

    # Batches one train step consumes; above 1 `train_step` receives a list of that many.
    batches_per_step: int = 1
    # The step metrics the progress bar shows, in this order, where a step reports them.
    progress_keys: ClassVar[tuple[str, ...]] = ("loss",)
    # The loss classes this method trains with, and what messages call them ("a likelihood"):
    # checked where methods are built (gentool.methods.check_loss_fits), before the data is
    # loaded; the message lists the shipped losses that fit.
    accepts_losses: ClassVar[tuple[type, ...]] = ()
    accepted_losses_hint: ClassVar[str] = ""

    def configure_optimizers(self, optimizer_cfg) -> dict[str, torch.optim.Optimizer]:
        """One optimizer over all parameters; methods with several players override this."""
        return {"model": build_optimizer(self.parameters(), optimizer_cfg)}

    def train_step(self, batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def eval_step(self, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        """Metrics derived from averaged step metrics (e.g. a VAE's ELBO from recon and kl).

        Steps return only what they must reduce per batch; anything linear in those is derived
        here once per logging window or evaluation instead of on every step.
        """
        return means


class TwoPlayerMethod(Method):
    """A game between `self.generator` and `self.discriminator`, one optimizer each: the run's
    `optimizer.*` with each player's overrides (`generator_optimizer`, `discriminator_optimizer`
    of the model config, e.g. its own lr and betas) merged over it."""

    def set_player_optimizers(self, generator: dict | None, discriminator: dict | None) -> None:
        self.player_optimizers = {"generator": dict(generator or {}),
                                  "discriminator": dict(discriminator or {})}

    def configure_optimizers(self, optimizer_cfg):
        base = OmegaConf.to_container(optimizer_cfg, resolve=True) if isinstance(
            optimizer_cfg, DictConfig) else dict(optimizer_cfg)
        return {
            name: build_optimizer(getattr(self, name).parameters(),
                                  {**base, **self.player_optimizers[name]})
            for name in PLAYERS}
