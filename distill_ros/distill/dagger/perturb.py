"""Perturbed starts for any family: a random push right after each reset.

After `reset`, the wrapper holds one action, drawn uniformly from the action space with the
env's own seeded RNG, for `push_steps` steps, then hands over. Policies then start from
states that teacher demonstrations from the family's own start distribution never visit:
the setting where DAgger's on-policy labels matter. Uses the gymnasium API only.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class RandomPush(gym.Wrapper):
    """Start every episode with `push_steps` steps of one random action (seeded by reset)."""

    def __init__(self, env: gym.Env, push_steps: int) -> None:
        super().__init__(env)
        if push_steps < 0:
            raise ValueError(f"push_steps must be >= 0, got {push_steps}")
        self.push_steps = push_steps

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset, then push; the info is the reset's (the push is part of the start)."""
        obs, info = self.env.reset(seed=seed, options=options)
        space = self.env.action_space
        low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        push = self.env.unwrapped.np_random.uniform(low, high).astype(space.dtype)
        for _ in range(self.push_steps):
            obs, _, terminated, truncated, _ = self.env.step(push)
            if terminated or truncated:
                raise ValueError(f"the episode ended during a {self.push_steps}-step push; "
                                 "use fewer push_steps than the episode length")
        return obs, info
