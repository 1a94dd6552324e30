"""Dressing closed loop at the family's control rate: preprocessing + inference inside the node.

Two processes over loopback DDS for ``--seconds`` (30 by default):

* ``sim_robot`` running the dressing scene (config/dressing_sim_robot_params.yaml): physics,
  the labelled camera cloud (``PointCloud2``) and the gripper's state, 10 Hz;
* this process: ``policy_inference`` (config/dressing_policy_inference_params.yaml) running
  ``--model`` at the model's control rate (10 Hz), as its own node object, so the time of
  each cloud's preprocessing (`runtime.pointcloud.group_from_cloud`: decode, crop, voxel per
  label, fixed N with open3d) is measured where the node runs it, on the node's thread.

Prints one JSON object: per cloud, ``preprocess`` p50/p99/max (ms); per tick, the node's own
``policy`` (the ONNX call) and ``compute`` (the whole tick) p50/p99/max; their sums
(``preprocess_plus_policy_*``: one cloud is preprocessed per tick at this rate; a sum of
percentiles, an upper estimate of the percentile of the sum); ``overruns`` and ticks; the
sim's achieved rate and the best dressed ratio; and ``ort_run``, a bare ONNX Runtime run of
the same model (one thread) beside them.

    python bench/bench_dressing_node.py                      # DDS backend, 30 s
    source /opt/ros/humble/setup.bash; export RMW_IMPLEMENTATION=rmw_cyclonedds_cpp
    python bench/bench_dressing_node.py --backend rclpy --model runs/d/export/policy.onnx

Without ``--model`` the bench exports an untrained student of the dressing layout (512
points + proprio, the default PointNet + MLP): time depends on the graph, not its weights,
so the arm is not dressed then.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench_ros_loop import _pct, ort_floor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIG = REPO / "config"


def untrained_dressing_student(folder: Path) -> str:
    """Export dressing_quick's student (points + proprio, gripper frame), initial weights."""
    import torch

    from distill_ros.config import load_config
    from distill_ros.export.metadata import PolicyMetadata, Provenance
    from distill_ros.export.onnx_export import export_student
    from distill_ros.spec import ObsSpec
    from distill_ros.students.factory import build_student
    from distill_ros.tasks.dressing.env import CONTROL_RATE_HZ
    from distill_ros.tasks.dressing.family import ACT_SPEC, FAMILY, obs_groups

    torch.manual_seed(0)
    groups = obs_groups()
    spec = ObsSpec((groups.group("proprio"), groups.group("points")))
    student = build_student(load_config(CONFIG / "dressing_quick.yaml").student, spec,
                            ACT_SPEC, frame_vectors=FAMILY.act_frame_vectors)
    path = folder / "policy.onnx"
    export_student(student, path, PolicyMetadata(
        spec, ACT_SPEC, CONTROL_RATE_HZ, "dressing",
        Provenance(student_arch="pointnet+mlp, untrained, for benchmarking only")))
    return str(path)


def timed_preprocessing(times: list, sizes: list) -> None:
    """Make the node's cloud path (`inference_inputs.group_from_cloud`) record its duration."""
    from distill_ros.nodes import inference_inputs

    build = inference_inputs.group_from_cloud

    def timed(group, fields, point_step, data, width, *rest):
        start = time.perf_counter()
        try:
            return build(group, fields, point_step, data, width, *rest)
        finally:
            times.append(time.perf_counter() - start)
            sizes.append(width)
    inference_inputs.group_from_cloud = timed


def node_parameters(model: str) -> dict:
    """The dressing params file's values, with the model and autostart."""
    with open(CONFIG / "dressing_policy_inference_params.yaml") as f:
        values = yaml.safe_load(f)["policy_inference"]["ros__parameters"]
    return {**values, "model_path": model, "use_gpu": False}


