"""Where one input-triggered policy_inference compute spends its time, part by part.

In one process, on either backend: a configured and active ``policy_inference`` (the grasp
layout, ``trigger:=input``, labelled commands) gets its inputs stored directly and its
trigger called ``--ticks`` times, with each part of the tick timed by ``perf_counter_ns``:
reading the observation, checking it is finite, the policy call (IO-bound ONNX Runtime),
the safety filter, and the command's serialisation and publish (no reader is matched, so
the network send of ``bench_ros_loop.py`` is left out). ``compute`` is the whole tick, as
the node's diagnostics measure it. Two conditions, each beside one bare ONNX Runtime
``run`` in the same condition:

* ``after_idle``: a 2 ms sleep before each trigger, as between ticks at 500 Hz;
* ``back_to_back``: no sleep.

Prints one JSON object: per condition, the p50 of each part in microseconds and the compute
p50 over one ORT run. The parts add up to less than ``compute``: the rest is the
supervisor's own bookkeeping and the part timers themselves, which is why the same
computes are timed again with no part timer inside (``compute_alone_*``): that is the
node's figure, and ``compute`` minus it is what the part timers cost.

    python bench/bench_tick_parts.py [--backend dds|rclpy] [--model policy.onnx]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


class Timed:
    """Wraps callables so each call's duration (ns) lands in a named list."""

    def __init__(self) -> None:
        self.times: dict = {}

    def wrap(self, name: str, func):
        """``func``, timed under ``name``."""
        times = self.times.setdefault(name, [])

        def timed(*args, **kwargs):
            start = time.perf_counter_ns()
            try:
                return func(*args, **kwargs)
            finally:
                times.append(time.perf_counter_ns() - start)
        return timed

    def patch(self, obj, attr: str, name: str) -> None:
        """Time ``obj.attr`` under ``name``."""
        setattr(obj, attr, self.wrap(name, getattr(obj, attr)))


def make_node(ros, model: str):
    """policy_inference with the grasp parameters, configured and active, triggered by input."""
    from distill_ros.nodes.policy_inference import PolicyInference

    params = yaml.safe_load((REPO / "config" / "policy_inference_params.yaml").read_text())
    params = params["policy_inference"]["ros__parameters"]
    params.update(model_path=model, rate_hz=500.0, trigger="input", min_period_s=1e-6,
                  max_rate=[1000.0], autostart=False)
    node = PolicyInference(parameter_overrides=params)
    if node.trigger_configure() != ros.TransitionCallbackReturn.SUCCESS:
        raise RuntimeError("policy_inference did not configure")
    node.trigger_activate()
    return node


def measure(node, ticks: int, idle_s: float, parts: bool = True) -> dict:
    """p50 (us) of each part over ``ticks`` computes, ``idle_s`` of sleep before each.

    ``parts=False`` times the whole compute only: no part timer inside it.
    """
    from distill_ros.tasks.grasp import OBS_SPEC

    timed, sup = Timed(), node._sup
    policy = sup.policy
    if parts:
        timed.patch(policy.inputs, "read", "read_observation")
        timed.patch(policy.inputs, "non_finite", "check_finite")
        sup.policy = policy._replace(act=timed.wrap("policy_call", policy.act))
        timed.patch(sup.safety, "apply", "safety_filter")
        timed.patch(node._output, "publish", "serialise_and_publish")
    compute = timed.wrap("compute", node._cadence.on_input)
    names = [n for n in OBS_SPEC.names if not n.startswith("palm_")]
    try:
        for _ in range(ticks):
            sup.update_joints(["ee_x", "ee_y", "ee_z"], [0.0, 0.0, 0.2], "joint_states")
            sup.update_array(names, [0.01] * len(names), "/sim_robot/features")
            if idle_s:
                time.sleep(idle_s)
            compute()
    finally:
        for obj, attr in ((policy.inputs, "read"), (policy.inputs, "non_finite"),
                          (sup.safety, "apply"), (node._output, "publish")):
            vars(obj).pop(attr, None)  # the instance attribute shadowed the method
        sup.policy = policy
    skip = ticks // 10  # warm-up
    return {name: round(float(np.percentile(values[skip:], 50)) / 1e3, 2)
            for name, values in timed.times.items()}


def main() -> None:
    """Run both conditions and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("dds", "rclpy"), default="dds")
    parser.add_argument("--model", help="an exported policy.onnx (default: an untrained "
                        "grasp-sized MLP student)")
    parser.add_argument("--ticks", type=int, default=3000, help="computes per condition")
    args = parser.parse_args()
    os.environ["DISTILL_ROS_BACKEND"] = args.backend
    from bench_ros_loop import ort_floor, untrained_grasp_student

    from distill_ros import ros
    from distill_ros.ros.dds_config import isolate_for_tests

    isolate_for_tests()
    model = args.model or untrained_grasp_student(Path(tempfile.mkdtemp(prefix="bench_tick_")))
    conditions = {"after_idle": 0.002, "back_to_back": 0.0}
    ort = {c: ort_floor(model, args.ticks, idle)["p50_ms"] * 1e3  # before the node exists
           for c, idle in conditions.items()}
    ros.init([])
    node = make_node(ros, model)
    out = {"backend": ros.backend_name(), "ticks": args.ticks}
    try:
        for condition, idle_s in conditions.items():
            parts = measure(node, args.ticks, idle_s)
            alone = measure(node, args.ticks, idle_s, parts=False)["compute"]
            out[condition] = {"parts_p50_us": parts, "ort_run_p50_us": round(ort[condition], 2),
                              "compute_p50_vs_ort_run": round(parts["compute"] / ort[condition],
                                                              2),
                              "compute_alone_p50_us": alone,
                              "compute_alone_p50_vs_ort_run": round(alone / ort[condition], 2)}
    finally:
        node.trigger_shutdown()
        node.destroy_node()
        ros.shutdown()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
