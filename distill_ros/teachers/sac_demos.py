"""SAC from demonstrations: a scripted expert seeds the replay buffer, the actor and the critics.

SACfD (Vecerik et al. 2017) and RLPD (Ball et al. 2023) start off-policy RL from expert
transitions in the replay buffer, so a small budget of the agent's own steps refines a
policy that already works instead of searching from noise. Here, before SB3's `learn`:

1. `collect_demos`: episodes of the family's scripted expert through the training envs
   themselves (VecNormalize included, so its statistics start on those states), acted with
   Gaussian noise for varied states; every transition goes into SAC's replay buffer as SAC
   would store its own, and each state keeps the expert's clean action as a label;
2. `clone_actor`: behaviour cloning, the actor's deterministic action fitted to the labels
   (mean squared error) and its std set to the demonstrations' noise;
3. `warm_critics`: the critics fitted to the buffer by SAC's own soft Bellman target under
   the cloned actor, so the first policy updates follow a critic that has seen the task.

Afterwards SAC runs unchanged (its buffer keeps the demonstrations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from distill_ros.atomic import atomic_savez
from distill_ros.teachers.experts import family_expert

log = logging.getLogger(__name__)
BATCH = 256
WARM_LR = 1e-3       # cloning and critic warm-up (own optimisers: SAC's start afresh)
Q_WEIGHT = 2.5       # TD3+BC's alpha: the policy term's weight against cloning
DEMOS_FILE = "demos.npz"


@dataclass
class Demos:
    """Demonstrated raw observations and the expert's clean actions there, in [-1, 1]."""

    obs: np.ndarray
    labels: np.ndarray
    episodes: int
    mean_return: float
    min_return: float


def collect_demos(model, venv, expert: Callable[[np.ndarray], np.ndarray], low: np.ndarray,
                  high: np.ndarray, episodes: int, noise: float, seed: int) -> Demos:
    """Run `expert` (physical actions) with noise in `venv` until `episodes` episodes end.

    `venv` is SAC's VecNormalize over envs whose actions are rescaled to [-1, 1]; each
    transition is added to `model.replay_buffer` with raw observations and rewards, as
    SB3 stores its own (a finished episode's next observation is its terminal one).
    """
    rng = np.random.default_rng(seed)
    venv.reset()
    raw = venv.get_original_obs()
    states, labels, returns = [], [], []
    running = np.zeros(venv.num_envs)
    while len(returns) < episodes:
        clean = 2.0 * (np.asarray(expert(raw), np.float64) - low) / (high - low) - 1.0
        acted = np.clip(clean + noise * rng.standard_normal(clean.shape), -1.0, 1.0)
        _, _, dones, infos = venv.step(acted.astype(np.float32))
        reward = venv.get_original_reward()
        next_raw = venv.get_original_obs().copy()
        for i in np.flatnonzero(dones):
            next_raw[i] = venv.unnormalize_obs(infos[i]["terminal_observation"])
        model.replay_buffer.add(raw, next_raw, acted, reward, dones, infos)
        states.append(raw)
        labels.append(np.clip(clean, -1.0, 1.0))
        running += reward
        returns += running[dones].tolist()
        running[dones] = 0.0
        raw = venv.get_original_obs()
    return Demos(np.concatenate(states).astype(np.float32),
                 np.concatenate(labels).astype(np.float32), len(returns),
                 float(np.mean(returns)), float(np.min(returns)))


def clone_actor(model, obs: torch.Tensor, labels: torch.Tensor, steps: int, noise: float,
                generator: torch.Generator) -> float:
    """Fit the actor's deterministic action to `labels` on (normalised) `obs`; last loss."""
    actor = model.actor
    optimizer = torch.optim.Adam(actor.parameters(), lr=WARM_LR)
    log_std = float(np.log(max(noise, 1e-3)))
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(len(obs), (BATCH,), generator=generator)
        mean, log_std_out, _ = actor.get_action_dist_params(obs[idx])
        loss = F.mse_loss(torch.tanh(mean), labels[idx])
        total = loss + 0.1 * ((log_std_out - log_std) ** 2).mean()
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return float(loss.detach())


