"""Offline distillation (UniGraspTransformer): teacher rollout shards -> one student.

Resumable: `student/latest.pt` holds student, optimiser, epoch, curves and RNG state, so a
killed run continues from its last finished epoch and reaches the same student.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from distill_ros.atomic import atomic_write_json
from distill_ros.config import PipelineConfig
from distill_ros.distill.behavior_cloning import Distillation
from distill_ros.distill.dataset import load_dataset
from distill_ros.rundir import RunDir
from distill_ros.students.factory import build_student
from distill_ros.tasks.base import get_family

log = logging.getLogger(__name__)


@dataclass
class Split:
    """The distiller and its training and validation tensors, built the same on every rank."""

    algo: Distillation
    o_tr: torch.Tensor
    a_tr: torch.Tensor
    o_val: torch.Tensor
    a_val: torch.Tensor
    steps: int


#: one optimiser step on a (global) batch -> its mean loss
Update = Callable[[torch.Tensor, torch.Tensor], float]


def train_offline(run: RunDir, cfg: PipelineConfig) -> dict:
    """Train the student on the run's dataset in this process; returns figures for run.json.

    `ddp.train_ddp` runs the same `prepare` and `fit` on N torch.distributed ranks.
    """
    split = prepare(run.root, cfg)
    return fit(run.root, cfg, split, lambda o, a: split.algo.update(o, a)["loss"])


def prepare(root: Path, cfg: PipelineConfig, device: str = "cpu") -> Split:
    """Load the dataset, split it and build the seeded student (same RNG use on every rank)."""
    fam = get_family(cfg.family)
    obs, act, _ = load_dataset(root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(obs))
    n_val = max(1, int(len(obs) * cfg.distill.val_fraction))
    val, train = order[:n_val], order[n_val:]
    student = build_student(cfg.student, fam.obs_spec, fam.act_spec)
    student.set_normalizer(obs[train])
    student.to(device)
    algo = Distillation(student, cfg.distill.learning_rate, cfg.distill.weight_decay)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(device)
    return Split(algo, tensor(obs[train]), tensor(act[train]), tensor(obs[val]),
                 tensor(act[val]), int(len(obs)))


def fit(root: Path, cfg: PipelineConfig, split: Split, update: Update,
        main: bool = True) -> dict:
    """The epoch loop: resume from `student/latest.pt`, train, checkpoint (only if `main`)."""
    algo = split.algo
    (root / "student").mkdir(parents=True, exist_ok=True)
    latest, best = root / "student" / "latest.pt", root / "student" / "best.pt"
    state = {"epoch": 0, "best_val": float("inf"), "curves": []}
    if latest.is_file():
        state.update(algo.load(latest))
        torch.set_rng_state(state["torch_rng"])
        log.info("distill: resuming after epoch %d (best val loss %.5f)",
                 state["epoch"], state["best_val"])
    writer = _tensorboard(root) if main else None
    bar = tqdm(range(state["epoch"], cfg.distill.epochs), desc="distill", unit="epoch",
               initial=state["epoch"], total=cfg.distill.epochs, disable=not main)
    for epoch in bar:
        perm = torch.randperm(len(split.o_tr))
        losses = [update(split.o_tr[i], split.a_tr[i]) for i in perm.split(cfg.distill.batch_size)]
        val_loss = algo.evaluate(split.o_val, split.a_val)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss}
        state["curves"].append(row)
        bar.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}")
        if writer is not None:
            writer.add_scalar("loss/train", row["train_loss"], epoch + 1)
            writer.add_scalar("loss/val", val_loss, epoch + 1)
        state["epoch"] = epoch + 1
        if val_loss < state["best_val"]:
            state["best_val"] = val_loss
            if main:
                algo.save(best, **_ckpt_extra(state))
        if main:
            algo.save(latest, **_ckpt_extra(state))
    if writer is not None:
        writer.close()
    if main:
        atomic_write_json(root / "student" / "curves.json", state["curves"])
        plot_curves(state["curves"], root / "student" / "curves.png")
    return {"steps": split.steps, "epochs": state["epoch"], "best_val_loss": state["best_val"]}


def _ckpt_extra(state: dict) -> dict:
    return {"epoch": state["epoch"], "best_val": state["best_val"],
            "curves": list(state["curves"]), "torch_rng": torch.get_rng_state()}


def _tensorboard(root: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; tolerate a trimmed install
        log.warning("tensorboard not installed: curves go to curves.json/png only")
        return None
    return SummaryWriter(str(root / "student" / "tb"))


def plot_curves(curves: list[dict], path) -> None:
    """Training and validation loss per epoch, log scale, to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill_ros.atomic import atomic_write

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [c["epoch"] for c in curves]
    ax.plot(epochs, [c["train_loss"] for c in curves], label="train")
    ax.plot(epochs, [c["val_loss"] for c in curves], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalised actions)")
    ax.set_title("student distillation loss")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
