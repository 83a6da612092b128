"""Distributed data parallel set-up for runs started by ``torchrun``.

``torchrun --nproc_per_node=N`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address in the environment; :func:`init_distributed` reads them and joins
the process group (gloo on CPU, nccl on CUDA). A plain run (no ``WORLD_SIZE``, or 1)
is a world of one and never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lossnet.runtime import pick_device


@dataclass(frozen=True)
class World:
    """Where this process stands: its ``rank`` of ``size`` processes, and the device it drives."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1



def init_distributed(device: str = "auto") -> World:
    """Join the process group if started by ``torchrun`` with more than one process.

    Each process drives ``cuda:LOCAL_RANK`` on GPUs; on CPU all share the CPU (gloo).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    base = pick_device(device)
    if size <= 1:
        return World(device=base)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return World(rank=rank, size=size, local_rank=local_rank, device=base)


def shutdown(world: World) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather(world: World, value: object) -> list[object]:
    """Gather ``value`` from every process (a list of one in a plain run)."""
    if not world.distributed:
        return [value]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, value)
    return out
