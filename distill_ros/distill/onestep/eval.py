"""Evaluation for the onestep algorithm: every policy on the same seeds, with its latency.

Rows: each demonstrator, the diffusion teacher with 100-step DDPM and with DDIM, each
OneDP generator (its exported ONNX file), the consistency baseline, and the
behaviour-cloning MLP (ONNX). Chunked policies execute `n_exec` actions per plan and
re-plan, as `runtime.chunked.ChunkedPolicy` does; a task's episodes run in lockstep with
one batched plan per re-plan tick (`lockstep`), and the planning noise is seeded from the
eval seed, so reruns give the same table.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from distill_ros.atomic import atomic_write, atomic_write_json, atomic_write_text
from distill_ros.config import PipelineConfig
from distill_ros.distill.onestep.lockstep import Chunking, Planner, lockstep_success, per_tick
from distill_ros.evaluate import wilson_interval
from distill_ros.rollout import episode_seed
from distill_ros.rundir import RunDir
from distill_ros.tasks.base import get_family

log = logging.getLogger(__name__)


@dataclass
class EvalPolicy:
    """A policy under evaluation: a planner per task, how it is chunked, a timed `call`."""

    name: str
    kind: str
    bind: Callable[[str], Planner]   # task -> planner (a per-tick policy: chunks of one)
    chunking: Chunking
    call: Callable[[], object]       # one batch-1 inference, for the latency figure
    actions_per_call: int


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls.

    Torch runs on one intra-op thread here, as the ONNX Runtime sessions do, so torch and
    ONNX rows compare like with like (a control loop owns one core); the caller's thread
    count is restored afterwards.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)


def _chunked(name: str, kind: str, planner, cfg: PipelineConfig, row: np.ndarray) -> EvalPolicy:
    o = cfg.onestep
    rng = np.random.default_rng(0)
    return EvalPolicy(name, kind, lambda task: planner,
                      Chunking(o.horizon, o.n_exec, o.obs_history),
                      lambda: planner(row, rng), o.n_exec)


def build_policies(run: RunDir, cfg: PipelineConfig, row: np.ndarray,
                   frame: np.ndarray) -> list[EvalPolicy]:
    """Demonstrators, DDPM and DDIM teacher, the generators (ONNX) and BC (ONNX)."""
    from distill_ros.distill.onestep.chunk_policy import DiffusionPlanner
    from distill_ros.distill.onestep.data import demonstrators
    from distill_ros.distill.onestep.train import load_diffusion_teacher
    from distill_ros.runtime.chunked import OnnxChunkPlanner
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.teachers import load_teacher

    fam, o = get_family(cfg.family), cfg.onestep
    out = []
    names = [] if o.dataset else (o.demonstrators or ["teacher"])   # a dataset has no demo
    for k, name in enumerate(names):
        def bind(task: str, k: int = k, cache: dict = {}) -> Callable:
            if task not in cache:
                path = demonstrators(run, cfg, task)[k][1]
                cache[task] = load_teacher(path, fam.obs_spec, fam.act_spec).act
            return cache[task]
        out.append(EvalPolicy(f"demo {Path(name).stem}", "demonstrator",
                              lambda task, bind=bind: per_tick(bind(task)), Chunking(),
                              lambda bind=bind: bind(cfg.tasks[0])(frame), 1))
    teacher, scaler, _ = load_diffusion_teacher(run, cfg)
    out.append(_chunked(f"diffusion DDPM-{o.diffusion_steps}", "teacher",
                        DiffusionPlanner(teacher, scaler, "ddpm"), cfg, row))
    out.append(_chunked(f"diffusion DDIM-{o.ddim_steps}", "teacher",
                        DiffusionPlanner(teacher, scaler, "ddim", o.ddim_steps), cfg, row))
    for variant in o.variants:
        planner = OnnxChunkPlanner(run.root / "export" / f"onestep_{variant}.onnx", False)
        out.append(_chunked(f"OneDP-{variant[0].upper()} ({variant}, ONNX)", "one-step",
                            planner, cfg, row))
    if o.consistency:
        from distill_ros.distill.onestep.consistency_train import (NAME, TwoStepPlanner,
                                                                   load_consistency)

        planner = OnnxChunkPlanner(run.root / "export" / f"onestep_{NAME}.onnx", False)
        out.append(_chunked("CD 1-step (consistency, ONNX)", "consistency", planner, cfg, row))
        two = TwoStepPlanner(load_consistency(run, cfg, teacher, scaler), cfg)
        out.append(_chunked("CD 2-step (consistency, torch)", "consistency", two, cfg, row))
    bc = OnnxPolicy(run.root / "export" / "bc.onnx", want_gpu=False)
    out.append(EvalPolicy(f"BC {cfg.student.arch} (ONNX)", "bc", lambda task: per_tick(bc.act),
                          Chunking(), lambda: bc.act(frame), 1))
    return out


def _success(cfg: PipelineConfig, policy: EvalPolicy, task: str, index: int) -> float:
    """Success rate on the task's eval seeds, every episode in lockstep (`lockstep`)."""
    seeds = [episode_seed(cfg.eval.seed, index, ep) for ep in range(cfg.eval.episodes)]
    wins = lockstep_success(cfg.family, task, policy.bind(task), policy.chunking, seeds,
                            noise_seed=episode_seed(cfg.eval.seed, index, 0))
    log.debug("eval %s %s: %d / %d", policy.name, task, int(wins.sum()), len(seeds))
    return float(wins.mean())


