"""The other process of the cross-process tests: one small ROS node per role.

Run as ``python ros_peer.py <role> [arg]``. The peer prints ``READY`` when its
endpoints exist, then result lines (JSON) where a role has something to report,
and exits when its stdin closes or after ``LIFETIME_S``.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from distill_ros import ros  # noqa: E402 - path set up just above

LIFETIME_S = float(os.environ.get("DISTILL_ROS_PEER_LIFETIME_S", "30"))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def listener(node: ros.Node, done: threading.Event, topic: str) -> None:
    """Report the first JointState received on ``topic``."""
    joint_state = ros.get_interface("sensor_msgs/msg/JointState")

    def on_msg(msg: object) -> None:
        _say(json.dumps({"frame_id": msg.header.frame_id, "sec": msg.header.stamp.sec,
                         "name": list(msg.name), "position": list(msg.position)}))
        done.set()
    node.create_subscription(joint_state, topic, on_msg, 10)


def array_listener(node: ros.Node, done: threading.Event, topic: str) -> None:
    """Report the first Float64MultiArray received on ``topic``: labels and exact values."""
    def on_msg(msg: object) -> None:
        _say(json.dumps({"labels": [d.label for d in msg.layout.dim],
                         "data": [float(v).hex() for v in msg.data]}))
        done.set()
    node.create_subscription(ros.get_interface("std_msgs/msg/Float64MultiArray"), topic,
                             on_msg, 10)


def trigger_server(node: ros.Node, done: threading.Event, name: str) -> None:
    """Serve std_srvs/Trigger, answering with this process id."""
    trigger = ros.get_interface("std_srvs/srv/Trigger")

    def on_call(request: object, response: object) -> object:
        response.success = True
        response.message = f"triggered by pid {os.getpid()}"
        return response
    node.create_service(trigger, name, on_call)


def param_node(node: ros.Node, done: threading.Event, _arg: str) -> None:
    """Declare ``gain`` and reject negative values with a reason."""
    node.declare_parameter("gain", 1.0)
    node.declare_parameter("mode", "fast")

    def on_set(params: list) -> object:
        for param in params:
            if param.name == "gain" and param.value < 0:
                return ros.set_parameters_result(False, f"gain must be >= 0, got {param.value}")
        return ros.set_parameters_result(True)
    node.add_on_set_parameters_callback(on_set)


class Managed(ros.LifecycleNode):
    """Lifecycle node that refuses to activate while ``allow_activate`` is False."""

    def __init__(self) -> None:
        super().__init__("managed")
        self.declare_parameter("allow_activate", True)
        self.resources = None

    def on_configure(self, state: ros.LifecycleState) -> ros.TransitionCallbackReturn:
        """Load resources."""
        self.resources = "loaded"
        return ros.TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: ros.LifecycleState) -> ros.TransitionCallbackReturn:
        """Activate unless told not to."""
        if not self.get_parameter("allow_activate").value:
            return ros.TransitionCallbackReturn.FAILURE
        return ros.TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: ros.LifecycleState) -> ros.TransitionCallbackReturn:
        """Free resources."""
        self.resources = None
        return ros.TransitionCallbackReturn.SUCCESS


class CliTarget(ros.LifecycleNode):
    """What the ``ros2`` CLI tests drive: described parameters, a Trigger, a String input.

    It also latches one labelled Float64MultiArray on ``~/commands``, published as the
    pre-serialised bytes of :class:`~distill_ros.ros.cdr.Float64Tail` (as policy_inference
    sends its commands).
    """

    def __init__(self) -> None:
        super().__init__("cli_target")
        desc = ros.parameter_descriptor
        self.declare_parameter("gain", 1.0, desc("feedback gain", float_range=(0.0, 10.0)))
        self.declare_parameter("input_topic", "~/in", desc("where text arrives", read_only=True))
        self.declare_parameter("retries", 3, desc("attempts", int_range=(0, 5)))
        string = ros.get_interface("std_msgs/msg/String")
        self.create_subscription(string, self.get_parameter("input_topic").value,
                                 lambda msg: _say(json.dumps({"heard": msg.data})), 10)
        self.create_service(ros.get_interface("std_srvs/srv/Trigger"), "~/reset", self._reset)
        diag = ros.get_interface("diagnostic_msgs/msg/DiagnosticArray")
        status = ros.get_interface("diagnostic_msgs/msg/DiagnosticStatus")
        self._status_pub = self.create_publisher(diag, "~/status", ros.LATCHED)
        self._status_pub.publish(diag(status=[status(level=status.WARN, name="cli_target",
                                                     message="warming up")]))
        from distill_ros.nodes.command_output import labelled_array
        from distill_ros.ros.cdr import Float64Tail

        commands = labelled_array(["ee_vx", "gripper_opening"], [0.0, 0.0])
        self._commands_pub = self.create_publisher(type(commands), "~/commands", ros.LATCHED)
        self._commands_pub.publish(Float64Tail(commands).serialize([-0.375, 0.0625]))

    def _reset(self, request: object, response: object) -> object:
        response.success, response.message = True, f"reset in {self.current_state.label}"
        return response


ROLES = {"listener": listener, "array_listener": array_listener,
         "trigger_server": trigger_server, "param_node": param_node}


def main() -> None:
    """Start the role's node, spin it in the background, wait for stdin to close."""
    role, arg = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    ros.init([])
    done = threading.Event()
    if role == "lifecycle_node":
        node = Managed()
    elif role == "cli_target":
        node = CliTarget()
    else:
        node = ros.Node(role if role != "param_node" else "param_node",
                        namespace="/peer" if role == "trigger_server" else "/")
        ROLES[role](node, done, arg)
    spinner = ros.spin_in_background(node)
    _say("READY")
    watcher = threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True)
    watcher.start()
    done.wait(LIFETIME_S)
    time.sleep(0.2)  # let the last reply/sample leave before the participant goes
    spinner.stop()
    node.destroy_node()
    ros.shutdown()


if __name__ == "__main__":
    main()
