"""Data-parallel training over torch.distributed: one process per GPU (or CPU, with gloo).

Launchers set the environment: torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) or a
SLURM job with one task per GPU (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the rendezvous
address is exported by submitit's TorchDistributedEnvironment). Every rank holds a full copy of
the model, trains on its shard of each global batch and averages the gradients with all_reduce
before each optimizer step, so the update equals one process's on the whole batch.

The gradients are averaged by one all_reduce over the flattened gradients of an optimizer,
called by StepContext.optimizer_step (engine/step.py), rather than by wrapping the networks in
DistributedDataParallel: a GAN calls its discriminator several times per step and takes double
gradients through it (R1, WGAN-GP, unrolling), which DDP's per-forward bucketing does not
support. What DDP would add, overlapping communication with the backward pass, matters less
than this generality for the model sizes gentool trains.
"""

from __future__ import annotations

import os
import torch
import torch.distributed as dist

from gentool.engine.rank import Rank, rank_from_env
from gentool.errors import GentoolError

def init_distributed() -> Rank:
    """Join the process group when launched as several processes (idempotent)."""
    rank = rank_from_env()
    if not rank.distributed or dist.is_initialized():
        return rank
    if "MASTER_ADDR" not in os.environ:   # a SLURM task: submitit knows the rendezvous address
        try:
            from submitit.helpers import TorchDistributedEnvironment
        except ImportError as error:
            raise GentoolError("a multi-task SLURM job needs MASTER_ADDR/MASTER_PORT or the "
                               "submitit package; launch it with hydra/launcher=slurm.") from error
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(rank.local_rank)
    dist.init_process_group(backend=backend)
    return rank


def device_for(rank: Rank, device: torch.device) -> torch.device:
    """Each rank on its own GPU; a CPU run stays on the CPU."""
    if rank.distributed and device.type == "cuda":
        return torch.device("cuda", rank.local_rank)
    return device


def per_rank_batch_size(global_batch: int, rank: Rank) -> int:
    if global_batch % rank.world_size:
        raise GentoolError(f"trainer.batch_size={global_batch} must divide evenly among the "
                           f"{rank.world_size} processes; set it to a multiple of "
                           f"{rank.world_size}.")
    return global_batch // rank.world_size


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (the same start, resumed or not)."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Mean of every rank's gradients of this optimizer's parameters, in one all_reduce."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]
             if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def collective_device() -> torch.device:
    """Where this process group's collectives take their tensors: this rank's GPU under NCCL."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (a stop signal that reached one rank)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)