def critic_step(model, data, alpha: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """One SAC critic update on `data` (soft Bellman target, twin critics, Polyak targets)."""
    with torch.no_grad():
        next_act, next_logp = model.actor.action_log_prob(data.next_observations)
        next_q = torch.cat(model.critic_target(data.next_observations, next_act), dim=1)
        soft = next_q.min(dim=1, keepdim=True)[0] - alpha * next_logp.reshape(-1, 1)
        target = data.rewards + (1 - data.dones) * model.gamma * soft
    qs = model.critic(data.observations, data.actions)
    loss = 0.5 * sum(F.mse_loss(q, target) for q in qs)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    polyak_update(model.critic.parameters(), model.critic_target.parameters(), model.tau)
    return float(loss.detach())


def _alpha(model) -> torch.Tensor:
    return (torch.exp(model.log_ent_coef.detach()) if model.log_ent_coef is not None
            else model.ent_coef_tensor)


def warm_critics(model, steps: int) -> float:
    """Only the critic update of SAC, under the current actor and entropy weight; last loss."""
    optimizer = torch.optim.Adam(model.critic.parameters(), lr=WARM_LR)
    loss = float("nan")
    for _ in range(steps):
        data = model.replay_buffer.sample(model.batch_size, env=model._vec_normalize_env)
        loss = critic_step(model, data, _alpha(model), optimizer)
    return loss


class DemoSAC(SAC):
    """SAC whose actor loss keeps behaviour cloning on the demonstrations (SAC+BC).

    As TD3+BC (Fujimoto & Gu 2021): the policy term is divided by the batch's mean |Q|
    and weighted by `Q_WEIGHT`, the cloning term is the mean squared error to the
    expert's actions, so a critic still learning cannot drag the actor off the
    demonstrated behaviour, yet its improvements count.
    """

    demo_obs: np.ndarray | None = None        # raw observations
    demo_labels: torch.Tensor | None = None   # the expert's actions there, in [-1, 1]

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "demo_obs", "demo_labels"]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """The updates of SAC (entropy weight, critics, actor) with the cloning term added."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        demo_obs = torch.as_tensor(self._vec_normalize_env.normalize_obs(self.demo_obs),
                                   dtype=torch.float32)
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            act, logp = self.actor.action_log_prob(data.observations)
            if self.ent_coef_optimizer is not None:
                alpha_loss = -(self.log_ent_coef
                               * (logp.detach() + self.target_entropy)).mean()
                self.ent_coef_optimizer.zero_grad()
                alpha_loss.backward()
                self.ent_coef_optimizer.step()
            alpha = _alpha(self)
            critic_step(self, data, alpha, self.critic.optimizer)
            q = torch.cat(self.critic(data.observations, act), dim=1).min(1, keepdim=True)[0]
            policy = (alpha * logp.reshape(-1, 1) - q).mean() / q.abs().mean().detach()
            idx = torch.randint(len(demo_obs), (batch_size,))
            mean, _, _ = self.actor.get_action_dist_params(demo_obs[idx])
            loss = Q_WEIGHT * policy + F.mse_loss(torch.tanh(mean), self.demo_labels[idx])
            self.actor.optimizer.zero_grad()
            loss.backward()
            self.actor.optimizer.step()
            self._n_updates += 1


def seed_with_demos(model, venv, family: str, cfg, seed: int, act_low: np.ndarray,
                    act_high: np.ndarray, out_dir: Path) -> dict:
    """Demonstrations into the buffer and `out_dir/demos.npz`, then cloning and critic warm-up."""
    module = family_expert(family, cfg.expert)

    def expert(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(raw, dtype=torch.float32)).numpy()

    demos = collect_demos(model, venv, expert, act_low, act_high, cfg.demo_episodes,
                          cfg.demo_noise, seed)
    atomic_savez(Path(out_dir) / DEMOS_FILE, obs=demos.obs, labels=demos.labels)
    attach_demos(model, Path(out_dir) / DEMOS_FILE)
    obs = torch.as_tensor(venv.normalize_obs(demos.obs), dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    bc = clone_actor(model, obs, torch.as_tensor(demos.labels), cfg.bc_steps, cfg.demo_noise,
                     generator)
    critic = warm_critics(model, cfg.bc_steps)
    log.info("SAC from demonstrations: %d expert episodes (%d transitions, return mean %.2f, "
             "min %.2f), behaviour cloning loss %.4f, critic loss %.4f after %d steps",
             demos.episodes, len(demos.obs), demos.mean_return, demos.min_return, bc, critic,
             cfg.bc_steps)
    return {"demo_episodes": demos.episodes, "demo_transitions": len(demos.obs),
            "demo_return": demos.mean_return, "demo_min_return": demos.min_return,
            "bc_loss": bc, "critic_loss": critic}


def attach_demos(model, path: Path) -> None:
    """Give a `DemoSAC` its demonstrations (saved beside its checkpoints, not in its .zip)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} is missing: the SAC-from-demonstrations checkpoint "
                                "beside it cannot resume without it; delete the checkpoint "
                                "files to train this teacher afresh")
    with np.load(path) as z:
        model.demo_obs = z["obs"]
        model.demo_labels = torch.as_tensor(z["labels"])


def sac_class(cfg) -> type:
    """The SB3 SAC class to train: `DemoSAC` when demonstrations are asked for."""
    return DemoSAC if cfg.demo_episodes else SAC
