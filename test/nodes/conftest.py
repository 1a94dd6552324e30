"""Fixtures of the node tests: node processes over loopback DDS, a student, a test-side node.

The loopback-only DDS environment (interface ``lo``, multicast off, private domain) is
set by the top-level ``test/conftest.py`` before anything imports ``distill_ros.ros``;
every node process started here inherits it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import numpy as np
import pytest

from conftest import REPO, write_config

PARAMS = REPO / "config" / "policy_inference_params.yaml"
SIM_PARAMS = REPO / "config" / "sim_robot_params.yaml"
OUTPUT = "/forward_command_controller/commands"


class NodeProcess:
    """One ``python -m distill_ros.nodes.<name> --ros-args ...`` child process."""

    def __init__(self, name: str, *ros_args: str) -> None:
        self.name = name
        self._log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"distill_ros.nodes.{name}", "--ros-args", *ros_args],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, text=True)

    def log(self) -> str:
        """Everything the process printed so far (last 4000 characters)."""
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self) -> None:
        """Interrupt it (Ctrl-C, as ros2 launch does), kill it if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_node() -> Iterator[Callable[..., NodeProcess]]:
    """Start node processes; all are stopped at teardown."""
    started: List[NodeProcess] = []

    def start(name: str, *ros_args: str) -> NodeProcess:
        started.append(NodeProcess(name, *ros_args))
        return started[-1]
    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def student_onnx(tmp_path_factory, expert_file) -> Path:
    """The student the foundation pipeline exports, distilled from the scripted expert."""
    from distill_ros.config import load_config
    from distill_ros.pipeline import run_stages

    root = tmp_path_factory.mktemp("student")
    tasks = ["cube", "duck", "mug"]
    cfg = load_config(write_config(
        root / "c.yaml", tasks=tasks, held_out=[],
        teachers={"sources": {t: str(expert_file) for t in tasks}, "eval_episodes": 2},
        collect={"episodes_per_task": 30, "shard_episodes": 15}, distill={"epochs": 40}))
    run = run_stages(cfg, root / "run", ["teachers", "collect", "distill", "export"])
    return run.root / "export" / "policy.onnx"


@pytest.fixture(scope="session")
def chunk_onnx(tmp_path_factory) -> Path:
    """A OneDP generator exported by the onestep pipeline: an action-chunk policy file."""
    from distill_ros.config import load_config
    from distill_ros.pipeline import run_stages

    root = tmp_path_factory.mktemp("chunked")
    cfg = load_config(write_config(
        root / "c.yaml", tasks=["cube"], held_out=[], teachers={"eval_episodes": 2},
        collect={"episodes_per_task": 16, "shard_episodes": 8},
        distill={"algorithm": "onestep", "epochs": 5},
        onestep={"demonstrators": ["side_pos_y", "side_neg_y"], "hidden_dim": 64,
                 "n_blocks": 2, "diffusion_steps": 20, "ddim_steps": 5,
                 "teacher_updates": 600, "distill_updates": 100, "checkpoint_every": 200,
                 "variants": ["stochastic"], "deploy": "stochastic"}))
    run = run_stages(cfg, root / "run", ["teachers", "collect", "distill", "export"])
    return run.root / "export" / "policy.onnx"


