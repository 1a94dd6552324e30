"""Per-task experts trained with stable-baselines3 (PPO or SAC), resumable from checkpoints.

A trained teacher is `teacher.zip` (SB3) plus `obs_norm.npz` (VecNormalize statistics, so
the teacher acts on raw observations) in `teachers/<task>/`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable

import cloudpickle
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from distill_ros.atomic import atomic_savez, atomic_write
from distill_ros.spec import Spec
from distill_ros.tasks.base import make_env
from distill_ros.teachers.base import check_obs_dim
from distill_ros.teachers.config import TeacherConfig

log = logging.getLogger(__name__)
CLIP_OBS = 10.0
#: resume files beside a teacher in training (checkpoint_norm.npz: older versions)
CHECKPOINT_FILES = ("checkpoint.zip", "checkpoint_state.pkl", "checkpoint_replay.pkl",
                    "checkpoint_norm.npz")


class SB3Teacher:
    """An SB3 model acting deterministically on raw observations, returning physical actions."""

    def __init__(self, model, act_spec: Spec, obs_mean: np.ndarray | None = None,
                 obs_var: np.ndarray | None = None) -> None:
        self.model = model
        self.low = np.asarray(act_spec.low, np.float32)
        self.high = np.asarray(act_spec.high, np.float32)
        self.obs_mean, self.obs_var = obs_mean, obs_var
        space = model.action_space
        # Models trained on [-1, 1] actions are unscaled; models on physical limits are not.
        self.normalized = bool(np.allclose(space.low, -1) and np.allclose(space.high, 1))

    @classmethod
    def load(cls, path: Path, obs_spec: Spec, act_spec: Spec) -> "SB3Teacher":
        """Load `path` (SB3 .zip) and, if present, its `obs_norm.npz` beside it."""
        from stable_baselines3 import PPO, SAC

        model = None
        for algo in (PPO, SAC):
            try:
                model = algo.load(str(path), device="cpu")
                break
            except (ValueError, KeyError, RuntimeError, TypeError, AssertionError):
                continue
            except Exception as err:  # zipfile.BadZipFile, EOFError on truncated files
                raise ValueError(f"teacher file {path} cannot be read ({type(err).__name__}: "
                                 f"{err}); it is truncated or not an SB3 .zip: retrain or "
                                 "re-save it") from None
        if model is None:
            raise ValueError(f"teacher file {path} is not a PPO or SAC model saved by "
                             "stable-baselines3; re-save it with model.save()")
        check_obs_dim(path, int(np.prod(model.observation_space.shape)), obs_spec)
        if int(np.prod(model.action_space.shape)) != act_spec.dim:
            raise ValueError(f"teacher file {path} outputs {model.action_space.shape} actions; "
                             f"the task needs {act_spec.dim} ({', '.join(act_spec.names)})")
        norm = path.with_name("obs_norm.npz")
        mean = var = None
        if norm.is_file():
            with np.load(norm) as z:
                mean, var = z["mean"], z["var"]
        return cls(model, act_spec, mean, var)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """(B, obs_dim) raw -> (B, act_dim) physical."""
        obs = np.asarray(obs, np.float32)
        if self.obs_mean is not None:
            obs = np.clip((obs - self.obs_mean) / np.sqrt(self.obs_var + 1e-8),
                          -CLIP_OBS, CLIP_OBS).astype(np.float32)
        a, _ = self.model.predict(obs, deterministic=True)
        if self.normalized:
            a = self.low + (np.clip(a, -1, 1) + 1.0) * 0.5 * (self.high - self.low)
        return np.clip(a, self.low, self.high).astype(np.float32)


def _vec_env(family: str, task: str, n_envs: int, seed: int):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    def factory():
        env = make_env(family, task)
        ones = np.ones(env.action_space.shape, np.float32)
        return Monitor(gym.wrappers.RescaleAction(env, -ones, ones), info_keywords=("is_success",))

    venv = DummyVecEnv([factory] * n_envs)
    venv.seed(seed)
    return venv


def train_teacher(family: str, task: str, cfg: TeacherConfig, out_dir: Path, seed: int,
                  progress=None, until: int | None = None) -> Path | None:
    """Train (or resume) one expert; returns the path of its final `teacher.zip`.

    Checkpoints every `cfg.checkpoint_every` steps to `checkpoint.zip` plus
    `checkpoint_state.pkl` (environments mid-episode, VecNormalize statistics, every RNG) and
    the SAC replay buffer, so a killed run continues bit for bit as if never killed.
    `progress` is a tqdm bar advanced by env steps. With `until`, training stops at the first
    checkpoint at or past `until` steps (one segment of a teacher trained in several jobs) and
    returns None unless that is the end; the checkpoints fall where they would in one go.
    """
    from stable_baselines3 import PPO, SAC

    algo = {"ppo": PPO, "sac": SAC}[cfg.algo]
    if cfg.demo_episodes:
        from distill_ros.teachers.sac_demos import DEMOS_FILE, attach_demos, sac_class

        algo = sac_class(cfg)
    ckpt, ckpt_state = out_dir / "checkpoint.zip", out_dir / "checkpoint_state.pkl"
    ckpt_buffer = out_dir / "checkpoint_replay.pkl"
    if ckpt.is_file() and ckpt_state.is_file():
        model, venv = _resume(algo, cfg, ckpt, ckpt_state, ckpt_buffer,
                              lambda: _vec_env(family, task, cfg.n_envs, seed))
        if cfg.demo_episodes:
            attach_demos(model, out_dir / DEMOS_FILE)
            venv.training = False   # the statistics stay those of the demonstrations
        log.info("teacher %s: resuming from %s at %d steps", task, ckpt, model.num_timesteps)
    else:
        torch.manual_seed(seed)
        venv = _normalized(_vec_env(family, task, cfg.n_envs, seed), cfg)
        from distill_ros.tasks.base import get_family

        fam = get_family(family)
        model = _new_model(algo, cfg, venv, seed, fam.max_episode_steps)
        if cfg.demo_episodes:
            from distill_ros.teachers.sac_demos import seed_with_demos

            act = fam.act_spec
            seed_with_demos(model, venv, family, cfg, seed, np.asarray(act.low),
                            np.asarray(act.high), out_dir)
            # frozen from here: the cloned actor's inputs keep their meaning while SAC explores
            venv.training = False
    # A silent logger: SB3's default makes a fresh folder in /tmp on every learn() call.
    model.set_logger(Logger(folder=None, output_formats=[]))
    callback = None
    if progress is not None:
        progress.update(model.num_timesteps)
        callback = _ProgressCallback(progress, cfg.n_envs)
    stop = cfg.timesteps if until is None else min(until, cfg.timesteps)
    while model.num_timesteps < stop:
        chunk = min(cfg.checkpoint_every, cfg.timesteps - model.num_timesteps)
        model.learn(chunk, reset_num_timesteps=False, callback=callback)
        if cfg.algo == "sac":
            atomic_write(ckpt_buffer, model.save_replay_buffer)
        atomic_write(ckpt_state, lambda f: cloudpickle.dump(_training_state(model, venv), f))
        _save_model(model, ckpt)  # last: its presence means the other two are complete
    if model.num_timesteps < cfg.timesteps:  # a segment: the next job resumes from here
        venv.close()
        return None
    final = out_dir / "teacher.zip"
    _save_norm(venv, out_dir / "obs_norm.npz")
    _save_model(model, final)
    remove_checkpoints(out_dir)
    venv.close()
    return final


def remove_checkpoints(out_dir: Path) -> None:
    """Delete the resume files of a finished teacher (the replay buffer is large)."""
    for name in CHECKPOINT_FILES:
        (out_dir / name).unlink(missing_ok=True)


def _normalized(venv, cfg: TeacherConfig):
    from stable_baselines3.common.vec_env import VecNormalize

    return VecNormalize(venv, norm_reward=cfg.algo == "ppo", clip_obs=CLIP_OBS, gamma=cfg.gamma)


#: VecNormalize attributes that change while training (statistics and the last step's values)
_NORM_STATE = ("obs_rms", "ret_rms", "returns", "old_obs", "old_reward")


def _training_state(model, venv) -> dict:
    """What `model.save` leaves out but an exact continuation needs.

    The environments are pickled whole, mid-episode (GraspEnv pickles its physics state),
    with the random generators of python, numpy, torch and the action space (SAC's warm-up
    actions). An environment that cannot be pickled is left out: its resume starts new
    episodes, so it is close to but not exactly the unkilled run.
    """
    try:
        envs = cloudpickle.dumps(venv.venv)
    except Exception as err:  # an env holding a simulator handle it cannot save
        log.warning("the training environments cannot be saved (%s: %s): a resumed run "
                    "will start new episodes and differ from an unkilled one",
                    type(err).__name__, err)
        envs = None
    return {"envs": envs, "norm": {k: getattr(venv, k) for k in _NORM_STATE},
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    "action_space": model.action_space.np_random.bit_generator.state}}


def _resume(algo, cfg: TeacherConfig, ckpt: Path, ckpt_state: Path, ckpt_buffer: Path,
            fresh_envs: Callable):
    """The model, its environments and every RNG as they were at the checkpoint."""
    with open(ckpt_state, "rb") as f:
        state = cloudpickle.load(f)
    exact = state["envs"] is not None
    envs = cloudpickle.loads(state["envs"]) if exact else fresh_envs()
    seeds = list(envs._seeds)  # load() re-seeds them below; the pending ones are kept
    venv = _normalized(envs, cfg)
    for key, value in state["norm"].items():
        setattr(venv, key, value)
    # force_reset=False: the environments continue their episodes from the saved _last_obs
    model = algo.load(str(ckpt), env=venv, device="cpu", force_reset=not exact)
    if cfg.algo == "sac" and ckpt_buffer.is_file():
        model.load_replay_buffer(str(ckpt_buffer))
    envs._seeds = seeds
    rng = state["rng"]  # load() re-seeded every generator from the model's seed: put them back
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    model.action_space.np_random.bit_generator.state = rng["action_space"]
    return model, venv


class _ProgressCallback(BaseCallback):
    """Advance a tqdm bar by the env steps of each vectorised step."""

    def __init__(self, bar, n_envs: int) -> None:
        super().__init__()
        self.bar, self.n_envs = bar, n_envs

    def _on_step(self) -> bool:
        self.bar.update(self.n_envs)
        return True


def replay_capacity(cfg: TeacherConfig, episode_steps: int) -> int:
    """Transitions SAC's replay buffer holds: enough that it never wraps.

    That is SAC's own steps plus the demonstrations (the episodes asked for, plus one per
    env still running when they end). SB3's default holds a million whatever the budget
    (a 148 MB checkpoint for a 60k-step teacher); a buffer that never fills samples
    exactly as a larger one does, at a fraction of the memory and checkpoint size.
    """
    demos = (cfg.demo_episodes + cfg.n_envs) * episode_steps if cfg.demo_episodes else 0
    return cfg.timesteps + demos + 2 * cfg.n_envs


def _new_model(algo, cfg: TeacherConfig, venv, seed: int, episode_steps: int):
    kwargs = dict(learning_rate=cfg.learning_rate, gamma=cfg.gamma, seed=seed, verbose=0,
                  device="cpu", policy_kwargs=dict(net_arch=list(cfg.net_arch)))
    if cfg.algo == "ppo":
        kwargs.update(n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=10,
                      gae_lambda=0.95)
        kwargs["policy_kwargs"]["log_std_init"] = -0.5
    else:
        # with demonstrations in the buffer SAC learns from its first step, on its own policy
        kwargs.update(batch_size=cfg.batch_size, train_freq=4, gradient_steps=2,
                      buffer_size=replay_capacity(cfg, episode_steps),
                      learning_starts=0 if cfg.demo_episodes else 2000,
                      ent_coef=f"auto_{cfg.ent_coef_init}")
    return algo("MlpPolicy", venv, **kwargs)


def _save_model(model, path: Path) -> None:
    import io

    buf = io.BytesIO()
    model.save(buf)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def _save_norm(venv, path: Path) -> None:
    rms = venv.obs_rms
    ret = venv.ret_rms
    atomic_savez(path, mean=rms.mean.astype(np.float32), var=rms.var.astype(np.float32),
                 count=np.array(rms.count), ret_mean=np.array(ret.mean),
                 ret_var=np.array(ret.var), ret_count=np.array(ret.count))
