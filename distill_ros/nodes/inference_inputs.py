"""The inputs of policy_inference: one subscription per source, each feeding the supervisor.

Sources, all chosen by name (parameters in ``inference_parameters``):

* ``joint_states_topic``: ``sensor_msgs/JointState`` positions of mapped joints;
* ``array_topics``: labelled ``std_msgs/Float64MultiArray`` elements;
* ``points_groups`` (``"group:topic"``): a ``sensor_msgs/PointCloud2`` (x, y, z and optional
  label fields, as the group's channels name them) is the whole ``points`` group, after the
  group's own preprocessing when it has one (crop, voxels, N: as in training);
* ``command_groups`` (``"group:values_topic:mask_topic"``): two ``Float64MultiArray`` give a
  ``command`` group's values and its 0/1 mask; the latest of each are paired.

A malformed message is dropped and reported by the supervisor, naming its topic.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from distill_ros import ros
from distill_ros.nodes.command_output import array_labels
from distill_ros.runtime.observation import command_from_arrays
from distill_ros.runtime.pointcloud import group_from_cloud, prepare_group
from distill_ros.runtime.supervisor import Supervisor


def parse_sources(entries: Sequence[str], key: str, parts: int) -> list[tuple[str, ...]]:
    """``["points:/camera/points"]`` -> ``[("points", "/camera/points")]`` (``parts`` each)."""
    out = []
    for entry in entries:
        if not entry:
            continue
        fields = tuple(f.strip() for f in entry.split(":"))
        if len(fields) != parts or not all(fields):
            form = ("'group:topic'" if parts == 2 else "'group:values_topic:mask_topic'")
            raise ValueError(f"{key} entries look like {form}, got {entry!r}")
        out.append(fields)
    return out


class InputWiring:
    """Subscribes a node's inputs and hands each message to a supervisor.

    Args:
        node: the node that owns the subscriptions.
        sup: receives the inputs.
        groups: the policy's observation groups (``None`` for a flat policy).
        on_trigger: called after the trigger topic delivered a well-formed message.
        trigger_topic: the topic that triggers a compute (``None``: timer mode).
    """

    def __init__(self, node: Any, sup: Supervisor, groups: Any,
                 on_trigger: Callable[[], None], trigger_topic: Optional[str]) -> None:
        self.node, self.sup, self.groups = node, sup, groups
        self.on_trigger, self.trigger_topic = on_trigger, trigger_topic
        self.entities: list = []

    def wire(self, joint_topic: str, array_topics: Sequence[str],
             clouds: Sequence[tuple[str, str]],
             commands: Sequence[tuple[str, str, str]]) -> None:
        """Subscribe every source (``entities`` keeps those made, even if one fails)."""
        self.joints(joint_topic)
        for topic in array_topics:
            self.array(topic)
        for name, topic in clouds:
            self.cloud(name, topic)
        for name, values, mask in commands:
            self.command(name, values, mask)

    def _subscribe(self, interface: str, topic: str, store: Callable[[Any], bool]) -> None:
        triggers, on_trigger = topic == self.trigger_topic, self.on_trigger

        def on_message(msg: Any) -> None:
            if store(msg) and triggers:
                on_trigger()
        self.entities.append(self.node.create_subscription(
            ros.get_interface(interface), topic, on_message, ros.SENSOR_DATA))

    def joints(self, topic: str) -> None:
        """Positions of mapped joints from a JointState topic."""
        sup = self.sup
        self._subscribe("sensor_msgs/msg/JointState", topic,
                        lambda m: sup.update_joints(m.name, m.position, topic))

    def array(self, topic: str) -> None:
        """Labelled elements from a Float64MultiArray topic."""
        sup = self.sup
        self._subscribe("std_msgs/msg/Float64MultiArray", topic,
                        lambda m: sup.update_array(array_labels(m), m.data, topic))

    def cloud(self, name: str, topic: str) -> None:
        """A ``points`` group from a PointCloud2 topic."""
        group, sup = self._group(name, "points", "points_groups"), self.sup
        prepare_group(group)  # open3d imported now, not on the first cloud of the loop
        self._subscribe("sensor_msgs/msg/PointCloud2", topic, lambda m: sup.update_group(
            name, lambda: {name: group_from_cloud(
                group, m.fields, m.point_step, m.data, m.width, m.height, m.row_step,
                m.is_bigendian)}, topic))

    def command(self, name: str, values_topic: str, mask_topic: str) -> None:
        """A ``command`` group from a values topic and a mask topic (latest of each)."""
        group, sup, latest = self._group(name, "command", "command_groups"), self.sup, {}

        def store(part: str, topic: str) -> Callable[[Any], bool]:
            def update(msg: Any) -> bool:
                latest[part] = msg.data
                return len(latest) == 2 and sup.update_group(name, lambda: command_from_arrays(
                    group, latest["values"], latest["mask"]), topic)
            return update
        self._subscribe("std_msgs/msg/Float64MultiArray", values_topic, store("values",
                                                                              values_topic))
        self._subscribe("std_msgs/msg/Float64MultiArray", mask_topic, store("mask", mask_topic))

    def _group(self, name: str, kind: str, key: str) -> Any:
        known = [g.name for g in self.groups.groups] if self.groups is not None else []
        if name not in known or self.groups.group(name).kind != kind:
            raise ValueError(f"{key} names group {name!r}, but the policy's {kind} groups are "
                             f"{[g for g in known if self.groups.group(g).kind == kind]}")
        return self.groups.group(name)
