"""Real-time loop benchmark: policy_inference at 500 Hz against a fake robot, plus the floor.

Two processes over loopback Cyclone DDS for ``--seconds`` (30 by default):

* this process: a robot publishing ``joint_states`` + labelled features at ``--rate`` Hz
  and counting the commands that come back;
* ``policy_inference`` (``rate_hz`` = ``--rate``) running ``--model``.

In the same run, the floor: a bare Cyclone DDS ping-pong between two processes (one-way
latency = round trip / 2) and bare ONNX Runtime ``run`` calls on the same model. Prints
one JSON object: node obs->command latency p50/p99/max (ms, the node's own measure over
its last 10 s of the run: the age of the newest input when the command leaves, which
includes the wait for the next tick, anywhere in [0, 1/rate) depending on the phase of
the robot's clock), the node's compute per tick (tick start to end, phase-free), achieved
rate, missed deadlines, the floor, and node/floor ratios.

    python bench/bench_ros_loop.py                        # an untrained grasp-sized MLP
    python bench/bench_ros_loop.py --model runs/grasp_quick/export/policy.onnx

Without ``--model`` the bench exports an untrained student of the grasp layout (the
default MLP): latency depends on the graph's size, not on its weights.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float64, int64, sequence
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from distill_ros.ros.dds_config import isolate_for_tests  # noqa: E402 - path set up above

if "--echo" not in sys.argv:  # the echo child inherits the parent's loopback domain
    isolate_for_tests()  # loopback only, private domain; children inherit it


def untrained_grasp_student(folder: Path) -> str:
    """Export the default student of the grasp layout with its initial weights."""
    import torch

    from distill_ros.config import StudentConfig
    from distill_ros.export.metadata import PolicyMetadata, Provenance
    from distill_ros.export.onnx_export import export_student
    from distill_ros.students.factory import build_student
    from distill_ros.tasks.grasp import ACT_SPEC, CONTROL_RATE_HZ, OBS_SPEC

    torch.manual_seed(0)
    student = build_student(StudentConfig(), OBS_SPEC, ACT_SPEC)
    path = folder / "policy.onnx"
    export_student(student, path, PolicyMetadata(
        student.obs_spec, ACT_SPEC, CONTROL_RATE_HZ, "grasp",
        Provenance(student_arch="mlp, untrained, for benchmarking only")))
    return str(path)


def _pct(values_s: list) -> dict:
    ms = np.asarray(values_s) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "n": int(ms.size)}


def ort_floor(model: str, n: int = 5000) -> dict:
    """Bare ``InferenceSession.run`` on one observation, one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    dim = session.get_inputs()[0].shape[1]
    obs = {"obs": np.zeros((1, dim), np.float32)}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.run(None, obs)
        times.append(time.perf_counter() - start)
    return _pct(times)


@dataclass
class PingMsg(IdlStruct, typename="bench::PingMsg"):
    """The bare DDS message of the ping-pong: a sequence number and an observation."""

    seq: int64
    payload: sequence[float64]


def _endpoints(read: str, write: str) -> tuple:
    dp = DomainParticipant(int(os.environ["ROS_DOMAIN_ID"]))
    reader = DataReader(dp, Topic(dp, read, PingMsg))
    writer = DataWriter(dp, Topic(dp, write, PingMsg))
    waitset = WaitSet(dp)
    waitset.attach(ReadCondition(reader, SampleState.NotRead | ViewState.Any
                                 | InstanceState.Any))
    return dp, reader, writer, waitset


def echo() -> None:
    """The other side of the ping-pong: send every ping back, until killed."""
    _dp, reader, writer, waitset = _endpoints("bench_ping", "bench_pong")
    print("READY", flush=True)
    while True:
        waitset.wait(duration(seconds=1))
        for sample in reader.take(16):
            writer.write(sample)


def dds_floor(n: int = 3000) -> dict:
    """Round trips through a bare Cyclone DDS echo process; one-way = half."""
    echo_proc = subprocess.Popen([sys.executable, __file__, "--echo"], stdout=subprocess.PIPE,
                                 text=True)
    try:
        _dp, reader, writer, waitset = _endpoints("bench_pong", "bench_ping")
        echo_proc.stdout.readline()  # READY
        times = []
        for seq in range(-200, n):  # the first 200 wait for discovery and warm up
            start = time.perf_counter()
            writer.write(PingMsg(seq=seq, payload=[0.0] * 15))
            got = False
            while not got:
                waitset.wait(duration(seconds=1))
                got = any(s.seq == seq for s in reader.take(16))
                if time.perf_counter() - start > 2:
                    break
            if seq >= 0 and got:
                times.append((time.perf_counter() - start) / 2)
        return _pct(times)
    finally:
        echo_proc.kill()
        echo_proc.wait()