def evaluate_all(run: RunDir, cfg: PipelineConfig) -> dict:
    """Success per task and latency per call of every policy; writes report/."""
    from distill_ros.distill.onestep.data import windows

    hist, _, frames = windows(run, cfg)
    policies = build_policies(run, cfg, hist[:1], frames[:1])
    rows = []
    for policy in policies:
        success = {task: _success(cfg, policy, task, i) for i, task in enumerate(cfg.tasks)}
        latency = 1e3 * median_seconds(policy.call, cfg.onestep.latency_repeats)
        mean, n = float(np.mean(list(success.values()))), cfg.eval.episodes * len(cfg.tasks)
        ci = {task: _ci(rate, cfg.eval.episodes) for task, rate in success.items()}
        rows.append({"policy": policy.name, "kind": policy.kind, "success": success,
                     "success_ci": ci, "mean": mean, "episodes": n, "mean_ci": _ci(mean, n),
                     "latency_ms": latency, "actions_per_call": policy.actions_per_call})
        log.info("eval %s: mean success %.3f, %.2f ms per call", policy.name, rows[-1]["mean"],
                 latency)
    summary = summarize(run, cfg, rows)
    if cfg.onestep.curve_every:
        summary["convergence"] = _convergence(run, cfg, hist[:1])
    report = run.root / "report"
    atomic_write_json(report / "eval.json", {"policies": rows, "summary": summary})
    atomic_write_text(report / "eval.md", format_table(cfg, rows, summary))
    plot_success_vs_latency(rows, report / "success_vs_latency.png")
    plot_per_task(cfg, rows, report / "eval.png")
    return summary


def _convergence(run: RunDir, cfg: PipelineConfig, row: np.ndarray) -> dict:
    """report/convergence.{json,png}; the summary keeps each student's times to success."""
    from distill_ros.distill.onestep.convergence import convergence_curves, draw_convergence

    def success(name: str, planner) -> float:
        policy = _chunked(name, "snapshot", planner, cfg, row)
        return float(np.mean([_success(cfg, policy, task, i)
                              for i, task in enumerate(cfg.tasks)]))

    curves = convergence_curves(run, cfg, success)
    if curves:
        _figure(run.root / "report" / "convergence.png",
                lambda ax: draw_convergence(ax, curves), (6.5, 4.2))
    return {label: {k: v for k, v in c.items() if k != "points"}
            for label, c in curves.items()}


