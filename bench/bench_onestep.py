"""Latency of one action chunk: the T-step DDPM and the DDIM teacher vs the OneDP generator.

Runs on CPU at batch 1 with one thread; weights are random (latency does not depend on
them). Prints one JSON object: median seconds per chunk for each path and its speed-up
over the T-step DDPM teacher (OneDP, Wang et al. 2024, reports ≈ 42x on a GPU). Also
timed: the deployable export (normalisation and unscaling in the graph, as the pipeline
writes export/policy.onnx) and the runtime's `ChunkedPolicy` per control tick, averaged
over the `n_exec` ticks of a chunk (one plan plus queue pops).

    python bench/bench_onestep.py [--obs-dim 30 --act-dim 4 --horizon 8 --repeats 200]
    python bench/bench_onestep.py --config config/detour_onestep.yaml   # that run's shapes
    python bench/bench_onestep.py --config config/detour_onestep.yaml --markdown

With ``--config`` the shapes (family's observation and action sizes, the onestep section's
horizon, history, width, depth, T and DDIM steps) come from a pipeline config instead.
Keys name the step counts: ``ddpm_{T}_torch_s``, ``ddim_{S}_torch_s`` and
``speedup_vs_ddpm_{T}`` (``baseline`` names the reference path). ``table_markdown`` (or
``--markdown``) is the table of issue 3's closing note: path, time per chunk, speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Optional

import numpy as np
import torch

from distill_ros.distill.onestep.chunk_policy import ChunkScaler, GeneratorPolicy
from distill_ros.distill.onestep.distiller import OneStepConfig, OneStepDistiller
from distill_ros.distill.onestep.eval import median_seconds
from distill_ros.runtime.chunked import ChunkedPolicy
from distill_ros.spec import Spec
from distill_ros.teachers.diffusion import DiffusionConfig, DiffusionPolicy


def deployable_times(gen, cfg: DiffusionConfig, repeats: int) -> dict[str, float]:
    """The exported policy (normalisation inside) through ONNX Runtime and `ChunkedPolicy`."""
    obs_spec = Spec(names=tuple(f"o{i}" for i in range(cfg.obs_dim)))
    act_spec = Spec(names=tuple(f"a{i}" for i in range(cfg.act_dim)),
                    low=(-1.0,) * cfg.act_dim, high=(1.0,) * cfg.act_dim)
    policy = GeneratorPolicy(gen, ChunkScaler(obs_spec, act_spec, cfg.obs_history)).eval()
    from distill_ros.distill.onestep.export import export_generator
    from distill_ros.export.metadata import PolicyMetadata
    from distill_ros.spec import ObsSpec

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "policy.onnx")
        export_generator(policy, path, cfg.n_exec,
                         PolicyMetadata(ObsSpec.flat(obs_spec), act_spec, 30.0, "bench"))
        runner = ChunkedPolicy.from_onnx(path, want_gpu=False, control_period_s=None)
    frame = np.zeros(cfg.obs_dim, np.float32)
    row = np.zeros((1, cfg.cond_dim), np.float32)      # the history, flattened
    rng = np.random.default_rng(0)

    def one_chunk_of_ticks() -> None:
        for _ in range(cfg.n_exec):
            runner.act(frame)

    return {
        "onestep_exported_onnxruntime_s": median_seconds(lambda: runner.planner(row, rng),
                                                         repeats),
        "chunked_runner_per_tick_s": median_seconds(one_chunk_of_ticks, repeats) / cfg.n_exec,
    }


def diffusion_config(args: argparse.Namespace) -> tuple[DiffusionConfig, str]:
    """The timed model's shapes: from `--config` (and its family's name) or the flags."""
    if not args.config:
        return DiffusionConfig(obs_dim=args.obs_dim, act_dim=args.act_dim, horizon=args.horizon,
                               n_exec=args.horizon // 2, hidden_dim=args.hidden,
                               n_blocks=args.blocks), ""
    from distill_ros.config import load_config
    from distill_ros.tasks.base import get_family

    cfg = load_config(args.config)
    fam = get_family(cfg.family)
    return cfg.onestep.diffusion_config(fam.obs_spec.dim, fam.act_spec.dim, cfg.seed), cfg.family


#: row label of each timed path, in the order of the table (issue 3's form)
ROWS = (("ddpm_{T}_torch", "DDPM-{T}, torch"), ("ddim_{S}_torch", "DDIM-{S}, torch"),
        ("onestep_torch", "one-step, torch"), ("onestep_onnxruntime", "one-step, ONNX Runtime"),
        ("onestep_exported_onnxruntime", "exported policy, ONNX Runtime"))


def latency_table(cfg: DiffusionConfig, times: dict[str, float],
                  speedup: dict[str, float]) -> str:
    """Markdown: path | time per chunk | speed-up vs DDPM-T, then the runner's cost per tick."""
    T, S = cfg.num_train_steps, cfg.ddim_steps
    lines = [f"| path | time per chunk | speed-up vs DDPM-{T} |", "|---|---|---|"]
    for key, label in ROWS:
        key, label = key.format(T=T, S=S), label.format(T=T, S=S)
        lines.append(f"| {label} | {_ms(times[key + '_s'])} | {_times(speedup[key])} |")
    lines.append(f"\nThe chunked runner costs {_ms(times['chunked_runner_per_tick_s'])} per "
                 "tick (CPU, batch 1, 1 thread).")
    return "\n".join(lines)


