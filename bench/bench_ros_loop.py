"""Real-time loop benchmark: policy_inference against a fake robot and the floor, either backend.

Two processes over loopback DDS for ``--seconds`` (30 by default) per rate in ``--rates``:

* this process: a robot publishing labelled features, then ``joint_states`` (the trigger),
  at the rate, and timing the commands that come back;
* ``policy_inference`` (``trigger:=input`` by default: one compute per ``joint_states``;
  ``--trigger timer`` runs its fixed-rate loop at the rate instead) running ``--model``.

In the same run, the floor: a ping-pong between two processes through the same middleware
API (``distill_ros.ros``, so the same backend; one-way = round trip / 2) and bare ONNX
Runtime ``run`` calls on the same model, back to back (``ort_run``, the issue's floor) and
each after a 2 ms sleep (``ort_run_after_idle``: what the same call costs when its thread
wakes from a wait, as the node's does every tick; for context, not a target). Prints one
JSON object with, per rate:

* ``latency_*``: obs->command, the node's own measure (its last 10 s): the age of the
  newest input when its command leaves (input arrival to publish; with a timer, this
  includes the wait for the next tick);
* ``robot_round_trip``: this process's measure: trigger published to command received
  (two hops plus the node), against a floor of two one-way hops plus one ONNX run;
* ``compute_*``: the node's work per compute (phase-free): from the trigger (the input's
  callback, or the timer tick) until the tick ends, its command published (written to the
  middleware in the node's thread: ``compute_scope`` says it in the JSON); ``policy_*``:
  the policy call inside it (input checks and the ONNX run, in the node's conditions);
  ``send_*``: the command's write to the middleware inside it; ``compute_less_send_*``:
  each compute less its send (the node's own work); ``overruns``, the rates;
  ``scheduling``: the node's compute thread and CPUs (``--thread-priority``, ``--node-cpu``:
  the node's opt-in ``thread_priority`` and ``cpu_affinity``; this process then keeps off
  that CPU);
* ``ratios`` and ``targets`` (issue 14: obs->command p50 <= 3x floor, p99 <= 0.5 ms at
  500 Hz, no overruns, compute p50 <= 5x one ONNX Runtime run).

    python bench/bench_ros_loop.py                          # DDS backend, 500 and 1000 Hz
    source /opt/ros/humble/setup.bash; export RMW_IMPLEMENTATION=rmw_cyclonedds_cpp
    python bench/bench_ros_loop.py --backend rclpy --model runs/grasp_quick/export/policy.onnx
    python bench/bench_ros_loop.py --thread-priority 50 --node-cpu 1   # SCHED_FIFO, pinned

Without ``--model`` the bench exports an untrained student of the grasp layout (the
default MLP): latency depends on the graph's size, not on its weights.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ALL_CPUS = os.sched_getaffinity(0)
sys.path.insert(0, str(REPO))
F64 = "std_msgs/msg/Float64MultiArray"
#: what the node's ``compute_*`` figures time (printed with them)
COMPUTE_SCOPE = ("node thread, from the trigger (the trigger input's callback, after its message "
                 "was taken and stored; or the timer tick) to the end of the tick: reading the "
                 "observation, input checks, the ONNX Runtime call, the safety filter, the "
                 "command's serialisation and its middleware write (the send to the reader), "
                 "and the loop statistics; not the executor's wait or message decoding")


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
    if not ms.size:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "n": 0}
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "n": int(ms.size)}


def ort_floor(model: str, n: int = 5000, idle_s: float = 0.0) -> dict:
    """Bare ``InferenceSession.run`` on one observation, one thread; ``idle_s`` sleeps first."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros([1, *i.shape[1:]], np.float32) for i in session.get_inputs()}
    times = []
    for _ in range(n):
        if idle_s:
            time.sleep(idle_s)
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return _pct(times)


def echo() -> None:
    """The other side of the ping-pong: send every ping back, until killed."""
    from distill_ros import ros

    ros.init([])
    node = ros.Node("bench_echo")
    pong = node.create_publisher(ros.get_interface(F64), "bench_pong", ros.DEFAULT)
    node.create_subscription(ros.get_interface(F64), "bench_ping", pong.publish,
                             ros.SENSOR_DATA)
    print("READY", flush=True)
    ros.spin(node)


