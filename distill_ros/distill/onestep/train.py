"""Training for the onestep algorithm: the diffusion teacher, then a OneDP generator per variant.

Each is resumable from its latest checkpoint and timed (wall seconds, summed over resumes)
so the report can compare distillation cost with teacher training cost.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from distill_ros.atomic import atomic_torch_save, atomic_write_json
from distill_ros.config import PipelineConfig
from distill_ros.distill.onestep.chunk_policy import ChunkScaler, GeneratorPolicy
from distill_ros.distill.onestep.distiller import OneStepConfig, OneStepDistiller
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family
from distill_ros.teachers.diffusion import (DiffusionConfig, DiffusionPolicy, teacher_optimizer,
                                            teacher_step)

log = logging.getLogger(__name__)
LOG_EVERY = 50  # updates per curve row


def diffusion_config(cfg: PipelineConfig) -> DiffusionConfig:
    """The teacher's settings from the pipeline config."""
    fam = get_family(cfg.family)
    return cfg.onestep.diffusion_config(fam.obs_spec.dim, fam.act_spec.dim, cfg.seed)


def _fresh(cfg: PipelineConfig, frames: np.ndarray | None = None):
    fam = get_family(cfg.family)
    policy = DiffusionPolicy(diffusion_config(cfg))
    scaler = ChunkScaler(fam.obs_spec, fam.act_spec, cfg.onestep.obs_history)
    if frames is not None:
        scaler.fit(frames)
    return policy, scaler


