"""motion_command: a DeepMimic clip played as HOVER's masked whole-body command.

Each tick it builds the command of `tasks.humanoid.commands` from the clip's frames (key-body
positions, joint angles, root velocity / height / yaw rate, ``future_steps`` control steps
ahead) and publishes it as the pair ``policy_inference`` reads as a ``command`` group
(``command_groups: ["command:/motion_command/values:/motion_command/mask"]``):

* ``~/values``: labelled ``std_msgs/Float64MultiArray`` (``+1/joint/chest[0]``, ...); the
  masked elements are zero, as the student saw them in training;
* ``~/mask``: the same labels, 1.0 where the ``mode`` shows the element, 0.0 elsewhere.

``mode`` (one of ``commands.MODES``: ``full``, ``upper_body``, ``head_hands``, ...) and
``clip`` apply at once: ``ros2 param set /motion_command mode upper_body``. The clip time
comes from ``clock``:

* ``sim``: the ``clip_time`` element of ``sim_time_topic`` (``sim_robot``'s features); one
  command per message, so the command follows the simulated robot's time, resets included;
* ``own``: this node's clock from ``start_time``, at ``speed``, published at ``rate_hz``.

``/diagnostics`` at 1 Hz says the clip, mode, clip time and how many commands went out.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from distill_ros import ros
from distill_ros.nodes.command_output import array_labels, diagnostic_array, labelled_array
from distill_ros.tasks.base import get_family

CLOCKS = ("sim", "own")

#: name -> (default, description, read-only after start)
PARAMETERS = {
    "family": ("humanoid", "task family whose command_source plays the clip", True),
    "clip": ("walk", "DeepMimic clip of pybullet_data (humanoid3d_<clip>.txt)", False),
    "mode": ("full", "command mode: which items the mask shows (tasks.humanoid.commands."
             "MODES)", False),
    "future_steps": ([1], "control steps ahead of each command frame (as the student was "
                     "trained)", True),
    "clock": ("sim", "sim: follow clip_time on sim_time_topic; own: this node's clock", True),
    "sim_time_topic": ("/sim_robot/features", "clock sim: labelled array with clip_time",
                       True),
    "rate_hz": (30.0, "clock own: commands per second", True),
    "speed": (1.0, "clock own: clip seconds per second", False),
    "start_time": (0.0, "clock own: clip time (s) when the node starts", True),
    "values_topic": ("~/values", "command values (masked elements are 0)", True),
    "mask_topic": ("~/mask", "command mask (1: commanded, 0: not)", True),
}


class MotionCommand(ros.Node):
    """Publishes a clip's masked command, following the sim's time or its own clock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("motion_command", **kwargs)
        for name, (default, description, read_only) in PARAMETERS.items():
            self.declare_parameter(name, default, ros.parameter_descriptor(
                description, read_only=read_only))
        clock = self._p("clock")
        if clock not in CLOCKS:
            raise ValueError(f"motion_command parameter clock must be one of {list(CLOCKS)}, "
                             f"got {clock!r}")
        family = get_family(self._p("family"), "motion_command parameter family")
        if family.command_source is None:
            raise ValueError(f"task family {family.name!r} offers no command_source for "
                             "motion_command; choose one that does, e.g. humanoid")
        self.source = family.command_source(self._p("clip"), self._p("mode"),
                                            tuple(self._p("future_steps")))
        self.labels = self.source.labels
        self.add_on_set_parameters_callback(self._on_set_parameters)
        array = ros.get_interface("std_msgs/msg/Float64MultiArray")
        self._values_pub = self.create_publisher(array, self._p("values_topic"), ros.DEFAULT)
        self._mask_pub = self.create_publisher(array, self._p("mask_topic"), ros.DEFAULT)
        self._diag_pub = self.create_publisher(
            ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics",
            ros.DEFAULT)
        self.published, self.clip_time, self._warned = 0, float("nan"), False
        if clock == "sim":
            self.create_subscription(array, self._p("sim_time_topic"), self._on_sim_time,
                                     ros.SENSOR_DATA)
        else:
            self._anchor = (self._now(), self._p("start_time"))
            self.create_timer(1.0 / self._p("rate_hz"), self._on_timer)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"motion_command: clip {self.source.clip.name}, mode {self.source.mode}, clock "
            f"{clock}, {len(self.labels)} command elements on "
            f"{self.resolve_topic_name(self._p('values_topic'))} + "
            f"{self.resolve_topic_name(self._p('mask_topic'))}")

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_set_parameters(self, params: list) -> Any:
        """Apply ``mode``, ``clip`` and ``speed`` at once; refuse bad values with the reason."""
        source = self.source
        for param in params:
            if param.name == "speed" and not np.isfinite(param.value):
                return ros.set_parameters_result(False, f"speed must be finite, got "
                                                        f"{param.value}")
        for param in params:
            try:
                if param.name == "mode":
                    source.set_mode(param.value)
                elif param.name == "clip":
                    source.set_clip(param.value)
            except (ValueError, FileNotFoundError) as err:
                return ros.set_parameters_result(False, f"{param.name}: {err}")
            if param.name in ("mode", "clip"):
                self.get_logger().info(f"{param.name} is now {param.value}")
        if self._p("clock") == "own" and any(p.name in ("speed", "clip") for p in params):
            clip_changed = any(p.name == "clip" for p in params)
            self._anchor = (self._now(), 0.0 if clip_changed else self.clip_time)
        return ros.set_parameters_result(True)

    def _on_sim_time(self, msg: Any) -> None:
        labels = array_labels(msg)
        if "clip_time" not in labels:
            if not self._warned:
                self.get_logger().warn(f"{self._p('sim_time_topic')} carries no clip_time "
                                       "element; publish it (sim_robot's humanoid scene does) "
                                       "or use clock:=own")
                self._warned = True
            return
        self.publish_at(float(msg.data[labels.index("clip_time")]))

    def _on_timer(self) -> None:
        start, clip_start = self._anchor
        clip_start = 0.0 if np.isnan(clip_start) else clip_start
        self.publish_at(clip_start + self._p("speed") * (self._now() - start))

    def publish_at(self, clip_time: float) -> None:
        """Publish the masked command of the clip at ``clip_time`` (s): values, then mask."""
        values, mask = self.source.at(clip_time)
        self._values_pub.publish(labelled_array(self.labels, values))
        self._mask_pub.publish(labelled_array(self.labels, mask))
        self.published += 1
        self.clip_time = clip_time

    def _publish_diagnostics(self) -> None:
        waiting = self.published == 0
        message = (f"waiting for clip_time on {self._p('sim_time_topic')}" if waiting
                   else f"playing {self.source.clip.name} in mode {self.source.mode}")
        self._diag_pub.publish(diagnostic_array(
            self, "motion_command: clip", "WARN" if waiting else "OK", message,
            self.get_fully_qualified_name(),
            {"clip": self.source.clip.name, "mode": self.source.mode, "clock": self._p("clock"),
             "clip_time_s": round(self.clip_time, 4), "commands": self.published,
             "commanded_elements": int(self.source.mask.sum())}))


def main(args: Optional[list] = None) -> None:
    """Run the node until interrupted."""
    ros.init(args)
    node = MotionCommand()
    try:
        ros.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.source.close()
        node.destroy_node()
        ros.shutdown()


if __name__ == "__main__":
    main()
