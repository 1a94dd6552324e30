"""Convergence curves: success against distillation wall time, OneDP-S / OneDP-D / CD.

With `onestep.curve_every`, `train.run_distiller` snapshots each student's weights every
that many updates (and at update 0) with the distillation wall time spent so far. Here
every snapshot is evaluated like the final policies (the chunked runtime, the same eval
seeds for every snapshot and student) and written to report/convergence.{json,png}, with
the time each student first reaches its final success (OneDP reports 20x faster
convergence than Consistency Policy distillation).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

from distill_ros.atomic import atomic_write_json
from distill_ros.config import PipelineConfig
from distill_ros.distill.onestep.chunk_policy import GeneratorPolicy
from distill_ros.rundir import RunDir

log = logging.getLogger(__name__)


def _students(cfg: PipelineConfig, teacher) -> list[tuple[str, str, Callable]]:
    """(folder, label, fresh model factory) of every distilled student."""
    from distill_ros.distill.onestep.consistency import ConsistencyGenerator
    from distill_ros.distill.onestep.consistency_train import NAME
    from distill_ros.distill.onestep.distiller import OneStepDistiller
    from distill_ros.distill.onestep.train import onestep_config

    out = [(f"onestep_{v}", f"OneDP-{v[0].upper()}",
            lambda v=v: OneStepDistiller(teacher, onestep_config(cfg, v)).get_policy())
           for v in cfg.onestep.variants]
    if cfg.onestep.consistency:
        out.append((NAME, "CD 1-step", lambda: ConsistencyGenerator(teacher)))
    return out


def first_reach(points: list[dict], level: float) -> float | None:
    """Wall time of the first snapshot with success >= `level`; None if none reaches it."""
    return next((p["wall_s"] for p in points if p["success"] >= level - 1e-9), None)


def convergence_curves(run: RunDir, cfg: PipelineConfig, success: Callable) -> dict:
    """Evaluate every snapshot; `success(name, planner)` is the mean success on the eval seeds."""
    from distill_ros.distill.onestep.train import load_diffusion_teacher

    teacher, scaler, _ = load_diffusion_teacher(run, cfg)
    curves: dict[str, dict] = {}
    for folder, label, fresh in _students(cfg, teacher):
        points = []
        for path in sorted((run.root / "student" / folder / "snapshots").glob("*.pt")):
            ck = torch.load(path, map_location="cpu", weights_only=False)
            model = fresh()
            model.load_state_dict(ck["policy"])
            policy = GeneratorPolicy(model, scaler).eval()
            points.append({"update": ck["update"], "wall_s": round(ck["wall_s"], 3),
                           "success": success(f"{label} @{ck['update']}", policy.plan)})
        if points:
            final = points[-1]["success"]
            curves[label] = {"points": points, "final_success": final,
                             "wall_s_to_final": first_reach(points, final)}
            log.info("convergence %s: %s", label, [(p["update"], p["success"]) for p in points])
    ref = curves.get("OneDP-S")
    for c in curves.values():   # time to reach OneDP-S's final success, the race
        c["wall_s_to_onedp_s_final"] = first_reach(c["points"], ref["final_success"]) \
            if ref else None
    report = run.root / "report"
    atomic_write_json(report / "convergence.json", {
        "episodes_per_task": cfg.eval.episodes, "curve_every": cfg.onestep.curve_every,
        "curves": curves})
    if curves:
        plot_convergence(curves, report / "convergence.png")
    return curves


def plot_convergence(curves: dict, path) -> None:
    """Success against distillation wall time, one line per student."""
    from distill_ros.distill.onestep.eval import _figure

    def draw(ax) -> None:
        for label, c in curves.items():
            pts = c["points"]
            ax.plot([p["wall_s"] for p in pts], [p["success"] for p in pts], "o-", label=label)
        ax.set_xlabel("distillation wall time, s")
        ax.set_ylabel("mean success rate (same eval seeds)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend()
    _figure(path, draw, (6.5, 4.2))
