"""One way to join a torchrun job, for the trainer and ``cam evaluate``: NCCL on GPUs, gloo on
CPUs, one process per GPU."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1:
            torch.distributed.destroy_process_group()


def init_distributed(requested_device: str | None = None) -> Distributed:
    """Join the torchrun job named by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` if there is one.
    Each process takes the GPU of its local rank when CUDA is available and not declined."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() and (requested_device is None
                                               or requested_device.startswith("cuda"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return Distributed(rank, world, torch.device("cuda", local))
    return Distributed(rank, world, torch.device(requested_device or "cpu"))