def _ci(rate: float, n: int) -> tuple[float, float]:
    return wilson_interval(round(rate * n), n)


def gap_interval_pp(a: dict, b: dict) -> tuple[float, float]:
    """95% interval of mean success a - b in points (Newcombe 1998, method 10).

    Built from the two rows' Wilson intervals; it ignores that both rows ran the same
    seeds, which only widens it. A gap whose interval holds 0 is not a measured difference.
    """
    (l1, u1), (l2, u2) = a["mean_ci"], b["mean_ci"]
    d = a["mean"] - b["mean"]
    lo = d - math.sqrt((a["mean"] - l1) ** 2 + (u2 - b["mean"]) ** 2)
    hi = d + math.sqrt((u1 - a["mean"]) ** 2 + (b["mean"] - l2) ** 2)
    return (round(100.0 * lo, 2), round(100.0 * hi, 2))


def summarize(run: RunDir, cfg: PipelineConfig, rows: list[dict]) -> dict:
    """The issue's figures: one-step vs 100-step teacher, and distillation vs training time."""
    import json

    ddpm = next(r for r in rows if r["policy"].startswith("diffusion DDPM"))
    timing = json.loads((run.root / "student" / "onestep_timing.json").read_text())
    out = {"episodes_per_task": cfg.eval.episodes, "teacher_ddpm_mean": ddpm["mean"],
           "teacher_train_wall_s": timing["teacher_train_wall_s"], "variants": {}}
    for variant in cfg.onestep.variants:
        row = next(r for r in rows if r["policy"].startswith(f"OneDP-{variant[0].upper()}"))
        gap_pp = 100.0 * (ddpm["mean"] - row["mean"])
        out["variants"][variant] = {
            "mean": row["mean"], "gap_to_ddpm_pp": gap_pp,
            "gap_ci_pp": gap_interval_pp(ddpm, row), "within_5pp": gap_pp <= 5.0,
            "within_2pp": gap_pp <= 2.0,
            "distill_wall_s": timing[variant]["distill_wall_s"],
            "distill_over_teacher_wall": timing[f"{variant}_over_teacher_wall"],
            "speedup_vs_ddpm": ddpm["latency_ms"] / row["latency_ms"]}
    for r in (r for r in rows if r["kind"] == "consistency"):
        out.setdefault("consistency", {})[r["policy"].split(" (")[0]] = {
            "mean": r["mean"], "gap_to_ddpm_pp": 100.0 * (ddpm["mean"] - r["mean"]),
            "distill_wall_s": timing["consistency"]["distill_wall_s"]}
    out["bc_mean"] = next(r for r in rows if r["kind"] == "bc")["mean"]
    out["deploy"] = cfg.onestep.deploy
    return out


