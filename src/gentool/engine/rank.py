"""Where this process stands in a multi-process launch, read from the environment.

Kept free of torch so the command dispatcher can ask before anything heavy is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_from_env() -> Rank:
    """This process's place, from torchrun's or SLURM's variables (a single process otherwise)."""
    env = os.environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return Rank(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return Rank(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]),
                    int(env.get("SLURM_LOCALID", 0)))
    return Rank()
