"""The offline student on torch DDP: `distill-ros distill CONFIG --nproc N`.

N processes are spawned on this machine (gloo on CPU; nccl with one GPU per rank when
there are N GPUs). Every rank builds the same seeded student and draws the same
permutation, so each global batch of `distill.batch_size` is the one a single process
would use; rank r takes its contiguous share. The loss is each share's squared-error *sum*
over the global element count (times N, because DDP averages gradients), so the all-reduced
gradient is exactly the single-process batch-mean gradient, uneven and empty shares
included; only the summation order differs (floating-point noise). Rank 0 alone writes the
atomic checkpoints, curves and plot; any rank count resumes from them.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from distill_ros.config import PipelineConfig
from distill_ros.distill.offline.train import Split, fit, prepare
from distill_ros.rundir import RunDir

log = logging.getLogger(__name__)


def train_ddp(run: RunDir, cfg: PipelineConfig) -> dict:
    """Train on `cfg.distill.nproc` spawned ranks; returns rank 0's figures for run.json."""
    world = cfg.distill.nproc
    backend, devices = _backend(world)
    log.info("distill: %d torch.distributed ranks (%s on %s)", world, backend,
             "GPUs" if backend == "nccl" else "CPU")
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="distill_ros_ddp_") as tmp:
        try:
            mp.spawn(_rank_main, args=(world, rendezvous(tmp), backend, devices, run.root, cfg,
                                       results, os.getpid()), nprocs=world, join=True)
        except mp.ProcessRaisedException:
            if not results.empty():  # a user error on rank 0 (a bad checkpoint): as raised
                raise results.get() from None
            raise
    return results.get()


def _backend(world: int) -> tuple[str, bool]:
    """The backend: NCCL with one GPU per rank when there are enough GPUs, else gloo on CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= world:
        return "nccl", True
    return "gloo", False


def rendezvous(folder: str) -> str:
    """Where the ranks meet: a file store in `folder` (one machine, no port to race for)."""
    return (Path(folder) / "store").resolve().as_uri()


def init_rank(rank: int, world: int, backend: str, init_method: str) -> None:
    """Join the process group; the collectives' sockets stay on loopback (one machine)."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)


def _rank_main(rank: int, world: int, init_method: str, backend: str, gpus: bool, root: Path,
               cfg: PipelineConfig, results, driver: int) -> None:
    """One rank: join the group on loopback, train, rank 0 reports the figures.

    It ends with the `driver` process, killed or not (rank 0 writes the run's checkpoints).
    """
    from distill_ros.executor import exit_with_parent
    from distill_ros.pipeline import set_threads
    from distill_ros.tasks.base import add_user_tasks

    exit_with_parent(driver)
    add_user_tasks(cfg.family, cfg.objects, "objects")  # a config's own tasks, in this process
    set_threads(cfg)
    device = f"cuda:{rank}" if gpus else "cpu"
    if gpus:
        torch.cuda.set_device(rank)
    init_rank(rank, world, backend, init_method)
    try:
        split = prepare(root, cfg, device)
        update = DDPUpdate(split, rank, world, device)
        info = fit(root, cfg, split, update, main=rank == 0)
        dist.barrier()  # no rank tears its connections down while a peer still uses them
        del update  # DDP's reducer goes before its process group
        gc.collect()
    except (ValueError, FileNotFoundError) as err:  # the user's to fix: the CLI names it
        if rank == 0:
            results.put(err)
        raise
    finally:
        dist.destroy_process_group()
    if rank == 0:
        results.put(info)


class _Normalized(nn.Module):
    """The student's training forward (normalised actions) as the module DDP wraps."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.student.forward_normalized(obs)


class DDPUpdate:
    """One optimiser step on this rank's share of a global batch; returns the global loss."""

    def __init__(self, split: Split, rank: int, world: int, device: str) -> None:
        self.algo, self.rank, self.world = split.algo, rank, world
        ids = [rank] if device.startswith("cuda") else None
        self.model = DistributedDataParallel(_Normalized(split.algo.student), device_ids=ids)

    def __call__(self, obs: torch.Tensor, act: torch.Tensor) -> float:
        """Same step as `Distillation.update` on the whole batch, spread over the ranks."""
        squared, elements = self.backward(obs, act)
        torch.nn.utils.clip_grad_norm_(self.algo.student.parameters(), 1.0)
        self.algo.optimizer.step()
        dist.all_reduce(squared)
        return float(squared) / elements

    def backward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Leave the whole batch's mean-loss gradient in `.grad`; this share's squared sum."""
        n = len(obs)
        mine = slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)
        student = self.algo.student
        student.train()
        target = student.normalize_actions(act[mine])
        squared = torch.sum((self.model(obs[mine]) - target) ** 2)
        elements = n * act.shape[-1]
        self.algo.optimizer.zero_grad(set_to_none=True)
        (squared * (self.world / elements)).backward()  # DDP averages: x world
        return squared.detach().clone(), elements