def dds_floor(n: int = 3000) -> dict:
    """Round trips through an echo process on the same middleware API; one-way = half."""
    from distill_ros import ros

    echo_proc = subprocess.Popen([sys.executable, __file__, "--echo"], stdout=subprocess.PIPE,
                                 text=True)
    node = ros.Node("bench_ping")
    got, want = threading.Event(), [None]

    def on_pong(msg) -> None:
        if msg.data[0] == want[0]:
            got.set()
    node.create_subscription(ros.get_interface(F64), "bench_pong", on_pong, ros.DEFAULT)
    ping = node.create_publisher(ros.get_interface(F64), "bench_ping", ros.SENSOR_DATA)
    spinner = ros.spin_in_background(node)
    msg = ros.get_interface(F64)(data=[0.0] * 16)
    try:
        echo_proc.stdout.readline()  # READY
        times = []
        for seq in range(-300, n):  # the first 300 wait for discovery and warm up
            want[0] = float(seq)
            got.clear()
            msg.data = [float(seq)] + [0.0] * 15
            start = time.perf_counter()
            ping.publish(msg)
            if got.wait(0.5 if seq >= 0 else 0.05) and seq >= 0:
                times.append((time.perf_counter() - start) / 2)
        return _pct(times)
    finally:
        spinner.stop()
        node.destroy_node()
        echo_proc.kill()
        echo_proc.wait()


class Robot:
    """Publishes the grasp inputs at a rate and times the commands that come back."""

    def __init__(self, ros) -> None:
        from distill_ros.nodes.command_output import labelled_array
        from distill_ros.tasks.grasp import OBS_SPEC

        self.node = ros.Node("bench_robot")
        joint_state = ros.get_interface("sensor_msgs/msg/JointState")
        self.js_pub = self.node.create_publisher(joint_state, "joint_states", ros.SENSOR_DATA)
        self.feat_pub = self.node.create_publisher(ros.get_interface(F64),
                                                   "/sim_robot/features", ros.SENSOR_DATA)
        self.js = joint_state(name=["ee_x", "ee_y", "ee_z"], position=[0.0, 0.0, 0.2])
        names = [n for n in OBS_SPEC.names if not n.startswith("palm_")]
        self.features = labelled_array(names, [0.01] * len(names))
        self.received, self.round_trips, self.diags = [], [], []
        self.sent_at = -1.0
        self.node.create_subscription(ros.get_interface(F64),
                                      "/forward_command_controller/commands", self._on_command,
                                      ros.DEFAULT)
        self.node.create_subscription(
            ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics",
            self.diags.append, ros.DEFAULT)
        self.spinner = ros.spin_in_background(self.node)

    def _on_command(self, msg) -> None:
        now = time.perf_counter()
        self.received.append(now)
        if self.sent_at > 0:
            self.round_trips.append(now - self.sent_at)
            self.sent_at = -1.0  # one command per trigger: later ones are timer ticks

    def run(self, rate: float, seconds: float) -> None:
        """Publish until ``seconds`` of commands came back (+1.2 s for a diagnostics report)."""
        period, start, k = 1.0 / rate, time.perf_counter(), 0
        while not self.received or self.received[-1] - self.received[0] < seconds + 1.2:
            self.feat_pub.publish(self.features)
            self.sent_at = time.perf_counter()
            self.js_pub.publish(self.js)
            k += 1
            delay = start + k * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if time.perf_counter() - start > seconds + 60:
                raise RuntimeError("policy_inference sent no commands")

    def close(self) -> None:
        """Stop spinning and leave the graph."""
        self.spinner.stop()
        self.node.destroy_node()


