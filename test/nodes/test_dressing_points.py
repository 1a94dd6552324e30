"""policy_inference's points group from a PointCloud2 equals what training computes.

Training: `DressingEnv` renders the labelled cloud and preprocesses it (crop, voxel per label,
fixed N; `runtime.pointcloud`). The node: the same cloud arrives as a ``PointCloud2`` over
real DDS and `InputWiring` builds the group with the settings the policy's ``points`` group
carries (`spec.Group.preprocess`). Both must give the same array, bit for bit.
"""

import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("open3d", reason="open3d is not installed: pip install "
                    "'distill_ros[pointcloud]'")

from distill_ros.export.metadata import PolicyMetadata  # noqa: E402
from distill_ros.runtime.observation import (  # noqa: E402
    GroupStore, ObservationAssembler, points_from_cloud)
from distill_ros.runtime.pointcloud import cloud_config, preprocess_group  # noqa: E402
from distill_ros.runtime.supervisor import Supervisor  # noqa: E402
from distill_ros.spec import Group, Spec  # noqa: E402
from distill_ros.tasks.dressing.camera import CLOUD, Camera  # noqa: E402
from distill_ros.tasks.dressing.env import DressingEnv  # noqa: E402
from distill_ros.tasks.dressing.expert import expert_action  # noqa: E402
from distill_ros.tasks.dressing.family import ACT_SPEC, obs_groups  # noqa: E402
from distill_ros.tasks.dressing.garments import CACHE_ENV  # noqa: E402

TOPIC = "/dressing_test/points"


@pytest.fixture(scope="module", autouse=True)
def garment_cache(tmp_path_factory):
    """Garment meshes go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("garments")))
        yield


def test_the_points_settings_travel_with_the_policy():
    groups = obs_groups()
    points = groups.group("points")
    assert cloud_config(points) == CLOUD            # the env's camera cloud, N included
    meta = PolicyMetadata(groups, ACT_SPEC, 10.0, "dressing")
    back = PolicyMetadata.from_props(meta.to_props(), "test").obs
    assert back == groups and cloud_config(back.group("points")) == CLOUD
    with pytest.raises(ValueError, match="group_from_cloud"):   # no silent plain selection
        points_from_cloud(points, [], 16, b"", 0)
    # the pipeline's DAgger student is built on the family's groups: it keeps the settings
    from distill_ros.distill.dagger.envs import group_spec
    from distill_ros.tasks.base import get_family

    family = get_family("dressing")
    dagger = group_spec({"points": (256, 4), "proprio": (7,)}, family.obs_spec,
                        family.obs_groups)
    assert dagger.group("points") == obs_groups(256).group("points")
    assert dagger.group("proprio") == groups.group("proprio")
    plain = Group("points", "points", Spec(("x", "y", "z", "label")), length=8)
    assert "preprocess" not in plain.to_dict()      # older layouts serialise as before
    with pytest.raises(ValueError, match="preprocess is for points groups"):
        Group("proprio", "vector", Spec(("a",)), preprocess={"voxel_size": 0.01})
    with pytest.raises(ValueError, match="voxel"):
        Group("points", "points", Spec(("x", "y", "z", "label")), length=8,
              preprocess={"voxel": 0.01})
    with pytest.raises(ValueError, match="channels x, y, z, label"):
        preprocess_group(np.zeros((3, 4)), Group("p", "points", Spec(("x", "y", "z", "l")),
                                                 length=8, preprocess={"voxel_size": 0.01}))


def test_a_node_imports_open3d_when_it_wires_the_cloud_not_on_the_first_cloud():
    code = ("import sys; from distill_ros.runtime.pointcloud import prepare_group; "
            "from distill_ros.spec import Group, Spec; "
            "from distill_ros.tasks.dressing.family import obs_groups; "
            "prepare_group(Group('p', 'points', Spec(('x', 'y', 'z', 'label')), length=8)); "
            "print('open3d' in sys.modules); "
            "prepare_group(obs_groups().group('points')); print('open3d' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"], out.stdout


def _cloud_message(ros, points: np.ndarray, order: tuple[str, ...], pad: int):
    """A PointCloud2 of `points` (x, y, z, label) with fields in `order` and `pad` bytes."""
    field = ros.get_interface("sensor_msgs/msg/PointField")
    step = 4 * len(order) + pad
    table = np.zeros(len(points), np.dtype({
        "names": list(order), "formats": ["<f4"] * len(order),
        "offsets": [4 * i for i in range(len(order))], "itemsize": step}))
    for name in order:
        table[name] = points[:, "xyzl".index(name[0])]
    return ros.get_interface("sensor_msgs/msg/PointCloud2")(
        height=1, width=len(points), point_step=step, row_step=step * len(points),
        is_dense=True, data=table.tobytes(),
        fields=[field(name=n, offset=4 * i, datatype=field.FLOAT32, count=1)
                for i, n in enumerate(order)])


def _training_cloud(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(the points group training computes, the raw labelled cloud it came from)."""
    env = DressingEnv("f2e1", groups=("state", "points"), camera=camera)
    try:
        obs, _ = env.reset(seed=3)
        for _ in range(8):        # the sleeve on the hand: both labels in view, cloth moved
            obs, *_ = env.step(expert_action(obs["state"]))
        return obs["points"], env.point_cloud()
    finally:
        env.close()


@pytest.mark.parametrize("camera", [Camera(), Camera(width=400, height=300)],
                         ids=["camera", "denser_camera"])
def test_node_builds_the_group_training_computes(tester, camera):
    from distill_ros.nodes.inference_inputs import InputWiring

    ros = tester.ros
    trained, raw = _training_cloud(camera)
    # the family's camera sees fewer points than N (the rows repeat); the denser one more,
    # so voxel averaging and farthest-point sampling run too
    assert trained.shape == (CLOUD.n_points, 4) and len(raw) > 300
    assert len(np.unique(trained, axis=0)) == min(len(raw), CLOUD.n_points)
    groups = obs_groups()
    store = GroupStore()
    sup = Supervisor(ObservationAssembler({}, []), lambda command: None, groups=store)
    node = ros.Node(f"dressing_points_test_{camera.width}")
    spin = ros.spin_in_background(node)
    try:
        wiring = InputWiring(node, sup, groups, lambda: None, None)
        wiring.cloud("points", TOPIC)
        publisher = tester.publisher("sensor_msgs/msg/PointCloud2", TOPIC, ros.SENSOR_DATA)
        # the camera's layout, then the same points with the fields shuffled and padded
        for order, pad in ((("x", "y", "z", "label"), 0), (("label", "z", "x", "y"), 4)):
            store.clear()
            message = _cloud_message(ros, raw, order, pad)
            deadline = time.monotonic() + 20.0
            while not store.assemble(["points"])[0] and time.monotonic() < deadline:
                publisher.publish(message)
                time.sleep(0.1)
            built = store.assemble(["points"])[0].get("points")
            assert built is not None, f"no cloud reached the node in 20 s ({order})"
            assert built.dtype == np.float32 and np.array_equal(built, trained), (
                order, np.abs(built - trained).max())
        assert sup.counts.inputs_rejected == 0
    finally:
        spin.stop()
        node.destroy_node()