def format_table(cfg: PipelineConfig, rows: list[dict], summary: dict) -> str:
    """Markdown: success per task, mean, latency per call at batch 1 (CPU, one thread)."""
    head = ("| policy | " + " | ".join(cfg.tasks) + " | mean [95% CI] | latency ms/call | "
            "actions/call |")
    lines = [head, "|" + "---|" * (len(cfg.tasks) + 4)]
    for r in rows:
        cells = " | ".join(f"{r['success'][t]:.2f} [{r['success_ci'][t][0]:.2f}, "
                           f"{r['success_ci'][t][1]:.2f}]" for t in cfg.tasks)
        lo, hi = r["mean_ci"]
        lines.append(f"| {r['policy']} | {cells} | {r['mean']:.3f} [{lo:.2f}, {hi:.2f}] | "
                     f"{r['latency_ms']:.2f} | {r['actions_per_call']} |")
    lines += ["", f"episodes per task: {summary['episodes_per_task']} (same seeds for every "
              f"policy), {rows[0]['episodes']} per mean (95% Wilson interval); teacher "
              f"training: {summary['teacher_train_wall_s']:.1f} s"]
    for variant, v in summary["variants"].items():
        lines.append(f"OneDP-{variant}: {100 * v['mean']:.1f}% vs DDPM teacher "
                     f"{100 * summary['teacher_ddpm_mean']:.1f}% (gap {v['gap_to_ddpm_pp']:.1f} "
                     f"pp, 95% CI [{v['gap_ci_pp'][0]:.1f}, {v['gap_ci_pp'][1]:.1f}]; within 5 "
                     f"pp: {v['within_5pp']}, 2 pp: {v['within_2pp']}); distillation "
                     f"{v['distill_wall_s']:.1f}"
                     f" s = {100 * v['distill_over_teacher_wall']:.1f}% of teacher training; "
                     f"{v['speedup_vs_ddpm']:.0f}x faster per chunk")
    for name, v in summary.get("consistency", {}).items():
        lines.append(f"{name}: {100 * v['mean']:.1f}% (gap {v['gap_to_ddpm_pp']:.1f} pp to "
                     f"DDPM); distillation {v['distill_wall_s']:.1f} s, same updates and "
                     "batches as OneDP")
    lines.append(f"BC MLP mean success: {100 * summary['bc_mean']:.1f}%")
    return "\n".join(lines) + "\n"


def _figure(path, draw: Callable, size: tuple[float, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def plot_success_vs_latency(rows: list[dict], path) -> None:
    """Mean success (95% interval) against batch-1 latency per call, log axis."""
    _figure(path, lambda ax: draw_success_vs_latency(ax, rows), (7.5, 5.2))


def draw_success_vs_latency(ax, rows: list[dict]) -> None:
    """One marker per policy, named in a legend under the plot, never in floating labels.

    Policies often sit on top of each other (two demonstrators, two one-step variants), so
    labels next to the points overlapped; the legend cannot.
    """
    markers = "osD^v<>Xp*h"
    for k, r in enumerate(rows):
        lo, hi = r.get("mean_ci") or (r["mean"], r["mean"])
        err = [[max(0.0, r["mean"] - lo)], [max(0.0, hi - r["mean"])]]
        ax.errorbar([r["latency_ms"]], [r["mean"]], yerr=err,
                    fmt=markers[k % len(markers)], markersize=7, capsize=3, alpha=0.85,
                    label=f"{r['policy']}: {r['mean']:.2f}, {r['latency_ms']:.2f} ms")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("latency per call, ms (batch 1, CPU, 1 thread; log scale)")
    ax.set_ylabel("mean success rate (95% interval)")
    ax.set_title("success vs action latency")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7,
              frameon=False)


def plot_per_task(cfg: PipelineConfig, rows: list[dict], path) -> None:
    """Grouped bars: success per task for every policy."""
    def draw(ax) -> None:
        width = 0.8 / len(rows)
        x = np.arange(len(cfg.tasks))
        for k, r in enumerate(rows):
            rate = np.array([r["success"][t] for t in cfg.tasks])
            ci = np.array([r["success_ci"][t] for t in cfg.tasks]).reshape(-1, 2)
            ax.bar(x + (k - (len(rows) - 1) / 2) * width, rate, width, label=r["policy"],
                   yerr=[np.maximum(rate - ci[:, 0], 0), np.maximum(ci[:, 1] - rate, 0)],
                   capsize=2, error_kw={"elinewidth": 0.8, "alpha": 0.6})
        ax.set_xticks(x, cfg.tasks)
        ax.set_ylim(0, 1.45)
        ax.set_ylabel(f"success rate ({cfg.eval.episodes} episodes, 95% interval)")
        ax.legend(fontsize="x-small", ncol=2, loc="upper center")
    _figure(path, draw, (max(6.0, 1.5 * len(cfg.tasks) + 3), 4.2))
