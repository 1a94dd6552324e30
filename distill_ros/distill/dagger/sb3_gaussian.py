"""The action distribution of an SB3 teacher (PPO or SAC) as a diagonal Gaussian, physical units.

PPO's policy is a diagonal Gaussian in its action space. SAC's is a Gaussian squashed by
tanh into [-1, 1]; we report its image by the delta method: mean tanh(μ) and std
σ·(1 − tanh²(μ)), then unscale to physical units as SB3 does. The mean is clipped to the
action limits, so it equals the teacher's deterministic action (`SB3Teacher.act`).
"""

from __future__ import annotations

import numpy as np
import torch

CLIP_OBS = 10.0  # as the teacher's VecNormalize (distill_ros.teachers.sb3)


@torch.no_grad()
def sb3_distribution(teacher, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std), each (B, act_dim), of `teacher` (an `SB3Teacher`) at raw `obs`."""
    obs = np.asarray(obs, np.float32)
    if teacher.obs_mean is not None:
        obs = np.clip((obs - teacher.obs_mean) / np.sqrt(teacher.obs_var + 1e-8),
                      -CLIP_OBS, CLIP_OBS).astype(np.float32)
    policy = teacher.model.policy
    x, _ = policy.obs_to_tensor(obs)
    space = teacher.model.action_space
    if hasattr(policy, "actor"):                        # SAC: tanh-squashed Gaussian
        mu, log_std, _ = policy.actor.get_action_dist_params(x)
        squashed = torch.tanh(mu)
        mean = squashed.numpy()
        std = (torch.exp(log_std) * (1.0 - squashed ** 2)).numpy()
        low, high = space.low, space.high               # SB3 unscales [-1, 1] to its space
        mean = low + (mean + 1.0) * 0.5 * (high - low)
        std = std * 0.5 * (high - low)
    else:                                               # PPO: Gaussian in its action space
        dist = policy.get_distribution(x).distribution
        mean, std = dist.mean.numpy(), dist.stddev.numpy()
    if teacher.normalized:                              # [-1, 1] model -> physical units
        span = teacher.high - teacher.low
        mean = teacher.low + (mean + 1.0) * 0.5 * span
        std = std * 0.5 * span
    mean = np.clip(mean, teacher.low, teacher.high)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)