def run_loop(ros, model: str, seconds: float, task: str) -> dict:
    """sim_robot in a child process, policy_inference here, for `seconds` of commands."""
    from distill_ros.nodes.policy_inference import PolicyInference

    pre_times, sizes, ratios, commands, diags = [], [], [], [], []
    timed_preprocessing(pre_times, sizes)
    sim = subprocess.Popen(
        [sys.executable, "-m", "distill_ros.nodes.sim_robot", "--ros-args", "--params-file",
         str(CONFIG / "dressing_sim_robot_params.yaml"), "-p", f"task:={task}"], cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    node = PolicyInference(parameter_overrides=node_parameters(model))
    watch = ros.Node("bench_dressing_watch")
    f64 = ros.get_interface("std_msgs/msg/Float64MultiArray")
    watch.create_subscription(f64, "/sim_robot/features", lambda m: ratios.append(
        m.data[[d.label for d in m.layout.dim].index("dressed_ratio")]), ros.DEFAULT)
    watch.create_subscription(f64, "/forward_command_controller/commands",
                              lambda m: commands.append(time.perf_counter()), ros.DEFAULT)
    watch.create_subscription(ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"),
                              "/diagnostics", diags.append, ros.DEFAULT)
    spinners = [ros.spin_in_background(n) for n in (node, watch)]
    try:
        deadline = time.perf_counter() + 120
        while len(ratios) < 3:                     # the sim is up and stepping
            if time.perf_counter() > deadline:
                raise RuntimeError("sim_robot published no state in 120 s")
            time.sleep(0.1)
        # configure remakes the node's loop statistics: they cover the measured run only
        if node.trigger_configure() != ros.TransitionCallbackReturn.SUCCESS:
            raise RuntimeError("policy_inference failed to configure (see its log)")
        node.trigger_activate()
        steps_before, start = len(ratios), time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - start
        stats, steps = node.stats.summary(), len(ratios) - steps_before
        time.sleep(1.2)                            # one more diagnostics report
    finally:
        for spinner in spinners:
            spinner.stop()
        node.trigger_shutdown()
        node.destroy_node()
        watch.destroy_node()
        sim.terminate()
        sim.wait(10)
    return {"preprocess": _pct(pre_times), "cloud_points_median": sorted(sizes)[len(sizes) // 2],
            **{f"{kind}_{q}_ms": stats[f"{kind}_{q}_ms"]
               for kind in ("policy", "compute") for q in ("p50", "p99", "max")},
            "overruns": int(stats["overruns"]), "ticks": int(stats["ticks"]),
            "node_rate_hz": stats["rate_hz"],
            "inputs_rejected": int(float(_node_values(diags).get("inputs_rejected", -1))),
            "commands_received": len([t for t in commands if start <= t <= start + elapsed]),
            "sim_rate_hz": steps / elapsed, "best_dressed_ratio": max(ratios, default=0.0)}


def _node_values(diags: list) -> dict:
    """The key values of policy_inference's latest loop diagnostics ({} if none came)."""
    for msg in reversed(diags):
        for status in msg.status:
            if status.name.startswith("policy_inference"):
                return {kv.key: kv.value for kv in status.values}
    return {}


def loopback_middleware(backend: str):
    """``distill_ros.ros`` on `backend`, loopback only in a private domain (children too)."""
    os.environ["DISTILL_ROS_BACKEND"] = backend  # before distill_ros.ros is imported
    from distill_ros import ros
    from distill_ros.ros.dds_config import isolate_for_tests

    isolate_for_tests()
    return ros


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported dressing policy.onnx with a points group "
                        "(default: an untrained student of the dressing layout)")
    parser.add_argument("--backend", choices=("dds", "rclpy"), default="dds",
                        help="middleware of both processes (rclpy: source ROS 2 first)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured closed loop")
    parser.add_argument("--task", default="f1e1", help="dressing pose range of the scene")
    args = parser.parse_args()
    args.model = args.model or untrained_dressing_student(
        Path(tempfile.mkdtemp(prefix="bench_dress_")))
    ros = loopback_middleware(args.backend)
    ros.init([])
    try:
        node = run_loop(ros, args.model, args.seconds, args.task)
    finally:
        ros.shutdown()
    node.update({f"preprocess_plus_policy_{q}_ms": node["preprocess"][f"{q}_ms"]
                 + node[f"policy_{q}_ms"] for q in ("p50", "p99")})
    print(json.dumps({
        "backend": ros.backend_name(), "seconds": args.seconds, "task": args.task,
        "model": args.model, "node": node, "ort_run": ort_floor(args.model, 2000),
        "targets": {"no_overruns": node["overruns"] == 0,
                    "rate_within_5pct": abs(node["node_rate_hz"] - 10.0) <= 0.5},
    }, indent=2))


if __name__ == "__main__":
    main()