def _times(ratio: float) -> str:
    """A speed-up as issue 3 wrote it: 1x, 9.8x, 113x."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def _ms(seconds: float) -> str:
    """Milliseconds with three significant digits, as the closing notes write them."""
    return f"{seconds * 1e3:.3g} ms"


def main(argv: Optional[list[str]] = None) -> dict:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obs-dim", type=int, default=30)
    parser.add_argument("--act-dim", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per path")
    parser.add_argument("--config", help="pipeline config whose onestep shapes to time "
                        "(overrides the shape flags)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the latency table (markdown) instead of the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    cfg, family = diffusion_config(args)
    teacher = DiffusionPolicy(cfg).eval()
    gen = OneStepDistiller(teacher, OneStepConfig()).get_policy().eval()
    obs = torch.randn(1, cfg.cond_dim)
    noise = torch.randn(1, cfg.horizon, cfg.act_dim)
    rng = torch.Generator().manual_seed(0)

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "onedp.onnx")
        gen.as_onnx(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feeds = {"obs": obs.numpy(), "noise": noise.numpy().astype(np.float32)}

    ddpm, ddim = f"ddpm_{cfg.num_train_steps}", f"ddim_{cfg.ddim_steps}"
    with torch.inference_mode():
        slow_repeats = max(10, args.repeats // 10)
        times = {
            f"{ddpm}_torch_s": median_seconds(
                lambda: teacher.sample(obs, sampler="ddpm", generator=rng), slow_repeats),
            f"{ddim}_torch_s": median_seconds(
                lambda: teacher.sample(obs, steps=cfg.ddim_steps, sampler="ddim",
                                       generator=rng),
                args.repeats),
            "onestep_torch_s": median_seconds(lambda: gen(obs, noise), args.repeats),
        }
    times["onestep_onnxruntime_s"] = median_seconds(
        lambda: sess.run(["actions"], feeds), args.repeats)
    times.update(deployable_times(gen, cfg, args.repeats))
    base = times[f"{ddpm}_torch_s"]
    speedup = {k.removesuffix("_s"): base / v for k, v in times.items() if "per_tick" not in k}
    result = {
        "device": "cpu", "threads": 1, "batch": 1,
        "family": family or None,
        "model": {"obs_dim": cfg.obs_dim, "obs_history": cfg.obs_history,
                  "diffusion_steps": cfg.num_train_steps, "ddim_steps": cfg.ddim_steps,
                  "act_dim": cfg.act_dim, "horizon": cfg.horizon,
                  "hidden": cfg.hidden_dim, "blocks": cfg.n_blocks,
                  "params": sum(p.numel() for p in teacher.parameters())},
        "median_seconds_per_chunk": times,
        "baseline": f"{ddpm}_torch",
        f"speedup_vs_{ddpm}": speedup,
        "target_onestep_40x_met": speedup["onestep_torch"] >= 40.0,
        "table_markdown": latency_table(cfg, times, speedup),
    }
    if args.markdown:
        print(result["table_markdown"])
        return result
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
