"""Multi-process training with ``torchrun --standalone --nproc_per_node N`` (DDP): NCCL on GPUs, gloo on CPUs.

Every process samples its own crops (seed + rank); DDP averages the generator's gradients, ``average_gradients``
does the same for the discriminator. Only rank 0 writes logs, checkpoints, samples and the bundle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.size > 1 else None


def setup(device: str = "auto") -> World:
    """The process group from torchrun's environment, or a single process."""
    cuda = torch.cuda.is_available() and device != "cpu"
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(device=torch.device(("cuda" if cuda else "cpu") if device == "auto" else device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), size, torch.device(f"cuda:{local}" if cuda else "cpu"))


def finish(world: World) -> None:
    """Every rank waits here until rank 0 has written its files, so that all leave the group together.

    A rank that tore its gloo group down while rank 0 was still busy once died at exit with SIGABRT in CI.
    """
    if world.size > 1:
        dist.barrier()


def teardown(world: World) -> None:
    if world.size > 1:
        dist.destroy_process_group()


def average_gradients(module: torch.nn.Module, world: World) -> None:
    if world.size == 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world.size


def all_finite(value: torch.Tensor, world: World) -> bool:
    """True when ``value`` is finite on every rank: DDP's backward waits for all of them, so all skip together."""
    ok = torch.isfinite(value.detach()).all().to(torch.float32)
    if world.size > 1:
        ok = ok.to(world.device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def mean(value: torch.Tensor, world: World) -> float:
    """``value``'s mean over the ranks (itself without a process group)."""
    value = value.detach().to(torch.float32)
    if world.size > 1:
        value = value.to(world.device)
        dist.all_reduce(value)
        value = value / world.size
    return float(value.item())


def gather(obj, world: World) -> list:
    """``obj`` from every rank, in rank order (a list of one without a process group)."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def replicas_identical(module: torch.nn.Module, world: World) -> bool:
    """True when every rank holds bit-identical parameters (what DDP promises)."""
    with torch.no_grad():
        digest = torch.cat([p.detach().double().flatten().cpu() for p in module.parameters()])
    sums = gather((digest.sum().item(), digest.abs().sum().item(), (digest * torch.arange(len(digest))).sum().item()),
                  world)
    return all(s == sums[0] for s in sums)
