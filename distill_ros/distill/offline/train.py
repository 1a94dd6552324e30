"""Offline distillation (UniGraspTransformer): teacher rollout shards -> one student.

Resumable: `student/latest.pt` holds student, optimiser, epoch, curves and RNG state, so a
killed run continues from its last finished epoch and reaches the same student.
"""

from __future__ import annotations

import logging

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


def train_offline(run: RunDir, cfg: PipelineConfig) -> dict:
    """Train the student on the run's dataset; returns final figures for run.json."""
    fam = get_family(cfg.family)
    obs, act, _ = load_dataset(run.root / "data", cfg.tasks, fam.obs_spec, fam.act_spec)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(obs))
    n_val = max(1, int(len(obs) * cfg.distill.val_fraction))
    val, train = order[:n_val], order[n_val:]
    student = build_student(cfg.student, fam.obs_spec, fam.act_spec)
    student.set_normalizer(obs[train])
    algo = Distillation(student, cfg.distill.learning_rate, cfg.distill.weight_decay)
    o_tr, a_tr = torch.from_numpy(obs[train]), torch.from_numpy(act[train])
    o_val, a_val = torch.from_numpy(obs[val]), torch.from_numpy(act[val])

    latest, best = run.path("student", "latest.pt"), run.path("student", "best.pt")
    state = {"epoch": 0, "best_val": float("inf"), "curves": []}
    if latest.is_file():
        state.update(algo.load(latest))
        torch.set_rng_state(state["torch_rng"])
        log.info("distill: resuming after epoch %d (best val loss %.5f)",
                 state["epoch"], state["best_val"])
    writer = _tensorboard(run)
    bar = tqdm(range(state["epoch"], cfg.distill.epochs), desc="distill", unit="epoch",
               initial=state["epoch"], total=cfg.distill.epochs)
    for epoch in bar:
        perm = torch.randperm(len(o_tr))
        losses = [algo.update(o_tr[i], a_tr[i])["loss"]
                  for i in perm.split(cfg.distill.batch_size)]
        val_loss = algo.evaluate(o_val, a_val)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss}
        state["curves"].append(row)
        bar.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}")
        if writer is not None:
            writer.add_scalar("loss/train", row["train_loss"], epoch + 1)
            writer.add_scalar("loss/val", val_loss, epoch + 1)
        state["epoch"] = epoch + 1
        if val_loss < state["best_val"]:
            state["best_val"] = val_loss
            algo.save(best, **_ckpt_extra(state))
        algo.save(latest, **_ckpt_extra(state))
    if writer is not None:
        writer.close()
    atomic_write_json(run.path("student", "curves.json"), state["curves"])
    plot_curves(state["curves"], run.path("student", "curves.png"))
    return {"steps": int(len(obs)), "epochs": state["epoch"], "best_val_loss": state["best_val"]}


def _ckpt_extra(state: dict) -> dict:
    return {"epoch": state["epoch"], "best_val": state["best_val"],
            "curves": list(state["curves"]), "torch_rng": torch.get_rng_state()}


def _tensorboard(run: RunDir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; tolerate a trimmed install
        log.warning("tensorboard not installed: curves go to curves.json/png only")
        return None
    return SummaryWriter(str(run.path("student", "tb", "x").parent))


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