def train_teacher(run: RunDir, cfg: PipelineConfig, hist: np.ndarray, chunks: np.ndarray,
                  frames: np.ndarray) -> dict:
    """DDPM training (AdamW, cosine decay) with checkpoints; returns figures for run.json."""
    o = cfg.onestep
    if o.prediction == "epsilon":
        log.warning("onestep.prediction is epsilon: sampling works, but OneDP distils an "
                    "epsilon teacher unstably (x_0 = (z - sigma eps) / alpha amplifies each "
                    "generator step ~10x); prefer prediction: sample, or lower lr_generator")
    folder = run.root / "teachers" / "diffusion"
    latest = run.path("teachers", "diffusion", "latest.pt")
    policy, scaler = _fresh(cfg, frames)
    opt, sched = teacher_optimizer(policy, o.teacher_lr, o.teacher_updates)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"update": 0, "wall_s": 0.0, "curves": []}
    if latest.is_file():
        ck = torch.load(latest, map_location="cpu", weights_only=False)
        policy.load_state_dict(ck["policy"])
        scaler.load_state_dict(ck["scaler"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["rng"])
        state = ck["state"]
        log.info("diffusion teacher: resuming after update %d", state["update"])
    x = scaler.norm_obs(torch.from_numpy(hist))
    a = scaler.scale_actions(torch.from_numpy(chunks)).clamp(-1.0, 1.0)
    policy.train()
    losses: list[float] = []
    started = time.monotonic()
    bar = tqdm(range(state["update"], o.teacher_updates), desc="diffusion teacher",
               unit="upd", initial=state["update"], total=o.teacher_updates)
    for step in bar:
        losses.append(teacher_step(policy, opt, sched, x, a, o.teacher_batch_size, gen))
        state["update"] = step + 1
        if state["update"] % LOG_EVERY == 0 or state["update"] == o.teacher_updates:
            state["curves"].append({"update": state["update"], "loss": float(np.mean(losses))})
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", refresh=False)
            losses = []
        if state["update"] % o.checkpoint_every == 0 or state["update"] == o.teacher_updates:
            state["wall_s"] += time.monotonic() - started
            started = time.monotonic()
            atomic_torch_save(latest, {"policy": policy.state_dict(), "opt": opt.state_dict(),
                                       "sched": sched.state_dict(), "rng": gen.get_state(),
                                       "scaler": scaler.state_dict(), "state": state})
    policy.eval()
    atomic_torch_save(folder / "teacher.pt", {
        "policy": policy.state_dict(), "scaler": scaler.state_dict(),
        "config": asdict(policy.cfg), "train_wall_s": state["wall_s"]})
    atomic_write_json(folder / "curves.json", state["curves"])
    plot_curves(state["curves"], ["loss"], folder / "curves.png", "diffusion teacher (DDPM)")
    write_tensorboard(state["curves"], folder / "tb", "diffusion_teacher")
    log.info("diffusion teacher: %d updates in %.1f s", state["update"], state["wall_s"])
    return {"updates": state["update"], "train_wall_s": state["wall_s"],
            "final_loss": state["curves"][-1]["loss"] if state["curves"] else None}


def write_tensorboard(curves: list[dict], folder: Path, tag: str) -> None:
    """All rows of `curves` as TensorBoard scalars `tag/<term>`; the folder is rewritten whole."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; tolerate a trimmed install
        log.warning("tensorboard not installed: curves go to curves.json/png only")
        return
    shutil.rmtree(folder, ignore_errors=True)  # a resumed run writes one clean copy
    with SummaryWriter(str(folder)) as writer:
        for row in curves:
            for key, value in row.items():
                if key != "update" and value is not None:
                    writer.add_scalar(f"{tag}/{key}", value, row["update"])


def load_diffusion_teacher(run: RunDir, cfg: PipelineConfig):
    """(teacher, scaler, train_wall_s) from teachers/diffusion/teacher.pt."""
    path = run.root / "teachers" / "diffusion" / "teacher.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `distill-ros distill CONFIG` "
                                "first")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    policy, scaler = _fresh(cfg)
    policy.load_state_dict(ck["policy"])
    scaler.load_state_dict(ck["scaler"])
    return policy.eval(), scaler, float(ck["train_wall_s"])


def onestep_config(cfg: PipelineConfig, variant: str) -> OneStepConfig:
    """The distiller's settings for `variant`."""
    return cfg.onestep.distiller_config(variant, cfg.seed)


def distill_generator(run: RunDir, cfg: PipelineConfig, variant: str, teacher: DiffusionPolicy,
                      obs_norm: torch.Tensor) -> dict:
    """Run the OneDP updates of `variant`, resumable; loss terms go to curves.json/png."""
    distiller = OneStepDistiller(teacher, onestep_config(cfg, variant))
    return run_distiller(run, cfg, distiller, f"onestep_{variant}", f"OneDP-{variant[0].upper()}",
                         lambda idx: distiller.update(obs_norm[idx]), len(obs_norm))


def run_distiller(run: RunDir, cfg: PipelineConfig, distiller, name: str, label: str,
                  update: Callable[[torch.Tensor], dict], n_rows: int) -> dict:
    """`onestep.distill_updates` of `update(batch indices)` into student/<name>, resumable.

    `distiller` has `num_updates`, `save(path)` and `load(path)`; batches are drawn from
    `n_rows` rows with the same seeded indices for every distiller, so they see one stream.
    """
    o = cfg.onestep
    folder = run.root / "student" / name
    latest, progress = run.path("student", name, "latest.pt"), folder / "progress.json"
    state = {"wall_s": 0.0, "curves": []}
    if latest.is_file():
        distiller.load(str(latest))
        if progress.is_file():
            state = json.loads(progress.read_text())
        state["curves"] = [r for r in state["curves"] if r["update"] <= distiller.num_updates]
        log.info("%s: resuming after update %d", label, distiller.num_updates)
    if o.curve_every and distiller.num_updates == 0:
        snapshot(folder, distiller, 0.0)
    sums: dict[str, list[float]] = {}
    started = time.monotonic()
    bar = tqdm(range(distiller.num_updates, o.distill_updates), desc=label,
               unit="upd", initial=distiller.num_updates, total=o.distill_updates)
    for step in bar:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, n_rows, (o.distill_batch_size,), generator=g)
        for k, v in update(idx).items():
            sums.setdefault(k, []).append(v)
        n = distiller.num_updates
        if n % 10 == 0 or n == o.distill_updates:
            row = {"update": n, **{k: float(np.mean(v)) for k, v in sums.items()}}
            state["curves"].append(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "update"},
                            refresh=False)
            sums = {}
        if o.curve_every and (n % o.curve_every == 0 or n == o.distill_updates):
            started += snapshot(folder, distiller, state["wall_s"] + time.monotonic() - started)
        if n % o.checkpoint_every == 0 or n == o.distill_updates:
            state["wall_s"] += time.monotonic() - started
            started = time.monotonic()
            distiller.save(str(latest))
            atomic_write_json(progress, state)
            log.info("%s: update %d, %s", label, n, {
                k: round(v, 5) for k, v in (state["curves"] or [{}])[-1].items()
                if k != "update"})
    terms = [k for k in (state["curves"][0] if state["curves"] else {}) if k != "update"]
    plot_curves(state["curves"], terms, folder / "curves.png", label)
    write_tensorboard(state["curves"], folder / "tb", name)
    atomic_write_json(folder / "curves.json", state["curves"])
    last = state["curves"][-1] if state["curves"] else {}
    return {"updates": distiller.num_updates, "distill_wall_s": state["wall_s"],
            **{f"final_{k}": last.get(k) for k in terms}}


def snapshot(folder: Path, distiller, wall_s: float) -> float:
    """The policy's weights at this update and wall time, for the convergence curves.

    Returns the seconds the write took, which the caller keeps out of the distillation time.
    """
    begin = time.monotonic()
    n = distiller.num_updates
    atomic_torch_save(folder / "snapshots" / f"{n:06d}.pt", {
        "update": n, "wall_s": wall_s, "policy": distiller.get_policy().state_dict()})
    return time.monotonic() - begin


def load_generator(run: RunDir, cfg: PipelineConfig, variant: str, teacher: DiffusionPolicy,
                   scaler: ChunkScaler) -> GeneratorPolicy:
    """The distilled generator of `variant`, wrapped with the teacher's scaler."""
    path = run.root / "student" / f"onestep_{variant}" / "latest.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `distill-ros distill CONFIG` "
                                "first")
    distiller = OneStepDistiller(teacher, onestep_config(cfg, variant))
    distiller.load(str(path))
    return GeneratorPolicy(distiller.get_policy(), scaler).eval()


def plot_curves(curves: list[dict], keys: list[str], path: Path, title: str) -> None:
    """Each logged term against updates, one panel per term, to PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from distill_ros.atomic import atomic_write

    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3.2),
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot([c["update"] for c in curves], [c[key] for c in curves])
        ax.set_xlabel("update")
        ax.set_title(key)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)
