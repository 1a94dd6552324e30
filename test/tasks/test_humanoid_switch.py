"""A mode switch mid-episode (full command -> head and hands -> full) does not make a
DAgger-trained student fall on walk.

The student (`humanoid_students.walk_student`) is trained by DAgger from the shipped walk
expert, with episodes that draw `full` or `head_hands` and switch between them about every
2 s. It then walks 10 s from two starts, the mode pinned
to `full`, then `head_hands`, then `full` again.
"""

import numpy as np
import pytest

from distill_ros.tasks.humanoid.hover import GROUPS
from humanoid_students import walk_student  # noqa: F401 - the session fixture

SCHEDULE = ((0, "full"), (100, "head_hands"), (200, "full"))  # control step -> mode
STUDENT_INPUTS = ("proprio", "command", "command_mask")


# not marked slow: the walk student takes ~30 s to train, but this is the issue's
# mode-switch check, so the default run keeps it (the ROS loop version is slow)
@pytest.mark.parametrize("start_time", [0.0, 0.4])
def test_switching_full_to_hands_only_and_back_does_not_fall_on_walk(
        walk_student, start_time):  # noqa: F811 - the fixture
    family, student = walk_student
    env = family.make("walk", groups=GROUPS)
    obs, _ = env.reset(seed=0, options={"start_time": start_time, "mode": "full"})
    schedule = dict(SCHEDULE)
    rewards, shown = {m: [] for m in ("full", "head_hands")}, []
    for step in range(300):
        shown.append(int(obs["command_mask"].sum()))
        action = student.act({k: obs[k][None] for k in STUDENT_INPUTS})[0]
        if step + 1 in schedule:  # the next observation shows the new mode
            env.set_mode(schedule[step + 1])
        obs, reward, fell, truncated, info = env.step(action)
        assert not fell, f"fell at step {step} in mode {info['mode']} (start {start_time})"
        rewards[info["mode"]].append(reward)
    env.close()
    assert shown[99] == 51 and shown[100] == 9 and shown[200] == 51, "the mask did not switch"
    for mode, values in rewards.items():
        assert np.mean(values) > 0.4, f"{mode}: mean imitation reward {np.mean(values):.2f}"
