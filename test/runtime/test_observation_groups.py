"""Groups from message parts: PointCloud2 decoding, fixed-N selection, masked commands."""

import numpy as np
import pytest

from distill_ros.runtime.observation import (GroupStore, command_from_arrays, points_from_cloud,
                                             select_points)
from distill_ros.spec import Group, Spec

CLOUD = Group("cloud", "points", Spec(("x", "y", "z", "label")), 8)
CMD = Group("cmd", "command", Spec(("vx", "vy", "yaw")))
# x, y, z float32 at 0, 4, 8; 4 bytes of padding; label uint8 at 16; point_step 20
FIELDS = [{"name": "x", "offset": 0, "datatype": 7, "count": 1},
          {"name": "y", "offset": 4, "datatype": 7, "count": 1},
          {"name": "z", "offset": 8, "datatype": 7, "count": 1},
          {"name": "label", "offset": 16, "datatype": 2, "count": 1}]
DTYPE = np.dtype({"names": ["x", "y", "z", "label"], "formats": ["<f4", "<f4", "<f4", "u1"],
                  "offsets": [0, 4, 8, 16], "itemsize": 20})


def _cloud(n, seed=0):
    rng = np.random.default_rng(seed)
    table = np.zeros(n, DTYPE)
    for c in "xyz":
        table[c] = rng.normal(size=n)
    table["label"] = rng.integers(0, 2, n)
    points = np.stack([table[c].astype(np.float32) for c in DTYPE.names], axis=1)
    return table.tobytes(), points


def test_cloud_bytes_decode_by_field_name_in_channel_order():
    data, points = _cloud(8)
    got = points_from_cloud(CLOUD, FIELDS[::-1], 20, data, width=8)   # field order irrelevant
    np.testing.assert_array_equal(got, points)
    xyz = Group("xyz", "points", Spec(("z", "x")), 8)
    np.testing.assert_array_equal(points_from_cloud(xyz, FIELDS, 20, data, 8), points[:, [2, 0]])


def test_real_pointfield_messages_and_big_endian_and_row_padding():
    from rosbags.typesys.stores.ros2_humble import sensor_msgs__msg__PointField as PointField

    fields = [PointField(f["name"], f["offset"], f["datatype"], 1) for f in FIELDS]
    _, points = _cloud(8, seed=1)
    big = np.zeros(8, DTYPE.newbyteorder(">"))
    for i, c in enumerate(DTYPE.names):
        big[c] = points[:, i]
    rows = big.reshape(2, 4)    # organised 2 x 4 cloud, 8 bytes of padding after each row
    data = b"".join(r.tobytes() + b"\0" * 8 for r in rows)
    got = points_from_cloud(CLOUD, fields, 20, data, width=4, height=2, row_step=88,
                            is_bigendian=True)
    np.testing.assert_array_equal(got, points)


def test_fixed_n_selection_is_deterministic_and_drops_nan_points():
    pts = np.arange(20, dtype=np.float32).reshape(10, 2)
    np.testing.assert_array_equal(select_points(pts, 4)[:, 0], [0, 4, 10, 14])   # strided
    np.testing.assert_array_equal(select_points(pts[:3], 7)[:, 0], [0, 2, 4, 0, 2, 4, 0])
    data, points = _cloud(12, seed=2)
    table = np.frombuffer(data, DTYPE).copy()
    table["x"][[1, 5]] = np.nan                                  # "no return" points
    got = points_from_cloud(CLOUD, FIELDS, 20, table.tobytes(), width=12)
    valid = np.delete(points, [1, 5], axis=0)
    np.testing.assert_array_equal(got, select_points(valid, 8))
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("fields, data, width, text", [
    (FIELDS[:3], _cloud(8)[0], 8, r"group 'cloud': the point cloud lacks field\(s\) \['label'\]"),
    (FIELDS, _cloud(8)[0][:100], 8, "group 'cloud': the cloud has 100 bytes"),
    (FIELDS, b"", 0, "group 'cloud': the point cloud has no valid points"),
    ([*FIELDS[:3], {**FIELDS[3], "datatype": 9}], _cloud(8)[0], 8, "field 'label' has datatype 9"),
])
def test_bad_clouds_name_the_group(fields, data, width, text):
    with pytest.raises(ValueError, match=text):
        points_from_cloud(CLOUD, fields, 20, data, width)


def test_command_arrays_checked_and_masked_values_zeroed():
    got = command_from_arrays(CMD, [0.5, np.nan, 2.0], [1, 0, 1])
    np.testing.assert_array_equal(got["cmd"], [0.5, 0.0, 2.0])
    np.testing.assert_array_equal(got["cmd_mask"], [1, 0, 1])
    assert got["cmd"].dtype == np.float32
    with pytest.raises(ValueError, match=r"group 'cmd': command has 2 values and 3 mask"):
        command_from_arrays(CMD, [0.5, 1.0], [1, 0, 1])
    with pytest.raises(ValueError, match="group 'cmd': the mask must hold only 0 and 1"):
        command_from_arrays(CMD, [0.5, 1.0, 2.0], [1, 0.5, 1])
    with pytest.raises(ValueError, match="group 'cmd': commanded values must be finite"):
        command_from_arrays(CMD, [np.inf, 1.0, 2.0], [1, 0, 1])


def test_group_store_reports_arrival_times():
    store = GroupStore()
    assert store.assemble([]) == ({}, np.inf, -np.inf)
    store.update("cmd", command_from_arrays(CMD, [1, 2, 3], [1, 1, 0]), stamp=5.0)
    arrays, oldest, newest = store.assemble(["cmd", "cloud"])
    assert set(arrays) == {"cmd", "cmd_mask"} and oldest == -np.inf and newest == 5.0
    assert store.never_received(["cmd", "cloud"]) == ["cloud"]
    store.update("cloud", {"cloud": np.zeros((8, 4), np.float32)}, stamp=7.0)
    assert store.assemble(["cmd", "cloud"])[1:] == (5.0, 7.0)
    store.clear()
    assert store.never_received(["cmd"]) == ["cmd"]
