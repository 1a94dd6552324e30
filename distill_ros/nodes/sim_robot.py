"""sim_robot: a task family's scene as a ROS 2 robot, ros2_control style.

The scene comes from the family named by ``family`` (``TaskFamily.make_scene``, the
`tasks.scene.Scene` protocol); no ROS inside the scene, this node only translates. Each
control period (the task's rate unless ``rate_hz`` says otherwise) it applies the last
forward-controller command and steps the physics, then publishes:

* ``joint_states`` (``sensor_msgs/JointState``; grasp: ee_x, ee_y, ee_z, finger_left,
  finger_right)
* ``~/features`` (labelled ``std_msgs/Float64MultiArray``: every observation element that
  is not a joint position; grasp: finger opening, object pose, half extents, contacts)
* ``~/object_pose`` (``geometry_msgs/PoseStamped``) when the scene has an object,
  ``~/markers`` (the scene's shapes for RViz), ``~/success`` (``std_msgs/Bool``) and
  ``/diagnostics`` (1 Hz, the scene's status line).
* ``~/points`` (``sensor_msgs/PointCloud2``, x/y/z and, when the scene labels points, a
  ``label`` field, float32, world frame, sensor-data QoS) at ``point_cloud_hz``: what the
  scene's depth camera sees (0 turns it off).

Commands arrive on ``command_topic`` (``std_msgs/Float64MultiArray``, elements by
``layout.dim[i].label`` when present, else in ``command_names`` order, as a forward
command controller takes them). ``~/reset`` (``std_srvs/Trigger``) starts a new episode.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from distill_ros import ros
from distill_ros.nodes.command_output import array_labels, diagnostic_array, labelled_array
from distill_ros.tasks.base import get_family

MARKER_TYPES = {"cube": "CUBE", "sphere": "SPHERE", "cylinder": "CYLINDER",
                "line_strip": "LINE_STRIP", "points": "POINTS", "text": "TEXT_VIEW_FACING"}

PARAMETERS = {
    "family": "grasp",         # task family that offers the scene (or my_pkg.module:FAMILY)
    "task": "cube",            # a task of the family (grasp: an object of tasks.grasp.OBJECTS)
    "seed": 0,                 # seed of the first episode; ~/reset takes the next
    "rate_hz": 0.0,            # control periods per second; 0: the task's rate (30 Hz)
    "command_topic": "/forward_command_controller/commands",
    "command_names": None,     # controller order of unlabelled commands; the family's
    "frame_id": "world",
    "point_cloud_hz": 5.0,     # depth-camera point cloud on ~/points; 0: off
}


class SimRobot(ros.Node):
    """A family's pybullet scene driven by forward-controller commands."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sim_robot", **kwargs)
        self.declare_parameter("family", PARAMETERS["family"])
        self.family = get_family(self._p("family"), "sim_robot parameter family")
        if self.family.make_scene is None:
            raise ValueError(f"task family {self.family.name!r} offers no scene for sim_robot "
                             "(TaskFamily.make_scene); choose a family that does, e.g. grasp")
        self.act_names = list(self.family.act_spec.names)
        for name, default in PARAMETERS.items():
            if name != "family":
                self.declare_parameter(name, self.act_names if default is None else default)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.scene = self.family.make_scene(self._p("task"), self._p("seed"))
        self._types = {n: ros.get_interface(t) for n, t in (
            ("joint_state", "sensor_msgs/msg/JointState"),
            ("array", "std_msgs/msg/Float64MultiArray"),
            ("pose", "geometry_msgs/msg/PoseStamped"),
            ("bool", "std_msgs/msg/Bool"),
            ("marker", "visualization_msgs/msg/Marker"),
            ("markers", "visualization_msgs/msg/MarkerArray"),
            ("diag", "diagnostic_msgs/msg/DiagnosticArray"),
            ("cloud", "sensor_msgs/msg/PointCloud2"),
            ("field", "sensor_msgs/msg/PointField"))}
        t = self._types
        self._pubs = {
            "joint_states": self.create_publisher(t["joint_state"], "joint_states", ros.DEFAULT),
            "features": self.create_publisher(t["array"], "~/features", ros.DEFAULT),
            "object_pose": self.create_publisher(t["pose"], "~/object_pose", ros.DEFAULT),
            "success": self.create_publisher(t["bool"], "~/success", ros.DEFAULT),
            "markers": self.create_publisher(t["markers"], "~/markers", ros.DEFAULT),
            "diagnostics": self.create_publisher(t["diag"], "/diagnostics", ros.DEFAULT),
            "points": self.create_publisher(t["cloud"], "~/points", ros.SENSOR_DATA),
        }
        self.create_subscription(t["array"], self._p("command_topic"), self._on_command,
                                 ros.DEFAULT)
        self.create_service(ros.get_interface("std_srvs/srv/Trigger"), "~/reset", self._on_reset)
        rate = self._p("rate_hz") or self.family.control_rate_hz
        self.create_timer(1.0 / rate, self._step)
        self.create_timer(1.0, self._publish_diagnostics)
        if self._p("point_cloud_hz") > 0:
            self.create_timer(1.0 / self._p("point_cloud_hz"), self._publish_points)
        self.commands = 0
        self.get_logger().info(f"sim_robot: {self.scene.task} at {rate:g} Hz, commands on "
                               f"{self.resolve_topic_name(self._p('command_topic'))}")

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _on_set_parameters(self, params: list) -> Any:
        for param in params:
            if param.name in ("family", "task", "command_topic", "rate_hz", "point_cloud_hz"):
                return ros.set_parameters_result(
                    False, f"{param.name} is fixed while running: restart sim_robot to change it")
            if param.name == "command_names" and not set(param.value) <= set(self.act_names):
                return ros.set_parameters_result(
                    False, f"command_names must be elements of {self.act_names}, "
                    f"got {param.value}")
        return ros.set_parameters_result(True)

    def _on_command(self, msg: Any) -> None:
        names = array_labels(msg) or self._p("command_names")
        try:
            self.scene.set_command(names, msg.data)
        except ValueError as err:
            self.get_logger().warn(f"command ignored: {err}")
            return
        self.commands += 1

    def _on_reset(self, request: Any, response: Any) -> Any:
        seed = self.scene.reset()
        response.success = True
        response.message = f"reset: task {self.scene.task}, seed {seed}"
        self.get_logger().info(response.message)
        return response

    def _step(self) -> None:
        was_success = self.scene.success
        self.scene.step()
        if self.scene.success and not was_success:
            message, _ = self.scene.status()
            self.get_logger().info(f"success: {self.scene.task}: {message}, "
                                   f"{self.scene.steps} steps into episode seed "
                                   f"{self.scene.seed}")
        self._publish_state()

    def _publish_state(self) -> None:
        t, stamp = self._types, self.get_clock().now().to_msg()
        names, positions, velocities = self.scene.joint_state()
        joint_state = t["joint_state"](name=list(names), position=list(positions),
                                       velocity=list(velocities))
        joint_state.header.stamp = stamp
        self._pubs["joint_states"].publish(joint_state)
        self._pubs["features"].publish(labelled_array(*self.scene.features()))
        if hasattr(self.scene, "object_pose"):
            position, quat, _ = self.scene.object_pose()
            pose = t["pose"]()
            pose.header.stamp, pose.header.frame_id = stamp, self._p("frame_id")
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = position
            o = pose.pose.orientation
            o.x, o.y, o.z, o.w = quat
            self._pubs["object_pose"].publish(pose)
        self._pubs["success"].publish(t["bool"](data=self.scene.success))
        self._pubs["markers"].publish(self._markers(stamp))

    def _publish_points(self) -> None:
        points = self.scene.point_cloud()
        if points is None:
            return
        field = self._types["field"]
        axes = ("x", "y", "z", "label")[:points.shape[1]]
        cloud = self._types["cloud"](
            height=1, width=len(points), is_bigendian=False, point_step=4 * len(axes),
            row_step=4 * len(axes) * len(points), is_dense=True,
            fields=[field(name=axis, offset=4 * i, datatype=field.FLOAT32, count=1)
                    for i, axis in enumerate(axes)],
            data=np.ascontiguousarray(points, dtype="<f4").tobytes())
        cloud.header.stamp = self.get_clock().now().to_msg()
        cloud.header.frame_id = self._p("frame_id")
        self._pubs["points"].publish(cloud)

    def _markers(self, stamp: Any) -> Any:
        """The scene's `Shape` list as a ``visualization_msgs/MarkerArray``."""
        marker_type, point_type = self._types["marker"], ros.get_interface(
            "geometry_msgs/msg/Point")
        markers = []
        for shape in self.scene.shapes():
            m = marker_type(ns=shape.ns, id=shape.id, action=marker_type.ADD,
                            type=getattr(marker_type, MARKER_TYPES[shape.kind]))
            m.header.stamp, m.header.frame_id = stamp, self._p("frame_id")
            m.pose.position.x, m.pose.position.y, m.pose.position.z = map(
                float, shape.position)
            o = m.pose.orientation
            o.x, o.y, o.z, o.w = map(float, shape.orientation)
            m.scale.x, m.scale.y, m.scale.z = map(float, shape.scale)
            m.color.r, m.color.g, m.color.b, m.color.a = map(float, shape.color)
            m.points = [point_type(x=float(x), y=float(y), z=float(z))
                        for x, y, z in shape.points]
            m.text = shape.text
            markers.append(m)
        return self._types["markers"](markers=markers)

    def _publish_diagnostics(self) -> None:
        message, values = self.scene.status()
        self._pubs["diagnostics"].publish(diagnostic_array(
            self, f"sim_robot: {self.family.name} scene", "OK", message,
            self.get_fully_qualified_name(), {**values, "commands": self.commands}))


def main(args: Optional[list] = None) -> None:
    """Run the sim robot until interrupted."""
    ros.init(args)
    node = SimRobot()
    try:
        ros.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.scene.close()
        node.destroy_node()
        ros.shutdown()


if __name__ == "__main__":
    main()
