"""Distributed data parallel set-up for runs started by ``torchrun``.

``torchrun --nproc_per_node=N`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address in the environment; :func:`init_distributed` reads them and joins
the process group (gloo on CPU, nccl on CUDA). A plain run (no ``WORLD_SIZE``, or 1)
is a world of one and never touches ``torch.distributed``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from lossnet.errors import InputError, LossnetError
from lossnet.runtime import pick_device

T = TypeVar("T")

#: Set once this process has joined a process group (see :func:`end_process`).
_joined = False


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
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:
            raise InputError(
                f"torchrun started a process with LOCAL_RANK={local_rank}, but this machine has {gpus} CUDA GPU(s): "
                f"one process per GPU. Start at most {gpus} (--nproc_per_node={gpus}), or train on the CPU with "
                "--device cpu."
            )
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
        global _joined
        _joined = True
    return World(rank=rank, size=size, local_rank=local_rank, device=base)


def shutdown(world: World) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def end_process(code: int) -> None:
    """End a process that joined a process group now, with exit status ``code``; return in any other process.

    ``DistributedDataParallel`` keeps its gloo group alive after :func:`shutdown` (torch 2.13: its three gloo
    threads outlive ``destroy_process_group`` even with the wrapper freed), and tearing them down with the
    interpreter aborted now and then: "terminate called without an active exception", rank 1 SIGABRT after
    the run had finished and written its files (once in about 60 runs of the test in session 13, once in CI),
    and a hang at exit before the wrapper was freed first. So the command
    line's torchrun processes flush their streams and logs and leave with :func:`os._exit`, which runs no
    teardown; every file was written (atomically) and closed before this is called.
    """
    if not _joined:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, e.g. after a broken pipe
            pass
    os._exit(code)


def on_rank_0(world: World, fn: Callable[[], T]) -> T | None:
    """Call ``fn`` on rank 0 alone; every rank raises its error, so that none waits for a rank that stopped.

    Returns ``fn``'s result on rank 0 and ``None`` on the others (and ``fn``'s result in a plain run).
    An error that is not lossnet's reaches the other ranks as a ``RuntimeError`` with its message.
    """
    result, failure = None, None
    if world.is_main:
        try:
            result = fn()
        except Exception as err:  # raised below, after the other ranks have heard of it
            failure = err
    if world.distributed:
        shared = failure if failure is None or isinstance(failure, LossnetError) else RuntimeError(str(failure))
        first = gather(world, shared)[0]
        if failure is None and isinstance(first, BaseException):
            raise first
    if failure is not None:
        raise failure
    return result


def gather(world: World, value: object) -> list[object]:
    """Gather ``value`` from every process (a list of one in a plain run)."""
    if not world.distributed:
        return [value]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, value)
    return out
