"""Data-parallel training on several processes with PyTorch's own engine (``torch.distributed``,
launched by ``torchrun`` or ``genzoo train --nproc N``): gloo on CPU, NCCL on CUDA.

Every rank holds the whole model and takes its contiguous share of every global batch, in the
same (seed, epoch) order as a single process. Gradients are averaged across ranks by one
all-reduce just before every optimizer step (a step pre-hook), which covers every model alike:
backprop models, GANs with two optimizers and a frozen discriminator, and Boltzmann machines whose
contrastive-divergence statistics fill in ``.grad`` without autograd. (DistributedDataParallel's
own hooks fire on ``module.forward``; genzoo's steps call several networks and optimizers, so the
same all-reduce is made where it fits all of them.) Each rank draws its own noise from generators
seeded by (seed, rank); their states, and buffers that differ between ranks (batch-norm running
statistics, persistent chains), are saved per rank in the checkpoint, so a run resumed with the
same number of processes continues exactly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import GenzooError

RANK_SEED_STRIDE = 1_000_003  # rank r draws its noise from seed + r * this


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a batch's rows (the whole batch for one process)."""
        return rows.tensor_split(self.world)[self.rank] if self.distributed else rows


SINGLE = Group()  # one process


def launched_world() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device_type: str) -> Group:
    """Join the process group torchrun describes in the environment (a no-op for one process)."""
    if launched_world() <= 1:
        return Group()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise GenzooError(f"cannot join the {launched_world()} training processes ({exc})") from None
    return Group(rank=dist.get_rank(), world=dist.get_world_size())


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def average_gradients_before_steps(optimizer: torch.optim.Optimizer, group: Group) -> None:
    """Make every ``optimizer.step()`` first replace each gradient by its mean over the ranks."""

    def average(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])  # one all-reduce for all of them
        dist.all_reduce(flat)
        flat /= group.world
        for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(part.view_as(grad))

    optimizer.register_step_pre_hook(average)


def all_sum(values: torch.Tensor, group: Group) -> torch.Tensor:
    """Element-wise sum over the ranks (the tensor itself for one process)."""
    if group.distributed:
        dist.all_reduce(values)
    return values


def gather(value: object, group: Group) -> list:
    """Every rank's ``value``, in rank order, on every rank."""
    if not group.distributed:
        return [value]
    values = [None] * group.world
    dist.all_gather_object(values, value)
    return values


def broadcast(value: object, group: Group) -> object:
    """Rank 0's ``value`` on every rank."""
    if not group.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(*, wait_for_peers: bool = True) -> None:
    """Close the process group. After a normal end, first wait until every rank is here: a rank
    that closes its gloo connections while another still uses them aborts that one (SIGABRT,
    "terminate called without an active exception"; seen in CI runs of the 2-process test).
    After an error the peers may never arrive, so do not wait."""
    if dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def exit_skipping_finalization(code: int) -> None:
    """End a torchrun worker whose work is done (the process group closed, every file written and
    closed) without the interpreter's finalization. There gloo's C++ threads can still hold objects
    whose destruction needs the interpreter being torn down, and the process aborts with SIGABRT
    ("terminate called without an active exception"), which torchrun reports as a failed run. Seen
    in full test-suite runs even after the barrier of :func:`teardown`; not reproduced in 55
    standalone runs; pytorch/pytorch#179291 describes the same crash."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def process_group_closed_at_exit():
    """Run the body, then :func:`teardown` (waiting for the peers only if the body succeeded)."""
    try:
        yield
    except BaseException:
        teardown(wait_for_peers=False)
        raise
    teardown()