def node_run(model: str, rate: float, seconds: float) -> dict:
    """policy_inference at ``rate`` Hz against this process's fake robot."""
    from distill_ros import ros
    from distill_ros.nodes.command_output import labelled_array
    from distill_ros.tasks.grasp import OBS_SPEC

    params = REPO / "config" / "policy_inference_params.yaml"
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "distill_ros.nodes.policy_inference", "--ros-args",
         "--params-file", str(params), "-p", f"model_path:={model}", "-p", f"rate_hz:={rate}",
         "-p", "max_rate:=[1000.0]"], cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    ros.init([])
    node = ros.Node("bench_robot")
    joint_state = ros.get_interface("sensor_msgs/msg/JointState")
    js_pub = node.create_publisher(joint_state, "joint_states", ros.SENSOR_DATA)
    feat_pub = node.create_publisher(ros.get_interface("std_msgs/msg/Float64MultiArray"),
                                     "/sim_robot/features", ros.SENSOR_DATA)
    received, diags = [], []
    node.create_subscription(ros.get_interface("std_msgs/msg/Float64MultiArray"),
                             "/forward_command_controller/commands",
                             lambda m: received.append(time.monotonic()), ros.DEFAULT)
    node.create_subscription(ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"),
                             "/diagnostics", diags.append, ros.DEFAULT)
    spinner = ros.spin_in_background(node)
    names = [n for n in OBS_SPEC.names if not n.startswith("palm_")]
    try:
        period, start = 1.0 / rate, time.monotonic()
        k = 0
        # publish 1.2 s past the window so a diagnostics message covers its end
        while not received or time.monotonic() - received[0] < seconds + 1.2:
            js_pub.publish(joint_state(name=["ee_x", "ee_y", "ee_z"], position=[0.0, 0.0, 0.2]))
            feat_pub.publish(labelled_array(names, [0.01] * len(names)))
            k += 1
            delay = start + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() - start > seconds + 60:
                raise RuntimeError("policy_inference sent no commands")
        last_diag = diags[-1]  # before the inputs stop (the watchdog would then trip)
    finally:
        spinner.stop()
        node_proc.terminate()
        node_proc.wait(10)
        node.destroy_node()
        ros.shutdown()
    values = {kv.key: kv.value for s in last_diag.status for kv in s.values
              if s.name.startswith("policy_inference")}
    window = [t for t in received if t - received[0] < seconds]
    gaps = np.diff(window)
    return {**{f"{kind}_{q}_ms": float(values[f"{kind}_{q}_ms"])
               for kind in ("latency", "compute") for q in ("p50", "p99", "max")},
            "node_rate_hz": float(values["rate_hz"]), "node_overruns": int(float(
                values["overruns"])),
            "received_rate_hz": len(window) / seconds,
            "received_gaps_over_2_periods": int((gaps > 2 * period).sum()),
            "received_gap_max_ms": float(gaps.max() * 1e3)}


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported policy.onnx (default: an untrained "
                        "grasp-sized MLP student exported to a temporary folder)")
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=500.0, help="control rate, Hz")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration")
    args = parser.parse_args()
    if args.echo:
        return echo()
    if not args.model:
        args.model = untrained_grasp_student(Path(tempfile.mkdtemp(prefix="bench_ros_")))
    node = node_run(args.model, args.rate, args.seconds)
    floor = {"dds_one_way": dds_floor(), "ort_run": ort_floor(args.model)}
    floor_p50 = floor["dds_one_way"]["p50_ms"] + floor["ort_run"]["p50_ms"]
    floor_p99 = floor["dds_one_way"]["p99_ms"] + floor["ort_run"]["p99_ms"]
    print(json.dumps({
        "rate_hz": args.rate, "seconds": args.seconds, "node": node, "floor": floor,
        "ratios": {"latency_p50_vs_floor": node["latency_p50_ms"] / floor_p50,
                   "latency_p99_vs_floor": node["latency_p99_ms"] / floor_p99,
                   "compute_p50_vs_ort_run": node["compute_p50_ms"]
                   / floor["ort_run"]["p50_ms"],
                   "achieved_vs_target_rate": node["received_rate_hz"] / args.rate},
    }, indent=2))


if __name__ == "__main__":
    main()
