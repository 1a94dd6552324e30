"""Humanoid closed loop across processes: motion_command -> policy_inference -> sim_robot.

The demo's three nodes (``distill-ros launch humanoid_demo``'s command lines and parameter
files) run as child processes over loopback DDS; sim_robot at ``--rate`` control periods per
wall second (30: real time). This process only listens, for ``--seconds`` after the first
policy command and a 2 s settle:

* ``sim_rate_hz`` and the ``joint_states`` interval p50/p99/max (the sim's timer);
* ``fresh_command_fraction``: sim periods that applied a command newer than the last period's
  (sim_robot's ``fresh_command_steps``), and ``falls`` in the window;
* ``state_to_command``: from a ``features`` message (the state) to the next policy command,
  as this process sees both (motion_command and policy_inference in between);
* the mean imitation reward of the episode at the end.

    python bench/bench_humanoid_loop.py                         # DDS, 30 Hz, 20 s
    python bench/bench_humanoid_loop.py --rate 15 --model runs/h/export/policy.onnx

Without ``--model`` the policy is the shipped DeepMimic walk actor with the student's inputs
(``test/nodes/humanoid_models.py``): competent, deaf to the command. Prints one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_dressing_node import loopback_middleware
from bench_ros_loop import _pct

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test" / "nodes")]
SIM_STATUS = "sim_robot: humanoid scene"


def _sim_status(diags: list) -> dict:
    for msg in reversed(diags):
        for status in msg.status:
            if status.name == SIM_STATUS:
                return {kv.key: kv.value for kv in status.values}
    return {}


def run_loop(ros, model: str, rate: float, seconds: float) -> dict:
    """The three nodes for `seconds` of policy commands; what this process saw."""
    from distill_ros.launcher import node_commands

    features, joints, commands, diags = [], [], [], []
    cmds = node_commands("humanoid_demo", [f"model_path:={model}"])
    cmds[0] += ["-p", f"rate_hz:={rate}"]   # sim_robot
    procs = [subprocess.Popen(c, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in cmds]
    watch = ros.Node("bench_humanoid_watch")
    stamp = time.perf_counter
    for interface, topic, store in (
            ("std_msgs/msg/Float64MultiArray", "/sim_robot/features", features),
            ("sensor_msgs/msg/JointState", "joint_states", joints),
            ("std_msgs/msg/Float64MultiArray", "/forward_command_controller/commands",
             commands)):
        watch.create_subscription(ros.get_interface(interface), topic,
                                  lambda m, s=store: s.append(stamp()), ros.DEFAULT)
    watch.create_subscription(ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"),
                              "/diagnostics", diags.append, ros.DEFAULT)
    spinner = ros.spin_in_background(watch)
    try:
        deadline = stamp() + 180
        while not commands:
            if stamp() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("no policy command within 180 s (or a node exited)")
            time.sleep(0.1)
        time.sleep(2.0)
        start, before = stamp(), _sim_status(diags)
        time.sleep(seconds + 1.2)   # and one more diagnostics report
        after, end = _sim_status(diags), start + seconds
    finally:
        spinner.stop()
        watch.destroy_node()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    window = [t for t in joints if start <= t < end]
    latency = []
    for t in (c for c in commands if start <= c < end):
        earlier = [f for f in features if f <= t]
        if earlier:
            latency.append(t - earlier[-1])
    steps = int(after["total_steps"]) - int(before["total_steps"])
    fresh = int(after["fresh_command_steps"]) - int(before["fresh_command_steps"])
    return {"sim_rate_hz": len(window) / seconds,
            "joint_states_interval": _pct([b - a for a, b in zip(window, window[1:])]),
            "state_to_command": _pct(latency),
            "fresh_command_fraction": fresh / max(steps, 1), "sim_steps": steps,
            "falls": int(after["falls"]) - int(before["falls"]),
            "mean_imitation_reward_of_episode": float(after["mean_imitation_reward"])}


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a humanoid policy.onnx with proprio and command "
                        "inputs (default: the walk actor with the student's inputs)")
    parser.add_argument("--backend", choices=("dds", "rclpy"), default="dds",
                        help="middleware of every process (rclpy: source ROS 2 first)")
    parser.add_argument("--rate", type=float, default=30.0, help="sim control periods per s")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured closed loop")
    args = parser.parse_args()
    ros = loopback_middleware(args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from humanoid_models import teacher_student_onnx

            model = str(teacher_student_onnx(Path(tmp) / "walk_as_student.onnx"))
        ros.init([])
        try:
            result = run_loop(ros, model, args.rate, args.seconds)
        finally:
            ros.shutdown()
    print(json.dumps({"backend": args.backend, "rate_hz": args.rate, "seconds": args.seconds,
                      "model": args.model or "deepmimic walk actor as a student", **result},
                     indent=2))


if __name__ == "__main__":
    main()