def onnx_like(student: Path, path: Path, output: str) -> Path:
    """An ONNX file with the student's metadata: ``output`` is ``"nan"`` or ``"copy"``.

    ``nan``: a graph whose every action is NaN; ``copy``: the student with one more
    metadata entry (a different file, hash and path, same behaviour); ``float64``: the
    student's metadata on a graph that takes doubles (ONNX Runtime refuses it);
    ``nan_chunk`` (``student`` is a chunk policy): finite chunks for an all-zero
    observation, NaN for any other, so it passes the load check and fails in the loop.
    """
    import onnx
    from onnx import helper, TensorProto

    model = onnx.load(str(student))
    meta = {p.key: p.value for p in model.metadata_props}
    if output == "nan_chunk":   # actions = noise + sqrt(-sum(obs^2)): NaN unless obs == 0
        nodes = [helper.make_node("Mul", ["obs", "obs"], ["sq"]),
                 helper.make_node("ReduceSum", ["sq", "axis1"], ["sum"], keepdims=1),
                 helper.make_node("Neg", ["sum"], ["neg"]),
                 helper.make_node("Sqrt", ["neg"], ["root"]),
                 helper.make_node("Unsqueeze", ["root", "axis2"], ["root3"]),
                 helper.make_node("Add", ["noise", "root3"], ["actions"])]
        graph = helper.make_graph(
            nodes, "nan_chunk",
            [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", None]),
             helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["batch", None, None])],
            [helper.make_tensor_value_info("actions", TensorProto.FLOAT,
                                           ["batch", None, None])],
            [helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("axis2", TensorProto.INT64, [1], [2])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
    elif output == "float64":
        model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    elif output == "nan":
        act_dim = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
        graph = helper.make_graph(
            [helper.make_node("Slice", ["obs", "starts", "ends", "axes"], ["part"]),
             helper.make_node("Add", ["part", "nan"], ["actions"])], "nan_policy",
            [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", None])],
            [helper.make_tensor_value_info("actions", TensorProto.FLOAT, ["batch", act_dim])],
            [helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
             helper.make_tensor("ends", TensorProto.INT64, [1], [act_dim]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
             helper.make_tensor("nan", TensorProto.FLOAT, [1], [float("nan")])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
    else:
        model.metadata_props.add(key="note", value="a second student file")
    onnx.save(model, str(path))
    return path


class Recorder:
    """Messages of one topic with their monotonic arrival times."""

    def __init__(self) -> None:
        self.items: List[tuple] = []
        self._lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), msg))

    def since(self, t: float) -> List[tuple]:
        """``(time, msg)`` received after monotonic time ``t``."""
        with self._lock:
            return [(s, m) for s, m in self.items if s > t]

    def wait_for(self, predicate: Callable[[Any], bool], after: float, timeout_s: float,
                 what: str) -> tuple:
        """Block until a message after ``after`` satisfies ``predicate``; return it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for stamp, msg in self.since(after):
                if predicate(msg):
                    return stamp, msg
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout_s} s")


class Tester:
    """The test side: one node spinning in the background, with small helpers."""

    def __init__(self, ros: Any) -> None:
        self.ros = ros
        self.node = ros.Node("node_tester")
        self._spin = ros.spin_in_background(self.node)
        self._clients: dict = {}
        self._made: List[Any] = []  # subscriptions and publishers of the current test

    def record(self, interface: str, topic: str, qos: Any = None) -> Recorder:
        """Subscribe to ``topic``; the recorder collects what arrives."""
        recorder = Recorder()
        self._made.append(self.node.create_subscription(
            self.ros.get_interface(interface), topic, recorder, qos or self.ros.DEFAULT))
        return recorder

    def publisher(self, interface: str, topic: str, qos: Any = None) -> Any:
        """A publisher on ``topic``, destroyed after the test."""
        self._made.append(self.node.create_publisher(self.ros.get_interface(interface), topic,
                                                     qos or self.ros.DEFAULT))
        return self._made[-1]

    def forget(self) -> None:
        """Destroy the subscriptions and publishers the last test made."""
        for entity in self._made:
            self.node.destroy_subscription(entity) or self.node.destroy_publisher(entity)
        self._made = []

    def call(self, interface: str, name: str, timeout_s: float = 20.0, **fields: Any) -> Any:
        """Call service ``name`` in another process, waiting for it to appear."""
        srv = self.ros.get_interface(interface)
        if name not in self._clients:
            self._clients[name] = self.node.create_client(srv, name)
        client = self._clients[name]
        assert client.wait_for_service(timeout_s), f"service {name} never appeared"
        return client.call(srv.Request(**fields), 10.0)

    def set_param(self, node: str, name: str, value: Any) -> Any:
        """Set one parameter of ``node`` through its ``set_parameters`` service."""
        from distill_ros.ros import Parameter

        value_msg = Parameter(name, value=value).to_value_msg(
            self.ros.get_interface("rcl_interfaces/msg/ParameterValue"))
        param_cls = self.ros.get_interface("rcl_interfaces/msg/Parameter")
        param = param_cls(name=name, value=value_msg)
        return self.call("rcl_interfaces/srv/SetParameters", f"{node}/set_parameters",
                         parameters=[param]).results[0]

    def get_param(self, node: str, name: str) -> Any:
        """The value of one parameter of ``node``, through its ``get_parameters`` service."""
        value = self.call("rcl_interfaces/srv/GetParameters", f"{node}/get_parameters",
                          names=[name]).values[0]
        return self.ros.Parameter.from_value_msg(name, value).value

    def transition(self, node: str, label: str) -> bool:
        """Ask lifecycle node ``node`` for transition ``label``; return success."""
        transition = self.ros.get_interface("lifecycle_msgs/msg/Transition")(label=label)
        return self.call("lifecycle_msgs/srv/ChangeState", f"{node}/change_state",
                         transition=transition).success

    def state(self, node: str) -> str:
        """The lifecycle state label of ``node``."""
        return self.call("lifecycle_msgs/srv/GetState", f"{node}/get_state").current_state.label

    def close(self) -> None:
        """Stop spinning and leave the graph."""
        self._spin.stop()
        self.node.destroy_node()


@pytest.fixture(scope="package")   # torn down before test/ros/ shuts its own contexts
def _tester_session() -> Iterator[Tester]:
    from distill_ros import ros

    ros.init([])
    side = Tester(ros)
    yield side
    side.close()
    ros.shutdown()


@pytest.fixture
def tester(_tester_session) -> Iterator[Tester]:
    """The test process's node (one DDS participant for the session), tidied after a test."""
    yield _tester_session
    _tester_session.forget()


class FakeRobot:
    """Publishes the grasp inputs (joint_states + labelled features) at 30 Hz from a thread."""

    def __init__(self, tester: Tester) -> None:
        from distill_ros.nodes.command_output import labelled_array
        from distill_ros.tasks.grasp import OBS_SPEC

        ros = tester.ros
        self._labelled = labelled_array
        self._joint_state = ros.get_interface("sensor_msgs/msg/JointState")
        self._js_pub = tester.publisher("sensor_msgs/msg/JointState", "joint_states",
                                        ros.SENSOR_DATA)
        self._feat_pub = tester.publisher("std_msgs/msg/Float64MultiArray",
                                          "/sim_robot/features", ros.SENSOR_DATA)
        obs = dict(zip(OBS_SPEC.names, np.linspace(-0.05, 0.05, OBS_SPEC.dim)))
        obs.update(palm_z=0.2, finger_opening=0.09)
        self.features = {k: float(v) for k, v in obs.items() if not k.startswith("palm_")}
        self.joints = {"ee_x": obs["palm_x"], "ee_y": obs["palm_y"], "ee_z": obs["palm_z"],
                       "finger_left": 0.05, "finger_right": 0.05}
        self.send_joint_states = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1 / 30):
            if self.send_joint_states:
                self._js_pub.publish(self._joint_state(name=list(self.joints),
                                                       position=list(self.joints.values())))
            self._feat_pub.publish(self._labelled(list(self.features),
                                                  list(self.features.values())))

    def stop(self) -> None:
        """Stop publishing."""
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def fake_robot(tester) -> Iterator[FakeRobot]:
    """Grasp inputs from the test process (so a test can stop them)."""
    robot = FakeRobot(tester)
    yield robot
    robot.stop()
