"""A gymnasium environment reproducing DeepMimic's humanoid imitation task (Peng et al. 2018).

One control step holds 36 PD targets for `sim_hz / control_hz` physics steps (240 Hz / 30 Hz),
then returns the 197-value state and the imitation reward at the new time. Episodes start in a
random state of the clip (reference-state initialisation), end on a fall (a link of
`FALL_CONTACT_LINKS`, every link but the feet, touches the ground) and are truncated after
`max_seconds` of simulated time. Actions are not clipped to the action space, as in DeepMimic.
An episode that reaches the time limit without a fall is a success (`info["is_success"]`);
each step's info also holds HOVER's tracking errors (`imitation.tracking_errors`).

`reward_variant="deepmimic"` (default) compares joint velocities with the clip's, as DeepMimic
does; `"pybullet"` compares them with zero, as pybullet's port does in effect.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.character import BodyState, KinematicHumanoid, SimHumanoid
from distill_ros.tasks.humanoid.commands import ReferenceFrames
from distill_ros.tasks.humanoid.imitation import (deepmimic_state, imitation_reward,
                                                  tracking_errors)
from distill_ros.tasks.humanoid.motion import MotionClip
from distill_ros.tasks.humanoid.skeleton import (ACTION_HIGH, ACTION_LOW, FALL_CONTACT_LINKS,
                                                 JOINTS, KEY_BODIES, STATE_DIM)

REWARD_VARIANTS = ("deepmimic", "pybullet")
RSI_STEPS = 1000  # start times are k / 1000 of a cycle, as DeepMimic's pybullet port draws them


def action_to_targets(action: np.ndarray) -> list[list[float]]:
    """36 action values -> PD targets: (angle, axis) -> quaternion, or a revolute angle."""
    targets, i = [], 0
    for joint in JOINTS:
        if joint.dof == 3:
            targets.append(quat.from_axis_angle(action[i + 1:i + 4], action[i]).tolist())
            i += 4
        else:
            targets.append([float(action[i])])
            i += 1
    return targets


class HumanoidImitationEnv(gym.Env):
    """Imitate one DeepMimic clip with the simulated humanoid."""

    metadata = {"render_modes": []}

    def __init__(self, clip: str | MotionClip = "walk", control_hz: int = 30, sim_hz: int = 240,
                 max_seconds: float = 20.0, com_reward: bool = False,
                 random_start: bool = True, reward_variant: str = "deepmimic") -> None:
        if reward_variant not in REWARD_VARIANTS:
            raise ValueError(f"reward_variant must be one of {REWARD_VARIANTS}, got "
                             f"{reward_variant!r}")
        if sim_hz % control_hz:
            raise ValueError(f"sim_hz ({sim_hz}) must be a multiple of control_hz "
                             f"({control_hz}), e.g. 240 and 30")
        self.clip = MotionClip.named(clip) if isinstance(clip, str) else clip
        self.control_hz, self.sim_hz = control_hz, sim_hz
        self.substeps = sim_hz // control_hz
        self.max_seconds, self.com_reward = max_seconds, com_reward
        self.random_start, self.reward_variant = random_start, reward_variant
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)
        self.action_space = gym.spaces.Box(np.array(ACTION_LOW, np.float32),
                                           np.array(ACTION_HIGH, np.float32))
        self.sim = SimHumanoid(1.0 / sim_hz)
        self.kin = KinematicHumanoid()
        self.time = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start at `options["start_time"]` (s) or a random time of the clip (RSI).

        `options["yaw"]` (rad) starts the character turned by that much about the vertical
        off the clip's heading (its velocities turned with it), e.g. to check steering.
        """
        super().reset(seed=seed)
        options = options or {}
        if "start_time" in options:
            self.time = float(options["start_time"])
        elif self.random_start:
            k = int(self.np_random.integers(0, RSI_STEPS + 1))
            self.time = k / RSI_STEPS * self.clip.cycle_time
        else:
            self.time = 0.0
        pose = self.clip.pose(self.time)
        if options.get("yaw"):
            turn = quat.yaw_quat(float(options["yaw"]))
            pose = dataclasses.replace(pose, root_rot=quat.mul(turn, pose.root_rot),
                                       root_lin_vel=quat.rotate(turn, pose.root_lin_vel),
                                       root_ang_vel=quat.rotate(turn, pose.root_ang_vel))
        self.sim.reset(pose)
        return self._observe(), {"time": self.time, "phase": self.clip.phase(self.time)}

    def _observe(self, body: BodyState | None = None) -> np.ndarray:
        body = self.sim.read() if body is None else body
        return deepmimic_state(body, self.clip.phase(self.time)).astype(np.float32)

    def fallen(self) -> bool:
        """Whether a link that must not touch the ground does."""
        return bool(self.sim.ground_contacts() & set(FALL_CONTACT_LINKS))

    def step(self, action):
        """Hold the PD targets for one control period; reward at the new time."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (len(ACTION_LOW),):
            raise ValueError(f"action must have shape ({len(ACTION_LOW)},), got {action.shape}")
        targets = action_to_targets(action)
        fell = False
        for _ in range(self.substeps):
            self.time += 1.0 / self.sim_hz
            self.sim.step(targets)
            if self.fallen():
                fell = True
                break
        body = self.sim.read()
        reward, info = self.reward(body)
        info.update(time=self.time, phase=self.clip.phase(self.time))
        truncated = not fell and self.time > self.max_seconds
        info["is_success"] = truncated
        return self._observe(body), reward, fell, truncated, info

    def reward(self, body: BodyState | None = None) -> tuple[float, dict[str, float]]:
        """Imitation reward of the character now (or of `body`) against the clip now."""
        body = self.sim.read() if body is None else body
        ref = self.clip.pose(self.time)
        if self.reward_variant == "pybullet":
            # pybullet's port reads the reference joint velocities back from its kinematic
            # body, where they are always zero; this variant reproduces that.
            ref = dataclasses.replace(ref, joint_vel=[np.zeros_like(v) for v in ref.joint_vel])
        ref_pos, ref_vel = self.kin.links(ref)
        com_err = None
        if self.com_reward:
            m = self.sim.link_masses / self.sim.link_masses.sum()
            if self.reward_variant == "pybullet":
                ref_com_vel = np.zeros(3)  # its kinematic body reads as still
            else:
                ref_com_vel = m @ ref_vel
            com_err = float(np.sum((m @ body.link_lin_vel - ref_com_vel) ** 2))
        reward, info = imitation_reward(body, ref, ref_pos, com_err)
        info.update(tracking_errors(body, ref, ref_pos))
        return reward, info

    def reference_frames(self, steps: int, bodies: set[int] | None = None) -> ReferenceFrames:
        """The clip now and at the next `steps` control steps (see `reference_frames`)."""
        return reference_frames(self.clip, self.kin, self.time, steps, self.control_hz, bodies)

    def close(self) -> None:
        """Disconnect both physics clients."""
        self.sim.close()
        self.kin.close()


def reference_frames(clip: MotionClip, kin: KinematicHumanoid, time: float, steps: int,
                     control_hz: float, bodies: set[int] | None = None) -> ReferenceFrames:
    """`clip` at `time` (s) and the next `steps` control steps: HOVER's command source.

    `kin` poses the clip's character for the key-body positions; `bodies` names the frames
    that need them (default all; the others are NaN, which saves a forward-kinematics pass
    each). A command publisher runs this with no simulated character at all.
    """
    poses = [clip.pose(time + k / control_hz) for k in range(steps + 1)]
    links = [int(link) for link, _ in KEY_BODIES.values()]
    body_pos = np.full((len(poses), len(links), 3), np.nan)
    for k, p in enumerate(poses):
        if bodies is None or k in bodies:
            body_pos[k] = kin.links(p)[0][links]
    return ReferenceFrames(
        root_pos=np.array([p.root_pos for p in poses]),
        root_rot=np.array([p.root_rot for p in poses]),
        root_lin_vel=np.array([p.root_lin_vel for p in poses]),
        root_ang_vel=np.array([p.root_ang_vel for p in poses]),
        joint_rot=[np.array([p.joint_pos[i] for p in poses]) for i in range(len(JOINTS))],
        body_pos=body_pos)


def rollout(env: HumanoidImitationEnv, policy, start_time: float,
            steps: int) -> tuple[list[float], bool]:
    """Run `policy` (state -> action) from `start_time` for up to `steps` control steps.

    Returns the imitation reward of each step and whether the character fell.
    """
    obs, _ = env.reset(options={"start_time": start_time})
    rewards, fell = [], False
    for _ in range(steps):
        obs, reward, fell, truncated, _ = env.step(policy(obs))
        rewards.append(reward)
        if fell or truncated:
            break
    return rewards, fell