def node_run(ros, model: str, rate: float, seconds: float, trigger: str,
             labelled: bool, realtime: tuple = (0, -1)) -> dict:
    """policy_inference at ``rate`` Hz against this process's fake robot.

    ``realtime``: the node's ``thread_priority`` and its one CPU (``cpu_affinity``; -1: any).
    """
    params = REPO / "config" / "policy_inference_params.yaml"
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALL_CPUS)  # the child starts free to take its CPU
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "distill_ros.nodes.policy_inference", "--ros-args",
         "--params-file", str(params), "-p", f"model_path:={model}", "-p", f"rate_hz:={rate}",
         "-p", f"trigger:={trigger}", "-p", "max_rate:=[1000.0]", "-p",
         f"label_commands:={str(labelled).lower()}", "-p", f"thread_priority:={realtime[0]}",
         "-p", f"cpu_affinity:=[{realtime[1]}]"], cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    os.sched_setaffinity(0, mine)
    robot = Robot(ros)
    try:
        robot.run(rate, seconds)
        last_diag = robot.diags[-1]  # before the inputs stop (the watchdog would then trip)
    finally:
        robot.close()
        node_proc.terminate()
        node_proc.wait(10)
    values = {kv.key: kv.value for s in last_diag.status for kv in s.values
              if s.name.startswith("policy_inference")}
    # the policy (checks + ONNX Runtime) and the command's send, inside compute
    send = {f"{kind}_{q}_ms": float(values[f"{kind}_{q}_ms"])
            for kind in ("send", "compute_less_send") for q in ("p50", "p99")}
    window = [t for t in robot.received if t - robot.received[0] < seconds]
    gaps = np.diff(window)
    trips = robot.round_trips[len(robot.round_trips) // 20:]  # drop the first 5%: warm-up
    return {**{f"{kind}_{q}_ms": float(values[f"{kind}_{q}_ms"])
               for kind in ("latency", "compute", "policy") for q in ("p50", "p99", "max")},
            **send,
            "scheduling": values["scheduling"],
            "robot_round_trip": _pct(trips),
            "node_rate_hz": float(values["rate_hz"]),
            "overruns": int(float(values["overruns"])),
            "received_rate_hz": len(window) / seconds,
            "received_gaps_over_2_periods": int((gaps > 2 * (1.0 / rate)).sum()),
            "received_gap_max_ms": float(gaps.max() * 1e3)}


def judge(rate: float, run: dict, floor: dict) -> dict:
    """Ratios against the floor and issue 14's targets."""
    dds, ort = floor["dds_one_way"], floor["ort_run"]
    floor_p50 = dds["p50_ms"] + ort["p50_ms"]
    ratios = {"obs_to_command_p50_vs_floor": run["latency_p50_ms"] / floor_p50,
              "robot_round_trip_p50_vs_floor": run["robot_round_trip"]["p50_ms"]
              / (2 * dds["p50_ms"] + ort["p50_ms"]),
              "compute_p50_vs_ort_run": run["compute_p50_ms"] / ort["p50_ms"],
              "compute_p50_vs_ort_run_after_idle": run["compute_p50_ms"]
              / floor["ort_run_after_idle"]["p50_ms"],
              "compute_p50_vs_policy_in_node": run["compute_p50_ms"] / run["policy_p50_ms"],
              # the node's own work: each compute less its command's write to the middleware
              "compute_less_send_p50_vs_ort_run": run["compute_less_send_p50_ms"]
              / ort["p50_ms"],
              # the model call alone in the node (woken from a wait) over the back-to-back run
              "policy_p50_vs_ort_run": run["policy_p50_ms"] / ort["p50_ms"]}
    targets = {"obs_to_command_p50_le_3x_floor": ratios["obs_to_command_p50_vs_floor"] <= 3,
               "no_overruns": run["overruns"] == 0,
               "compute_p50_le_5x_ort_run": ratios["compute_p50_vs_ort_run"] <= 5}
    if rate == 500:
        targets["obs_to_command_p99_le_0.5ms"] = run["latency_p99_ms"] <= 0.5
    return {"ratios": ratios, "targets": targets}


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported policy.onnx (default: an untrained "
                        "grasp-sized MLP student exported to a temporary folder)")
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=("dds", "rclpy"), default="dds",
                        help="middleware of every process (rclpy: source ROS 2 first)")
    parser.add_argument("--trigger", choices=("input", "timer"), default="input",
                        help="the node computes per input (default) or on its timer")
    parser.add_argument("--unlabelled", action="store_true",
                        help="label_commands:=false: commands without layout labels")
    parser.add_argument("--rates", default="500,1000", help="control rates, Hz, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration per rate")
    parser.add_argument("--thread-priority", type=int, default=0,
                        help="the node's thread_priority (SCHED_FIFO 1-99; 0: default)")
    parser.add_argument("--node-cpu", type=int, default=-1,
                        help="pin the node to this CPU and this process to the others "
                        "(-1: no pinning)")
    args = parser.parse_args()
    if args.echo:  # the echo child inherits the backend and the loopback domain
        return echo()
    os.environ["DISTILL_ROS_BACKEND"] = args.backend  # before distill_ros.ros is imported
    from distill_ros import ros
    from distill_ros.ros.dds_config import isolate_for_tests

    isolate_for_tests()  # loopback only, private domain; the children inherit it
    if args.node_cpu >= 0:  # the robot and the floor's processes keep off the node's CPU
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {args.node_cpu})

    if not args.model:
        args.model = untrained_grasp_student(Path(tempfile.mkdtemp(prefix="bench_ros_")))
    ros.init([])
    try:
        realtime = (args.thread_priority, args.node_cpu)
        runs = {rate: node_run(ros, args.model, rate, args.seconds, args.trigger,
                               not args.unlabelled, realtime)
                for rate in (float(r) for r in args.rates.split(","))}
        floor = {"dds_one_way": dds_floor(), "ort_run": ort_floor(args.model),
                 "ort_run_after_idle": ort_floor(args.model, 2000, idle_s=0.002)}
    finally:
        ros.shutdown()
    print(json.dumps({
        "backend": ros.backend_name(), "trigger": args.trigger, "seconds": args.seconds,
        "label_commands": not args.unlabelled,
        "thread_priority": args.thread_priority, "node_cpu": args.node_cpu,
        "compute_scope": COMPUTE_SCOPE,
        "floor": floor,
        "rates": {f"{rate:g}": {**run, **judge(rate, run, floor)} for rate, run in runs.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
