"""Action-chunk windows from rollout shards: (observation history, next H actions).

Diffusion Policy (Chi et al. 2023) conditions on the last `obs_history` frames and
predicts the next `horizon` actions. Windows never cross an episode: the history before
the first step repeats the first frame, and the chunk after the last step repeats the
last action (the policy "holds" at the end).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.distill.dataset import read_shard
from distill_ros.spec import Spec


def episode_windows(obs: np.ndarray, act: np.ndarray, obs_history: int,
                    horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """One episode (T, obs_dim), (T, act_dim) -> (T, obs_history*obs_dim), (T, H, act_dim)."""
    steps = len(obs)
    t = np.arange(steps)
    hist = np.clip(t[:, None] + np.arange(1 - obs_history, 1)[None, :], 0, steps - 1)
    ahead = np.clip(t[:, None] + np.arange(horizon)[None, :], 0, steps - 1)
    return obs[hist].reshape(steps, -1), act[ahead]


def load_windows(data_dir: Path, tasks: list[str], obs_spec: Spec, act_spec: Spec,
                 obs_history: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shard of `tasks` as windows: (obs history, action chunks, per-frame obs)."""
    hists, chunks, frames = [], [], []
    for task in tasks:
        shards = sorted((Path(data_dir) / task).glob("shard_*.npz"))
        if not shards:
            raise FileNotFoundError(f"no dataset shards in {Path(data_dir) / task}; run "
                                    "`distill-ros collect CONFIG` first")
        for shard in shards:
            d = read_shard(shard, obs_spec, act_spec)
            for ep in np.unique(d["episode"]):
                rows = d["episode"] == ep
                h, c = episode_windows(d["obs"][rows], d["act"][rows], obs_history, horizon)
                hists.append(h)
                chunks.append(c)
                frames.append(d["obs"][rows])
    if not hists:
        raise ValueError(f"the dataset in {data_dir} holds no steps: no demonstration "
                         "succeeded; check teachers/*/eval.json or set collect.keep: all")
    return (np.concatenate(hists).astype(np.float32), np.concatenate(chunks).astype(np.float32),
            np.concatenate(frames).astype(np.float32))
