"""Data-parallel training under `torchrun --nproc-per-node K` (gloo on CPU, NCCL on GPU).

Gradients of every trainable parameter (student and the method's extra modules) are averaged
with one all-reduce per step after `backward`. That is what DistributedDataParallel does, but it
works with any number of forwards per step (teacher-student methods run the student several
times) and with modules a method creates itself. BatchNorm statistics are averaged across ranks
before validation and checkpoints, so every rank holds the same network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group that torchrun set up (environment variables); single process
    otherwise."""
    if not launched_by_torchrun():
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def shutdown(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def average_gradients(parameters: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Replace each gradient by its mean over ranks (one flat all-reduce).

    A parameter without a gradient on this rank contributes zeros, so every rank makes the same
    call whatever its method did.
    """
    if not info.active:
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat.div_(info.world_size)
    offset = 0
    for p in params:
        count = p.grad.numel()
        p.grad.copy_(flat[offset : offset + count].view_as(p.grad))
        offset += count


@torch.no_grad()
def average_buffers(module: nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks."""
    if not info.active:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(info.world_size)


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if `flag` is True on any rank (used to stop all ranks together)."""
    if not info.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not info.active:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


@torch.no_grad()
def parameters_in_sync(module: nn.Module, info: DistInfo) -> bool:
    """True when every rank holds the same parameters (compared by a per-tensor checksum)."""
    if not info.active:
        return True
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()])
    gathered = gather_objects(checksum.cpu(), info)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
