"""The detour family through the onestep pipeline with the consistency baseline switched on."""

import json

import onnx

from conftest import write_config
from distill_ros.config import load_config
from distill_ros.pipeline import run_stages

TINY = {"demonstrators": ["detour_left", "detour_right"], "hidden_dim": 64, "n_blocks": 2,
        "diffusion_steps": 20, "ddim_steps": 5, "teacher_updates": 200, "distill_updates": 20,
        "checkpoint_every": 100, "latency_repeats": 5, "consistency": True,
        "curve_every": 10, "distill_starts": 6}


def test_detour_run_distils_exports_and_reports_the_consistency_baseline(tmp_path):
    cfg = load_config(write_config(
        tmp_path / "c.yaml", family="detour", tasks=["post"], held_out=[],
        teachers={"eval_episodes": 4}, collect={"episodes_per_task": 12, "shard_episodes": 6},
        distill={"algorithm": "onestep", "epochs": 5}, eval={"episodes": 3}, onestep=TINY))
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill", "export", "eval"])
    ledger = json.loads((run.root / "run.json").read_text())
    assert all(s["status"] == "complete" for s in ledger["stages"].values()), ledger["stages"]
    distill = ledger["stages"]["distill"]
    assert distill["consistency"]["updates"] == distill["stochastic"]["updates"] == 20
    assert distill["start_windows"] == 6, "OneDP trains on the data's windows and 6 starts"
    assert json.loads((run.root / "teachers" / "post" / "eval.json").read_text())[
        "demonstrators"] == {"detour_left": 1.0, "detour_right": 1.0}
    path = run.root / "export" / "onestep_consistency.onnx"
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["obs", "noise"]
    assert ledger["stages"]["export"]["parity"]["onestep_consistency.onnx"][
        "max_abs_diff_real"] <= 1e-4
    report = json.loads((run.root / "report" / "eval.json").read_text())
    names = [r["policy"] for r in report["policies"]]
    assert "CD 1-step (consistency, ONNX)" in names and "CD 2-step (consistency, torch)" in names
    assert set(report["summary"]["consistency"]) == {"CD 1-step", "CD 2-step"}
    assert "CD 2-step" in (run.root / "report" / "eval.md").read_text()
    # convergence: snapshots at 0, 10, 20 of every student, each evaluated on the eval seeds
    conv = json.loads((run.root / "report" / "convergence.json").read_text())["curves"]
    assert set(conv) == {"OneDP-S", "OneDP-D", "CD 1-step"}
    for label, curve in conv.items():
        points = curve["points"]
        assert [p["update"] for p in points] == [0, 10, 20], label
        walls = [p["wall_s"] for p in points]
        assert walls[0] == 0.0 and walls == sorted(walls), (label, walls)
        assert all(0.0 <= p["success"] <= 1.0 for p in points)
        assert curve["final_success"] == points[-1]["success"]
        assert curve["wall_s_to_final"] in walls
    assert (run.root / "report" / "convergence.png").stat().st_size > 0
    assert report["summary"]["convergence"]["OneDP-S"]["final_success"] == \
        conv["OneDP-S"]["final_success"]
