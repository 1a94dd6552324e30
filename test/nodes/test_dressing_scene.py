"""The dressing scene: ROS-free as sim_robot sees it, then sim_robot running it in a process."""

import time

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("open3d", reason="open3d is not installed: pip install "
                    "'distill_ros[pointcloud]'")

from conftest import REPO  # noqa: E402
from distill_ros.tasks.base import get_family  # noqa: E402
from distill_ros.tasks.dressing.camera import ARM_LABEL, GARMENT_LABEL  # noqa: E402
from distill_ros.tasks.dressing.env import SUCCESS_RATIO  # noqa: E402
from distill_ros.tasks.dressing.expert import expert_action  # noqa: E402
from distill_ros.tasks.dressing.family import ACT_SPEC, OBS_SPEC  # noqa: E402
from distill_ros.tasks.dressing.garments import CACHE_ENV  # noqa: E402

SIM_PARAMS = REPO / "config" / "dressing_sim_robot_params.yaml"


@pytest.fixture(scope="module", autouse=True)
def garment_cache(tmp_path_factory):
    """Garment meshes go to a temporary cache (node processes inherit it), not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("garments")))
        yield


def state_by_name(scene) -> np.ndarray:
    """The privileged state rebuilt from what sim_robot publishes: joints and features."""
    names, positions, _ = scene.joint_state()
    labels, values = scene.features()
    named = {**dict(zip(names, positions)), **dict(zip(labels, values))}
    return np.array([named[n] for n in OBS_SPEC.names])


def test_scene_publishes_the_state_by_name_and_the_expert_dresses_through_it():
    scene = get_family("dressing").make_scene("f1e1", 4)
    try:
        assert scene.seed == 4 and scene.steps == 0 and not scene.success
        assert np.allclose(state_by_name(scene), scene.state, atol=1e-6)
        cloud = scene.point_cloud()
        assert cloud.dtype == np.float32 and cloud.shape[1] == 4 and len(cloud) > 500
        assert set(np.unique(cloud[:, 3])) == {ARM_LABEL, GARMENT_LABEL}
        with pytest.raises(ValueError, match="ee_vx"):
            scene.set_command(["ee_vx", "elbow"], [0.1, 0.2])
        with pytest.raises(ValueError, match="NaN"):
            scene.set_command(["ee_vz"], [float("nan")])
        start = scene.ratio
        for _ in range(60):   # the scripted expert, reading only what the topics carry
            scene.set_command(list(ACT_SPEC.names[::-1]),
                              expert_action(state_by_name(scene))[::-1])
            scene.step()
            if scene.success:
                break
        assert scene.success and scene.ratio >= SUCCESS_RATIO > start, (start, scene.ratio)
        shapes = {s.id: s for s in scene.shapes()}
        assert np.allclose(shapes[0].points, scene.env.polyline)            # hand -> shoulder
        ring = np.array(shapes[1].points)
        assert shapes[1].kind == "line_strip" and np.allclose(ring[0], ring[-1])
        assert np.allclose(ring[:-1].mean(axis=0), scene.env.key_points()[0], atol=1e-6)
        assert shapes[4].kind == "text" and shapes[4].text == f"dressed {100 * scene.ratio:.0f}%"
        message, values = scene.status()
        assert message.startswith("dressed: ratio") and values["success"] is True
        assert values["dressed_ratio"] == scene.ratio and values["steps"] == scene.steps
        assert scene.reset() == 5 and scene.steps == 0 and scene.ratio < SUCCESS_RATIO
    finally:
        scene.close()


def test_sim_robot_runs_the_dressing_scene(tester, start_node):
    ros = tester.ros
    joint_states = tester.record("sensor_msgs/msg/JointState", "/joint_states")
    features = tester.record("std_msgs/msg/Float64MultiArray", "/sim_robot/features")
    markers = tester.record("visualization_msgs/msg/MarkerArray", "/sim_robot/markers")
    diagnostics = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    points = tester.record("sensor_msgs/msg/PointCloud2", "/sim_robot/points",
                           ros.SENSOR_DATA)
    command = tester.publisher("std_msgs/msg/Float64MultiArray",
                               "/forward_command_controller/commands")
    sim = start_node("sim_robot", "--params-file", str(SIM_PARAMS))
    _, first = joint_states.wait_for(lambda m: True, 0, 30.0, f"joint_states\n{sim.log()}")
    assert list(first.name) == ["gripper_x", "gripper_y", "gripper_z"]
    _, feat = features.wait_for(lambda m: True, 0, 10.0, f"features\n{sim.log()}")
    labels = [d.label for d in feat.layout.dim]
    assert labels == [n for n in OBS_SPEC.names if n not in first.name], labels
    _, cloud = points.wait_for(lambda m: m.width > 0, 0, 20.0, f"a point cloud\n{sim.log()}")
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "label"] and cloud.point_step == 16
    xyzl = np.frombuffer(bytes(cloud.data), "<f4").reshape(-1, 4)
    assert len(xyzl) == cloud.width > 500 and cloud.header.frame_id == "world"
    assert set(np.unique(xyzl[:, 3])) == {ARM_LABEL, GARMENT_LABEL}
    _, array = markers.wait_for(lambda m: len(m.markers) == 5, 0, 10.0, f"markers\n{sim.log()}")
    by_id = {m.id: m for m in array.markers}
    assert by_id[0].type == by_id[0].LINE_STRIP and len(by_id[0].points) == 4
    assert by_id[4].type == by_id[4].TEXT_VIEW_FACING and by_id[4].text.startswith("dressed ")
    _, diag = diagnostics.wait_for(
        lambda m: any("dressing scene" in s.name for s in m.status), 0, 10.0,
        f"the scene's diagnostics\n{sim.log()}")
    values = {v.key: v.value for s in diag.status for v in s.values}
    assert {"dressed_ratio", "arm_force_n", "garment"} <= set(values), values

    from distill_ros.nodes.command_output import labelled_array
    z0 = joint_states.items[-1][1].position[2]
    moved = time.monotonic()
    while time.monotonic() - moved < 1.5:  # 0.1 m/s up, by name, in a shuffled order
        command.publish(labelled_array(["ee_wz", "ee_vz", "ee_vx", "ee_vy", "ee_wx", "ee_wy"],
                                       [0.0, 0.1, 0.0, 0.0, 0.0, 0.0]))
        time.sleep(0.05)
    z1 = joint_states.items[-1][1].position[2]
    assert z1 - z0 > 0.03, f"the gripper did not rise: {z0:.3f} -> {z1:.3f} m\n{sim.log()}"
