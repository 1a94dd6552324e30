"""policy_inference: a lifecycle node that runs the exported ONNX student in real time.

configure: load ``model_path`` (layout, limits and rate from the file's metadata), check
that every observation element has a source, create the endpoints. activate: start the
fixed-rate loop (monotonic clock, own thread). deactivate: stop it and command a hold.

Topics: ``joint_states`` in (``sensor_msgs/JointState``, by joint name, sensor-data QoS),
labelled ``std_msgs/Float64MultiArray`` inputs (``array_topics``, e.g. the sim's features
and an optional ``~/command``), commands out on ``output_topic``, ``/diagnostics`` at 1 Hz.
Services: ``~/emergency_stop`` and ``~/clear_emergency_stop`` (``std_srvs/Trigger``).
Setting ``model_path`` while configured loads and checks the new file off the control
loop (in a loader thread) and swaps it in atomically between two ticks; a bad file is
rejected with the reason. The parameter call waits at most ``swap_wait_s`` for the load:
a slower one (a TensorRT engine build, a cold GPU) completes in the background so the
executor keeps taking inputs; it is then swapped in, or the parameter reverts to the
running model and ``/diagnostics`` says why.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

from distill_ros import ros
from distill_ros.nodes.command_output import (array_labels, CommandOutput,
                                              diagnostic_array)
from distill_ros.runtime.control_loop import ControlLoop, LoopStats
from distill_ros.runtime.observation import ObservationAssembler, parse_joint_map
from distill_ros.runtime.safety import PositionLimit, SafetyConfig, SafetyFilter

PARAMETERS = {
    "model_path": "",                 # the ONNX file exported by distill-ros
    "autostart": False,               # configure + activate at start (as a launch file would)
    "rate_hz": 0.0,                   # control rate; 0: the model's control_rate_hz
    "watchdog_timeout_s": 0.5,        # s without fresh inputs -> hold + diagnostics ERROR
    "use_gpu": True,                  # CUDA/TensorRT when ONNX Runtime has them
    "swap_wait_s": 0.2,               # a model_path change blocks at most this; then background
    "joint_states_topic": "joint_states",
    "joint_obs": [""],                # "obs_name:joint_name": positions from JointState
    "array_topics": ["~/observations"],  # labelled Float64MultiArray inputs
    "array_obs": [""],                # observation names arriving on array_topics
    "output_type": "float64_multi_array",
    "output_topic": "/forward_command_controller/commands",
    "command_names": [""],            # controller element order (default: the model's)
    "trajectory_joints": [""],        # JointTrajectory joint names (default: command_names)
    "trajectory_field": "positions",
    "command_low": [math.nan],        # optional tighter limits than the model's (per element)
    "command_high": [math.nan],
    "max_rate": [math.inf],           # largest change per second, per element or one for all
    "hold_last": [""],                # position elements: hold keeps the last value
    "initial_hold": [0.0],            # hold values before any command was sent
    "position_limit_commands": [""],  # velocity elements limited by joint position...
    "position_limit_joints": [""],    # ...of these joints...
    "position_limit_low": [0.0],      # ...within [low, high]
    "position_limit_high": [0.0],
}
STATUS_NAME = "policy_inference: control loop"


class Policy(NamedTuple):
    """What the loop runs: a runner (``act(obs) -> action`` + metadata) and its wiring."""

    runner: Any
    obs_index: np.ndarray
    safety: SafetyFilter


def load_runner(path: str, use_gpu: bool) -> Any:
    """Open a policy file: ``act(obs)``, ``obs_spec``, ``act_spec``, ``control_rate_hz``.

    Action-chunk policies (OneDP, diffusion) get a `ChunkedPolicy`: every n_exec ticks it
    plans in a worker thread while the previous chunk's tail keeps the robot moving, and
    counts re-plans that came too late.
    """
    from distill_ros.runtime.chunked import ChunkedPolicy
    from distill_ros.runtime.onnx_policy import OnnxPolicy
    from distill_ros.runtime.session import read_metadata

    if read_metadata(path).get("policy_kind") == "action_chunk":
        return ChunkedPolicy.from_onnx(path, want_gpu=use_gpu, asynchronous=True)
    return OnnxPolicy(path, want_gpu=use_gpu)


def _names(values: list) -> list:
    return [v for v in values if v]


class PolicyInference(ros.LifecycleNode):
    """Runs the student at a fixed rate between ``joint_states`` and a ros2_control controller."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("policy_inference", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._policy: Optional[Policy] = None
        self._output: Optional[CommandOutput] = None
        self._entities: list = []
        self._loop: Optional[ControlLoop] = None
        self.stats = LoopStats(window=1000)  # resized at configure: >= the last 10 s of ticks
        self._estop = False
        self._stale = False
        self._lock = threading.RLock()  # one tick, hold, e-stop or swap at a time
        self._activated_at = math.inf
        self._status = ("OK", "unconfigured")
        self._counts = {"nan_actions": 0, "policy_errors": 0, "watchdog_trips": 0,
                        "model_swaps": 0, "models_rejected": 0}
        self._loading: Optional[str] = None   # model_path being loaded in the background
        self._reverting: Optional[int] = None  # thread setting model_path back: no new load
        self._generation = 0                  # bumped when the model is freed: late loads drop
        self._late_replans_seen = 0           # chunk late re-plans at the last diagnostics

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: Any) -> ros.TransitionCallbackReturn:
        """Load the model, check every observation has a source, create the endpoints."""
        try:
            self._obs = ObservationAssembler(parse_joint_map(self._p("joint_obs")),
                                             _names(self._p("array_obs")))
            self._policy = self._load_policy(self._p("model_path"))
            runner = self._policy.runner
            self._period = 1.0 / (self._p("rate_hz") or runner.control_rate_hz)
            self.stats = LoopStats(window=max(1000, int(10 / self._period)))
            self._output = CommandOutput(
                self, self._p("output_type"), self._p("output_topic"), runner.act_spec.names,
                _names(self._p("command_names")), _names(self._p("trajectory_joints")),
                self._p("trajectory_field"), self._period)
            self._create_endpoints()
        except Exception as err:  # noqa: BLE001 - any bad file or setting: refuse, say why
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}")
            self._free()
            return ros.TransitionCallbackReturn.FAILURE
        self._set_status("OK", f"inactive: {runner.describe()}")
        inputs = [self._p("joint_states_topic"), *_names(self._p("array_topics"))]
        self.get_logger().info(
            f"configured: {runner.describe()}; inputs from "
            f"{[self.resolve_topic_name(t) for t in inputs]}, commands on "
            f"{self.resolve_topic_name(self._p('output_topic'))}")
        return ros.TransitionCallbackReturn.SUCCESS

    def _create_endpoints(self) -> None:
        joint_state = ros.get_interface("sensor_msgs/msg/JointState")
        array = ros.get_interface("std_msgs/msg/Float64MultiArray")
        trigger = ros.get_interface("std_srvs/srv/Trigger")
        diag = ros.get_interface("diagnostic_msgs/msg/DiagnosticArray")
        self._diag_pub = self.create_publisher(diag, "/diagnostics", ros.DEFAULT)
        self._entities = [self._output.publisher, self._diag_pub]  # freed if the rest fails
        self._entities += [
            self.create_subscription(joint_state, self._p("joint_states_topic"),
                                     self._on_joint_state, ros.SENSOR_DATA),
            *[self.create_subscription(array, topic, self._on_array, ros.SENSOR_DATA)
              for topic in _names(self._p("array_topics"))],
            self.create_service(trigger, "~/emergency_stop", self._on_estop),
            self.create_service(trigger, "~/clear_emergency_stop", self._on_clear_estop),
            self.create_timer(1.0, self.publish_diagnostics),
        ]

    def on_activate(self, state: Any) -> ros.TransitionCallbackReturn:
        """Start the fixed-rate control loop (a chunked policy starts from an empty queue)."""
        self._stale = False
        self._reset_runner()
        self._activated_at = time.monotonic()
        self._loop = ControlLoop(self._period, self._tick, self.stats)
        self._loop.start()
        self._set_status("OK", f"active at {1.0 / self._period:g} Hz")
        self.get_logger().info(f"active: control loop at {1.0 / self._period:g} Hz")
        return ros.TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: Any) -> ros.TransitionCallbackReturn:
        """Stop the loop, then command a hold."""
        self._activated_at = math.inf
        self._stop_loop()
        self._send_hold()
        self._set_status("OK", "inactive: holding")
        self.get_logger().info("inactive: loop stopped, hold command sent")
        return ros.TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: Any) -> ros.TransitionCallbackReturn:
        """Free the model and every endpoint made by configure."""
        self._free()
        self._set_status("OK", "unconfigured")
        return ros.TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: Any) -> ros.TransitionCallbackReturn:
        """Stop the loop (holding) and free everything."""
        if self._loop is not None:
            self._stop_loop()
            self._send_hold()
        self._free()
        return ros.TransitionCallbackReturn.SUCCESS

    def on_error(self, state: Any) -> ros.TransitionCallbackReturn:
        """A transition raised: stop the loop, hold, free everything; back to unconfigured."""
        self._activated_at = math.inf
        if self._loop is not None:
            self._stop_loop()
            self._send_hold()
        self._free()
        self._set_status("ERROR", "a lifecycle transition failed: unconfigured, holding")
        return ros.TransitionCallbackReturn.SUCCESS

    def _reset_runner(self) -> None:
        """Forget queued chunks and observation history: they describe the past."""
        policy = self._policy
        if policy is not None and hasattr(policy.runner, "reset"):
            policy.runner.reset()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def _free(self) -> None:
        self._generation += 1  # a model still loading was meant for what is freed here
        for entity in self._entities:
            for destroy in (self.destroy_publisher, self.destroy_subscription,
                            self.destroy_service, self.destroy_timer):
                if destroy(entity):
                    break
        self._entities, self._policy = [], None
        self._output = None

    # -- models ---------------------------------------------------------------------------
    def _load_policy(self, path: str) -> Policy:
        """Open and check a model; raise ValueError/FileNotFoundError with the reason."""
        if not path:
            raise ValueError("parameter model_path is empty: set it to an exported policy.onnx")
        runner = load_runner(str(Path(path).expanduser()), self._p("use_gpu"))
        index = self._obs.layout(runner.obs_spec.names)
        if self._policy is not None:
            old = list(self._policy.runner.act_spec.names)
            if list(runner.act_spec.names) != old:
                raise ValueError(f"{path} commands {list(runner.act_spec.names)}, the running "
                                 f"model commands {old}: same actions needed for a hot swap")
        action = np.asarray(runner.act(np.zeros(runner.obs_spec.dim, np.float32)))
        if action.shape != (runner.act_spec.dim,):  # also warms the session up before a swap
            raise ValueError(f"{path} returns shape {action.shape}, expected "
                             f"({runner.act_spec.dim},) actions {list(runner.act_spec.names)}")
        if hasattr(runner, "reset"):
            runner.reset()  # drop the warm-up chunk: the first real tick plans afresh
        return Policy(runner, index, SafetyFilter(self._safety_config(runner.act_spec)))

    def _safety_config(self, act_spec: Any) -> SafetyConfig:
        low, high = np.array(act_spec.low, float), np.array(act_spec.high, float)
        for values, pick, bound in ((self._p("command_low"), np.fmax, low),
                                    (self._p("command_high"), np.fmin, high)):
            if len(values) not in (1, act_spec.dim):
                raise ValueError(f"command_low/high need 1 or {act_spec.dim} values")
            bound[:] = pick(bound, np.broadcast_to(values, bound.shape))  # NaN: the model's
        columns = {k: list(self._p(f"position_limit_{k}"))
                   for k in ("commands", "joints", "low", "high")}
        columns["commands"], columns["joints"] = (_names(columns["commands"]),
                                                  _names(columns["joints"]))
        lengths = {k: len(v) for k, v in columns.items()}
        if not columns["commands"] and not columns["joints"]:
            columns = {k: [] for k in columns}   # no position limits configured
        elif len(set(lengths.values())) > 1:
            raise ValueError("position_limit_commands/joints/low/high must have one entry per "
                             f"limited command, got lengths {lengths}")
        limits = [PositionLimit(c, j, lo, hi) for c, j, lo, hi in zip(*columns.values())]
        return SafetyConfig(act_spec.names, low, high, max_rate=self._p("max_rate"),
                            hold_last=_names(self._p("hold_last")),
                            initial_hold=self._p("initial_hold"), position_limits=limits)

    def _on_set_parameters(self, params: list) -> Any:
        for param in params:
            if param.name == "watchdog_timeout_s" and not param.value > 0:
                return ros.set_parameters_result(
                    False, f"watchdog_timeout_s must be > 0 seconds, got {param.value}")
            if param.name == "rate_hz" and param.value < 0:
                return ros.set_parameters_result(False, f"rate_hz must be >= 0, got "
                                                 f"{param.value} (0: the model's rate)")
            if param.name == "swap_wait_s" and not param.value >= 0:
                return ros.set_parameters_result(
                    False, f"swap_wait_s must be >= 0 seconds, got {param.value}")
            reverting = self._reverting == threading.get_ident()
            if param.name == "model_path" and self._policy is not None and not reverting:
                reason = self._hot_swap(param.value)
                if reason:
                    return ros.set_parameters_result(False, reason)
        return ros.set_parameters_result(True)

    def _hot_swap(self, path: str) -> str:
        """Load ``path`` in a loader thread, then swap it in; return why not, or ''."""
        old, generation = self._policy, self._generation
        if self._loading is not None:
            return (f"model_path rejected: {self._loading} is still loading; set it again "
                    "once /diagnostics shows it swapped in or rejected")
        future: Future = Future()
        # daemon: a load that never ends (a hung GPU driver) must not block the process exit
        threading.Thread(target=self._load_into, args=(future, path), daemon=True,
                         name="model-loader").start()
        try:
            new = future.result(timeout=self._p("swap_wait_s"))
        except FutureTimeout:
            self._loading = path
            self.get_logger().info(f"model_path {path}: loading in the background, "
                                   f"{old.runner.path} keeps running meanwhile")
            threading.Thread(target=self._finish_background_swap, daemon=True,
                             args=(future, path, old, generation), name="model-swap").start()
            return ""
        except Exception as err:  # noqa: BLE001 - whatever is wrong with the file, say it
            self._counts["models_rejected"] += 1
            self.get_logger().warn(f"model_path {path} rejected: {type(err).__name__}: {err}")
            return (f"model_path rejected: {type(err).__name__}: {err}; still running "
                    f"{old.runner.path}")
        self._swap_in(new, generation)
        return ""

    def _load_into(self, future: Future, path: str) -> None:
        try:
            future.set_result(self._load_policy(path))
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(err)

    def _finish_background_swap(self, future: Future, path: str, old: Policy,
                                generation: int) -> None:
        """Swap thread: swap the slow model in, or set ``model_path`` back and say why.

        Never runs on the executor thread, so the parameter set that started the load has
        been stored (or refused) before the revert below is decided.
        """
        try:
            error = future.exception()
            if error is None:
                self._swap_in(future.result(), generation)
                return
            self._counts["models_rejected"] += 1
            why = f"{type(error).__name__}: {error}"
            self.get_logger().warn(f"model_path {path} rejected after loading: {why}")
            if generation != self._generation:
                return  # cleaned up meanwhile: model_path now belongs to the next configure
            if self._wait_for_parameter("model_path", path, timeout_s=2.0):
                self._reverting = threading.get_ident()
                try:
                    self.set_parameters([ros.Parameter("model_path",
                                                       value=str(old.runner.path))])
                finally:
                    self._reverting = None
            if self._status[0] != "ERROR":  # an e-stop or watchdog ERROR outranks this
                self._set_status("WARN", f"model_path {path} rejected ({why}); still "
                                 f"running {old.runner.path}")
        finally:
            self._loading = None

    def _wait_for_parameter(self, name: str, value: Any, timeout_s: float) -> bool:
        """Whether parameter ``name`` holds ``value`` within ``timeout_s`` (the set landed)."""
        deadline = time.monotonic() + timeout_s
        while self._p(name) != value:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _swap_in(self, new: Policy, generation: int) -> None:
        with self._lock:  # between two ticks: the loop sees old or new, never half
            old = self._policy
            if old is None or generation != self._generation:
                self.get_logger().info(f"{new.runner.path} loaded after a cleanup: dropped")
                return
            new.safety.last = old.safety.last
            self._policy = new
        self._counts["model_swaps"] += 1
        self.get_logger().info(f"hot swap: now running {new.runner.describe()}")

    # -- inputs and services --------------------------------------------------------------
    def _on_joint_state(self, msg: Any) -> None:
        self._obs.update_joints(msg.name, msg.position, time.monotonic())

    def _on_array(self, msg: Any) -> None:
        self._obs.update_array(array_labels(msg), msg.data, time.monotonic())

    def _on_estop(self, request: Any, response: Any) -> Any:
        with self._lock:  # no tick can publish a policy command after this hold
            self._estop = True
            self._send_hold()
        self._set_status("ERROR", "emergency stop: holding until ~/clear_emergency_stop")
        response.success, response.message = True, "emergency stop engaged: holding"
        return response

    def _on_clear_estop(self, request: Any, response: Any) -> Any:
        with self._lock:
            was, self._estop = self._estop, False
            if was:
                self._reset_runner()
        self._set_status("OK", "emergency stop cleared")
        response.success = True
        response.message = "emergency stop cleared" if was else "no emergency stop was engaged"
        return response

    # -- the loop -------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        with self._lock:
            self._tick_locked(now)

    def _tick_locked(self, now: float) -> None:
        policy = self._policy
        if policy is None:
            return
        obs, oldest, newest = self._obs.assemble(policy.obs_index)
        if self._estop:
            self._send_hold(policy)
            return
        if newest == -math.inf or (oldest == -math.inf and not self._stale):
            # nothing is sent until every input arrived once; say which never did
            if now - self._activated_at > self._p("watchdog_timeout_s"):
                never = self._obs.never_received(policy.runner.obs_spec.names)
                message = (f"no data yet for {never}: check array_topics, "
                           "joint_states_topic and the publishers")
                if self._status[1] != message:
                    self.get_logger().error(message)
                self._set_status("ERROR", message)
            return
        age = now - oldest
        if age > self._p("watchdog_timeout_s"):
            self._send_hold(policy)
            if not self._stale:
                self._stale = True
                self._counts["watchdog_trips"] += 1
                self.get_logger().error(f"watchdog: inputs {age:.3f} s old, holding")
                self._set_status("ERROR", f"watchdog: inputs stale ({age:.3f} s), holding")
            return
        if self._stale:
            self._stale = False
            self._reset_runner()  # a queued chunk was planned from inputs now stale
            self._set_status("OK", "inputs fresh again: running")
        try:
            action = policy.runner.act(obs)
        except Exception as err:  # noqa: BLE001 - a failing model must not stall the robot
            self._send_hold(policy)
            self._counts["policy_errors"] += 1
            if self._status[0] != "ERROR":
                self.get_logger().error(f"policy failed: {type(err).__name__}: {err}; holding")
            self._set_status("ERROR", f"policy failed ({type(err).__name__}: {err}), holding")
            return
        if self._status[0] == "ERROR" and self._status[1].startswith(("policy failed",
                                                                     "no data yet")):
            self._set_status("OK", "running")
        command, note = policy.safety.apply(action, self._period,
                                            self._obs.joint_positions()
                                            if policy.safety.position_limits else None)
        if note:
            self._counts["nan_actions"] += 1
            self._set_status("WARN", f"{note} replaced by a hold")
        self._output.publish(command)
        self.stats.latency(time.monotonic() - newest)

    def _send_hold(self, policy: Optional[Policy] = None) -> None:
        with self._lock:
            policy = policy or self._policy
            if policy is not None and self._output is not None:
                hold = policy.safety.hold()
                policy.safety.mark_held(hold)
                self._output.publish(hold)

    # -- diagnostics ----------------------------------------------------------------------
    def _set_status(self, level: str, message: str) -> None:
        changed = self._status != (level, message)
        self._status = (level, message)
        if changed and self._entities:
            self.publish_diagnostics()

    def publish_diagnostics(self) -> None:
        """Publish the loop's rate, latency, overruns and model hash on ``/diagnostics``."""
        policy = self._policy
        if policy is None:
            return
        values = {"state": self.current_state.label, **self.stats.summary(), **self._counts,
                  "emergency_stop": self._estop, "watchdog_stale": self._stale,
                  "model_loading": self._loading or "",
                  "model_sha256": policy.runner.sha256, "model_path": str(policy.runner.path)}
        if hasattr(policy.runner, "diagnostics"):  # chunked: queue length, late re-plans
            values.update({f"chunk_{k}": v for k, v in policy.runner.diagnostics().items()})
        level, message = self._status
        late = int(values.get("chunk_late_replans", 0))
        if late > self._late_replans_seen and level == "OK":  # new since the last report
            level, message = "WARN", (f"{late - self._late_replans_seen} late re-plan(s) "
                                      f"since the last report ({late} in all); {message}")
        self._late_replans_seen = late
        self._diag_pub.publish(diagnostic_array(self, STATUS_NAME, level, message,
                                                self.get_fully_qualified_name(), values))


def main(args: Optional[list] = None) -> None:
    """Run the node; ``autostart:=true`` configures and activates it at once."""
    ros.init(args)
    node = PolicyInference()
    if node.get_parameter("autostart").value:
        if node.trigger_configure() == ros.TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
    else:
        name = node.get_fully_qualified_name()
        node.get_logger().info(
            f"unconfigured lifecycle node: `ros2 lifecycle set {name} configure`, then "
            "`activate` (or start with -p autostart:=true and --params-file "
            "config/policy_inference_params.yaml for the grasp layout)")
    try:
        ros.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.trigger_shutdown()
        node.destroy_node()
        ros.shutdown()


if __name__ == "__main__":
    main()
