"""policy_inference: a lifecycle node that runs the exported ONNX student in real time.

configure: load ``model_path``, check that every observation element has a source, create
the endpoints. activate: compute at ``rate_hz`` (``trigger: timer``) or when
``trigger_topic`` delivers (``trigger: input``). deactivate: stop and command a hold. What
each tick sends is decided by ``runtime.supervisor``; loads and hot swaps by
``runtime.model_loader``; the parameters are in ``inference_parameters``.

Topics: ``joint_states`` in (``sensor_msgs/JointState``, by joint name, sensor-data QoS),
labelled ``std_msgs/Float64MultiArray`` inputs (``array_topics``), point clouds and masked
commands for grouped policies (``inference_inputs``), commands out on ``output_topic``,
``/diagnostics`` at 1 Hz and on every status change. Services: ``~/emergency_stop`` and
``~/clear_emergency_stop`` (``std_srvs/Trigger``).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from distill_ros import ros
from distill_ros.nodes import inference_parameters as params
from distill_ros.nodes.command_output import CommandOutput, diagnostic_array
from distill_ros.nodes.inference_inputs import InputWiring, parse_sources
from distill_ros.runtime.control_loop import Cadence, LoopStats
from distill_ros.runtime.model_loader import ModelLoader, open_policy, wait_until
from distill_ros.runtime.observation import (GroupStore, ObservationAssembler,
                                             parse_joint_map)
from distill_ros.runtime.realtime import FifoThread, pin_process, unpin_process
from distill_ros.runtime.safety import config_from_settings, nonempty, SafetyFilter
from distill_ros.runtime.safety import SETTINGS
from distill_ros.runtime.supervisor import ERROR, OK, Policy, Supervisor

STATUS_NAME = "policy_inference: control loop"


class PolicyInference(ros.LifecycleNode):
    """Runs the student between ``joint_states`` and a ros2_control controller."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("policy_inference", **kwargs)
        params.declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.stats = LoopStats(window=1000)  # remade at configure: >= the last 10 s of ticks
        self._sup: Optional[Supervisor] = None
        self._loader: Optional[ModelLoader] = None
        self._output: Optional[CommandOutput] = None
        self._entities: list = []
        self._cadence: Optional[Cadence] = None
        self._clouds: list = []
        self._commands: list = []
        self._fifo = FifoThread(0)
        self._unpinned: Optional[set] = None  # the CPUs before cpu_affinity pinned the node

    def _p(self, name: str, changes: Optional[dict] = None) -> Any:
        """A parameter's value, or its new value when ``changes`` is about to set it."""
        if changes and name in changes:
            return changes[name]
        return self.get_parameter(name).value

    # -- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: Any) -> ros.TransitionCallbackReturn:
        """Load the model, check every observation has a source, create the endpoints."""
        try:
            inputs = ObservationAssembler(parse_joint_map(self._p("joint_obs")),
                                          nonempty(self._p("array_obs")))
            self._clouds = parse_sources(self._p("points_groups"), "points_groups", 2)
            self._commands = parse_sources(self._p("command_groups"), "command_groups", 3)
            store, sourced = GroupStore(), [s[0] for s in self._clouds + self._commands]
            policy = open_policy(self._p("model_path"), self._p("use_gpu"), inputs, None,
                                 store, sourced)
            runner, period = policy.runner, self._timing(policy.runner)[0]
            self.stats = LoopStats(window=max(1000, int(10 / period)))
            self._sup = Supervisor(inputs, self._send, on_status=self._on_status,
                                   watchdog_timeout_s=self._p("watchdog_timeout_s"),
                                   stats=self.stats, groups=store)
            self._sup.configure(policy, self._safety(runner), period)
            names = runner.act_spec.names
            self._loader = ModelLoader(
                lambda path: open_policy(path, self._p("use_gpu"), inputs, names, store,
                                         sourced), self._swap_in, self._on_load_failed)
            self._output = CommandOutput(
                self, self._p("output_type"), self._p("output_topic"), names,
                nonempty(self._p("command_names")), nonempty(self._p("trajectory_joints")),
                self._p("trajectory_field"), period, self._p("label_commands"))
            self._create_endpoints(getattr(runner, "groups", None))
            self._fifo = FifoThread(self._p("thread_priority"))
            self._unpinned = pin_process(self._p("cpu_affinity"))
        except Exception as err:  # noqa: BLE001 - any bad file or setting: refuse, say why
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}")
            self._free()
            return ros.TransitionCallbackReturn.FAILURE
        self._sup.set_status(OK, f"inactive: {runner.describe()}")
        self.get_logger().info(
            f"configured: {runner.describe()}; inputs from "
            f"{[self.resolve_topic_name(t) for t in self._inputs()]}, commands on "
            f"{self.resolve_topic_name(self._p('output_topic'))}")
        return ros.TransitionCallbackReturn.SUCCESS

    def _inputs(self) -> list:
        return [self._p("joint_states_topic"), *nonempty(self._p("array_topics")),
                *[c[1] for c in self._clouds], *[t for c in self._commands for t in c[1:]]]

    def _create_endpoints(self, groups: Any) -> None:
        inputs, triggered = self._inputs(), self._p("trigger") == "input"
        trigger_topic = (self._p("trigger_topic") or inputs[0]) if triggered else None
        if triggered and trigger_topic not in inputs:
            raise ValueError(f"trigger_topic {trigger_topic!r} is not an input: use one of "
                             f"{inputs}")
        trigger = ros.get_interface("std_srvs/srv/Trigger")
        diag = ros.get_interface("diagnostic_msgs/msg/DiagnosticArray")
        self._diag_pub = self.create_publisher(diag, "/diagnostics", ros.DEFAULT)
        self._entities = [self._output.publisher, self._diag_pub]  # freed if the rest fails
        wiring = InputWiring(self, self._sup, groups, self._on_trigger, trigger_topic)
        try:
            wiring.wire(inputs[0], nonempty(self._p("array_topics")), self._clouds,
                        self._commands)
        finally:
            self._entities += wiring.entities
        self._entities += [
            self.create_service(trigger, "~/emergency_stop", self._on_estop),
            self.create_service(trigger, "~/clear_emergency_stop", self._on_clear_estop),
            self.create_timer(1.0, self.publish_diagnostics)]

    def on_activate(self, state: Any) -> ros.TransitionCallbackReturn:
        """Start computing (a chunked policy starts from an empty queue)."""
        sup = self._sup
        sup.activate()
        self._cadence = Cadence(self._p("trigger"), sup.step, sup.watch, self.stats,
                                *self._timing(sup.policy.runner), prepare=self._fifo.enter)
        self._cadence.start()
        how = (f"on {self._p('trigger_topic') or self._p('joint_states_topic')}"
               if self._p("trigger") == "input" else f"at {1.0 / sup.period_s:g} Hz")
        self._sup.set_status(OK, f"active: computing {how}")
        self.get_logger().info(f"active: computing {how}")
        return ros.TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: Any) -> ros.TransitionCallbackReturn:
        """Stop computing, then command a hold."""
        self._stop()
        self._sup.set_status(OK, "inactive: holding")
        self.get_logger().info("inactive: loop stopped, hold command sent")
        return ros.TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: Any) -> ros.TransitionCallbackReturn:
        """Free the model and every endpoint made by configure."""
        self._free()
        return ros.TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: Any) -> ros.TransitionCallbackReturn:
        """Stop (holding) and free everything."""
        self._stop()
        self._free()
        return ros.TransitionCallbackReturn.SUCCESS

    def on_error(self, state: Any) -> ros.TransitionCallbackReturn:
        """A transition raised: stop, hold, free everything; back to unconfigured."""
        self.get_logger().error("a lifecycle transition failed: unconfigured, holding")
        return self.on_shutdown(state)

    def _stop(self) -> None:
        if self._cadence is not None:
            self._cadence.stop()
            self._cadence = None
            self._fifo.leave()
            self._sup.deactivate()

    def _free(self) -> None:
        if self._loader is not None:
            self._loader.invalidate()  # a model still loading was meant for what is freed
        for entity in self._entities:
            for destroy in (self.destroy_publisher, self.destroy_subscription,
                            self.destroy_service, self.destroy_timer):
                if destroy(entity):
                    break
        self._entities, self._output = [], None
        unpin_process(self._unpinned)
        self._unpinned = None
        if self._sup is not None:
            self._sup.free()

    # -- settings, models, inputs, outputs, services, diagnostics ----------------------
    def _timing(self, runner: Any, changes: Optional[dict] = None) -> tuple:
        """Control period, least time between input-triggered computes, watchdog period."""
        period = 1.0 / (self._p("rate_hz", changes) or runner.control_rate_hz)
        return (period, self._p("min_period_s", changes) or period / 2,
                min(0.05, self._p("watchdog_timeout_s", changes) / 4))

    def _safety(self, runner: Any, changes: Optional[dict] = None) -> SafetyFilter:
        spec = runner.act_spec
        return SafetyFilter(config_from_settings(
            spec.names, spec.low, spec.high, {k: self._p(k, changes) for k in SETTINGS}))

    def _on_set_parameters(self, parameters: list) -> Any:
        changes = {p.name: p.value for p in parameters}
        reason = params.check(changes)
        if not reason and self._sup is not None and self._sup.policy is not None:
            reason = self._apply_live(changes)
        return ros.set_parameters_result(not reason, reason)

    def _apply_live(self, changes: dict) -> str:
        """Apply changes to a configured node; return why not (then nothing changed)."""
        sup, loader = self._sup, self._loader
        reason = params.refused_while_configured(changes)
        if reason:
            return reason
        runner = sup.policy.runner
        try:
            safety = self._safety(runner, changes) if set(changes) & set(SETTINGS) else None
        except ValueError as err:
            return str(err)
        if "model_path" in changes and not loader.reverting:
            reason = loader.request(changes["model_path"], self._p("swap_wait_s", changes),
                                    str(runner.path))
            if reason:
                return reason
        if safety is not None:
            sup.set_safety(safety)
        sup.watchdog_timeout_s = self._p("watchdog_timeout_s", changes)
        timing = self._timing(runner, changes)
        sup.period_s = self._output.period_s = timing[0]
        if self._cadence is not None:
            self._cadence.retime(*timing)
        return ""

    def _swap_in(self, policy: Policy) -> bool:
        sup = self._sup
        if sup is None or not sup.swap(policy, self._safety(policy.runner)):
            return False
        self.get_logger().info(f"hot swap: now running {policy.runner.describe()}")
        return True

    def _on_load_failed(self, path: str, why: str, running: str) -> None:
        """Loader thread: set ``model_path`` back to the running model and say why."""
        self.get_logger().warn(f"model_path {path} rejected after loading: {why}")
        if wait_until(lambda: self._p("model_path") == path, timeout_s=2.0):  # the set landed
            with self._loader.revert():
                self.set_parameters([ros.Parameter("model_path", value=running)])
        self._sup.warn(f"model_path {path} rejected ({why}); still running {running}")

    def _on_trigger(self) -> None:
        cadence = self._cadence
        if cadence is not None:
            cadence.on_input()

    def _send(self, command: np.ndarray) -> None:
        if self._output is not None:
            self._output.publish(command)

    def _on_estop(self, request: Any, response: Any) -> Any:
        self._sup.engage_estop()
        response.success, response.message = True, "emergency stop engaged: holding"
        return response

    def _on_clear_estop(self, request: Any, response: Any) -> Any:
        was = self._sup.clear_estop()
        response.success = True
        response.message = "emergency stop cleared" if was else "no emergency stop was engaged"
        return response

    def _on_status(self, level: str, message: str) -> None:
        if level != OK:
            (self.get_logger().error if level == ERROR else self.get_logger().warn)(message)
        if self._entities:
            self.publish_diagnostics()

    def publish_diagnostics(self) -> None:
        """Publish the loop's rate, latency, overruns, counters and model on ``/diagnostics``."""
        sup, loader = self._sup, self._loader
        policy = sup.policy if sup is not None else None
        if policy is None or not self._entities:
            return
        level, message, values = sup.report()
        values = {"state": self.current_state.label, **self.stats.summary(), **values,
                  "model_swaps": loader.swaps, "models_rejected": loader.rejected,
                  "model_loading": loader.loading or "", "model_sha256": policy.runner.sha256,
                  "model_path": str(policy.runner.path), "scheduling": self._scheduling()}
        self._diag_pub.publish(diagnostic_array(self, STATUS_NAME, level, message,
                                                self.get_fully_qualified_name(), values))

    def _scheduling(self) -> str:
        """The compute thread's scheduling and the node's CPUs, for diagnostics."""
        cpus = sorted(os.sched_getaffinity(0)) if self._unpinned else "any"
        return f"{self._fifo.state}; cpus {cpus}"


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
