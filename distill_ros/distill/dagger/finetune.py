"""RL fine-tuning of a distilled student on the task's reward (`dagger.finetune`).

DAgger fits the student to its teachers' actions, state by state; what it cannot see is
which of its small errors matter. On the humanoid, a student within 0.003-0.005 (normalised)
of the DeepMimic experts still fell where they did not, from a few starts in the jump's
flight, whatever the labels, the loss or the student's width (design notes, humanoid
section). Fine-tuning with the imitation reward the experts were trained on tells it.

Each iteration:

1. **Collect.** The student drives alone on the run's env vector (the same routed tasks as
   DAgger's) with Gaussian noise of std `noise` (normalised units) on its actions; every
   state is labelled by its task's teacher (as in DAgger) and read by the critic (the
   teacher's groups and a one-hot task: privileged, as the teacher is). Every iteration
   starts from a reset seeded by (seed, iteration), so a resumed run repeats it exactly.
2. **Advantages.** GAE (Schulman et al. 2016) on the critic's values. A step that ends an
   episode by termination without success (a fall) ends the return; a time limit, a success
   that the env also truncates, `episode_steps` and the end of the iteration cut it and are
   bootstrapped from the critic.
3. **Update.** `warmup` iterations fit the critic only. Then PPO's clipped surrogate
   (Schulman et al. 2017) for the student's mean, with the exploration std fixed, plus
   `distill_weight` x the MSE between the student's mean and the teacher's label (the DAgger
   loss) on the same states, which keeps the student a distilled copy: the reward moves it
   only where the two disagree about what matters.

The student keeps its input and output layout (and its observation normaliser), so the
export, the ROS nodes and the eval read it unchanged. `finetune.pt` in DAgger's folder holds
the student, the critic, both optimisers and the curves after every iteration (atomically);
`finetuned` loads the student from it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from distill_ros.atomic import atomic_torch_save, atomic_write, atomic_write_json
from distill_ros.distill.dagger.algorithm import normalize_labels, student_input
from distill_ros.distill.dagger.collect import round_seeds
from distill_ros.distill.dagger.config import DaggerConfig, FinetuneConfig
from distill_ros.distill.dagger.envs import (episode_outcomes, flatten, make_vector_env, select,
                                             to_groups)
from distill_ros.distill.dagger.routing import TeacherRouter, assign_tasks

if TYPE_CHECKING:
    from distill_ros.distill.dagger.runner import DaggerJob

log = logging.getLogger(__name__)
SEED_OFFSET = 31_337   # fine-tuning resets, apart from DAgger's rounds and its evaluations
CHECKPOINT = "finetune.pt"


class Critic(nn.Module):
    """State value from the critic's features (teacher groups) and a one-hot task."""

    def __init__(self, features: int, tasks: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.tasks = tasks
        layers, width = [], features + tasks
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    def fit_normalizer(self, features: np.ndarray) -> None:
        """Per-feature mean and std of `features` (N, D); near-constant ones get std 1."""
        std = features.std(0)
        self.mean.copy_(torch.as_tensor(features.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.where(std < 1e-6, 1.0, std), dtype=torch.float32))

    def forward(self, features: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """(N, D) features and (N,) task indices -> (N,) values."""
        x = (features - self.mean) / self.std
        one_hot = nn.functional.one_hot(task.long(), self.tasks).to(x.dtype)
        return self.net(torch.cat([x, one_hot], -1))[:, 0]


def advantages(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
               terminal: np.ndarray, cut: np.ndarray, gamma: float, lam: float
               ) -> np.ndarray:
    """GAE over (T, N) arrays of T steps of N envs.

    `next_values[t]`: the critic's value of the observation step t returned (before any
    reset); `terminal[t]`: the episode ended there with no future (a fall); `cut[t]`: it
    ended there but the future is bootstrapped (time limit, `episode_steps`, the iteration's
    last step). Neither carries the next step's advantage back.
    """
    adv = np.zeros(rewards.shape, np.float64)
    carry = np.zeros(rewards.shape[1], np.float64)
    for t in reversed(range(len(rewards))):
        alive = 1.0 - terminal[t]
        delta = rewards[t] + gamma * alive * next_values[t] - values[t]
        carry = delta + gamma * lam * np.where(terminal[t] | cut[t], 0.0, carry)
        adv[t] = carry
    return adv


class Rollout:
    """One iteration's steps, (T, N, ...) arrays: what the update needs."""

    def __init__(self) -> None:
        self.inputs: dict[str, list] = {}
        self.columns: dict[str, list] = {k: [] for k in (
            "features", "next_features", "action", "mean", "label", "reward", "terminal",
            "cut")}

    def add(self, inputs: dict[str, np.ndarray], **columns: np.ndarray) -> None:
        """Append one vector step."""
        for k, v in inputs.items():
            self.inputs.setdefault(k, []).append(v)
        for k, v in columns.items():
            self.columns[k].append(v)

    def arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(inputs, columns) stacked along time."""
        return ({k: np.stack(v) for k, v in self.inputs.items()},
                {k: np.stack(v) for k, v in self.columns.items()})


def collect(envs, student: nn.Module, router: TeacherRouter, cfg: DaggerConfig,
            seeds: list[int]) -> tuple[Rollout, dict]:
    """`cfg.finetune.steps` vector steps of the noisy student.

    Returns the rollout and per-env counts (arrays over envs) of ended episodes, failures and
    successes.
    """
    ft = cfg.finetune
    n = envs.num_envs
    obs, _ = envs.reset(seed=seeds)
    rngs = [np.random.default_rng([seed, 2]) for seed in seeds]
    low, high = student.act_low.numpy(), student.act_high.numpy()
    since_reset = np.zeros(n, int)
    rollout = Rollout()
    counts = {key: np.zeros(n, int) for key in ("episodes", "failures", "successes")}
    student.eval()
    for step in range(ft.steps):
        g = to_groups(obs)
        inputs = select(g, cfg.student_groups)
        features = flatten(g, cfg.teacher_groups)
        label, _ = normalize_labels(student, router.label(features)[0])
        with torch.no_grad():
            x = {k: torch.as_tensor(v) for k, v in inputs.items()}
            mean = student.forward_normalized(student_input(x)).numpy()
        if not np.all(np.isfinite(mean)):
            raise FloatingPointError(
                "dagger.finetune: the student's action is not finite; the updates diverged. "
                "Lower dagger.finetune.learning_rate or raise distill_weight, delete "
                "finetune.pt in the run's student/dagger folder and run the distill stage "
                "again")
        action = mean + ft.noise * np.stack([r.standard_normal(mean.shape[1]) for r in rngs])
        physical = np.clip(low + (action + 1.0) * 0.5 * (high - low), low, high)
        obs, reward, terminated, truncated, info = envs.step(physical)
        done, success = episode_outcomes(terminated, truncated, info)
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        since_reset += 1
        terminal = terminated & ~truncated
        capped = since_reset >= ft.episode_steps if ft.episode_steps else np.zeros(n, bool)
        last = step == ft.steps - 1
        ended = done | capped
        rollout.add(inputs, features=features, next_features=flatten(to_groups(obs),
                                                                     cfg.teacher_groups),
                    action=action.astype(np.float32), mean=mean, label=label,
                    reward=np.asarray(reward, np.float64), terminal=terminal,
                    cut=(ended | last) & ~terminal)
        counts["episodes"] += ended
        counts["failures"] += terminated & ~success
        counts["successes"] += done & success
        if ended.any() and not last:
            obs, _ = envs.reset(options={"reset_mask": ended})
            since_reset[ended] = 0
    return rollout, counts


def update(student: nn.Module, critic: Critic, optimizers: tuple, rollout: Rollout,
           task_index: np.ndarray, ft: FinetuneConfig, train_student: bool,
           generator: torch.Generator) -> dict:
    """Critic (and, after the warm-up, student) steps on one rollout; returns mean figures."""
    inputs, c = rollout.arrays()
    steps, n = c["reward"].shape
    task = torch.as_tensor(np.broadcast_to(task_index, (steps, n)).reshape(-1))
    feats = torch.as_tensor(c["features"].reshape(steps * n, -1))
    with torch.no_grad():
        values = critic(feats, task).numpy().reshape(steps, n)
        nxt = critic(torch.as_tensor(c["next_features"].reshape(steps * n, -1)),
                     task).numpy().reshape(steps, n)
    adv = advantages(c["reward"], values, nxt, c["terminal"], c["cut"], ft.gamma, ft.lam)
    ret = torch.as_tensor((adv + values).reshape(-1), dtype=torch.float32)
    adv_t = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
    adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
    x = {k: torch.as_tensor(v.reshape(steps * n, *v.shape[2:])) for k, v in inputs.items()}
    action, mean_old, label = (torch.as_tensor(c[k].reshape(steps * n, -1), dtype=torch.float32)
                               for k in ("action", "mean", "label"))
    var2 = 2.0 * ft.noise ** 2
    logp_old = -((action - mean_old) ** 2).sum(-1) / var2
    opt_student, opt_critic = optimizers
    sums = {"value_loss": 0.0, "policy_loss": 0.0, "distill_loss": 0.0, "approx_kl": 0.0}
    batches = 0
    student.train()
    for _ in range(ft.epochs):
        order = torch.randperm(steps * n, generator=generator)
        for i in range(0, steps * n, ft.batch_size):
            idx = order[i:i + ft.batch_size]
            value_loss = ((critic(feats[idx], task[idx]) - ret[idx]) ** 2).mean()
            opt_critic.zero_grad(set_to_none=True)
            value_loss.backward()
            opt_critic.step()
            sums["value_loss"] += value_loss.item()
            batches += 1
            if not train_student:
                continue
            mean = student.forward_normalized(student_input({k: v[idx] for k, v in x.items()}))
            logp = -((action[idx] - mean) ** 2).sum(-1) / var2
            ratio = torch.exp(logp - logp_old[idx])
            a = adv_t[idx]
            policy_loss = -torch.min(ratio * a, ratio.clamp(1 - ft.clip, 1 + ft.clip) * a).mean()
            distill_loss = ((mean - label[idx]) ** 2).mean()
            opt_student.zero_grad(set_to_none=True)
            (policy_loss + ft.distill_weight * distill_loss).backward()
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt_student.step()
            sums["policy_loss"] += policy_loss.item()
            sums["distill_loss"] += distill_loss.item()
            sums["approx_kl"] += (logp_old[idx] - logp).mean().item()
    student.eval()
    out = {k: v / max(1, batches) for k, v in sums.items()}
    out["label_mse"] = float(np.mean((c["mean"] - c["label"]) ** 2))  # as collected
    out["reward_per_step"] = float(c["reward"].mean())
    return out


def finetune(cfg: DaggerConfig, job: "DaggerJob", student: nn.Module) -> dict:
    """Fine-tune `student` (in place) for `cfg.finetune.iterations`, resuming `finetune.pt`.

    `job` is the run's `DaggerJob` (envs, tasks, teachers, folders, seed). Returns the final
    figures; the curves go to the report folder (`finetune_curves.json` / `.png`).
    """
    ft = cfg.finetune
    path = Path(job.out_dir) / CHECKPOINT
    env_tasks = assign_tasks(job.tasks, cfg.n_envs, cfg.task_weights)
    task_index = np.array([list(job.tasks).index(t) for t in env_tasks], np.int64)
    envs = make_vector_env(job.make_env, env_tasks, cfg.vector)
    try:
        router = TeacherRouter(env_tasks, job.load_teacher, int(student.act_low.numel()), False)
        probe, _ = envs.reset(seed=round_seeds(job.seed + SEED_OFFSET, 0, len(env_tasks)))
        width = flatten(to_groups(probe), cfg.teacher_groups).shape[1]
        torch.manual_seed(job.seed)
        critic = Critic(width, len(job.tasks), ft.critic_hidden)
        optimizers = (torch.optim.Adam(student.parameters(), lr=ft.learning_rate),
                      torch.optim.Adam(critic.parameters(), lr=ft.critic_learning_rate))
        state = {"iteration": 0, "curves": [], "wall_s": 0.0}
        if path.is_file():
            state = _load(path, student, critic, optimizers)
            log.info("finetune: resuming after iteration %d", state["iteration"])
        bar = tqdm(total=ft.iterations, initial=state["iteration"], desc="finetune",
                   unit="it")
        while state["iteration"] < ft.iterations:
            it, started = state["iteration"], time.monotonic()
            seeds = round_seeds(job.seed + SEED_OFFSET, it, len(env_tasks))
            rollout, per_env = collect(envs, student, router, cfg, seeds)
            if it == 0:
                critic.fit_normalizer(np.concatenate(rollout.columns["features"]))
            generator = torch.Generator().manual_seed(job.seed * 100_003 + it)
            figures = update(student, critic, optimizers, rollout, task_index, ft,
                             it >= ft.warmup, generator)
            state["wall_s"] += time.monotonic() - started
            row = {"iteration": it + 1, **task_figures(per_env, rollout, env_tasks),
                   **{k: round(v, 6) for k, v in figures.items()},
                   "wall_s": round(state["wall_s"], 2)}
            state["curves"].append(row)
            state["iteration"] = it + 1
            _save(path, student, critic, optimizers, state)
            if job.on_finetune is not None:
                job.on_finetune({**row, "iterations": ft.iterations})
            bar.update(1)
            bar.set_postfix(fail=f"{row['failure_rate']:.2f}",
                            reward=f"{row['reward_per_step']:.3f}",
                            label_mse=f"{row['label_mse']:.1e}")
            log.info("finetune iteration %d: failure rate %.3f, reward/step %.4f, label mse "
                     "%.2e", it + 1, row["failure_rate"], row["reward_per_step"],
                     row["label_mse"])
        bar.close()
    finally:
        envs.close()
    if job.report_dir is not None:
        write_curves(state["curves"], Path(job.report_dir))
    last = state["curves"][-1] if state["curves"] else {}
    return {"iterations": state["iteration"], "finetune_wall_s": round(state["wall_s"], 2),
            "env_steps": state["iteration"] * ft.steps * len(env_tasks),
            "first_failure_rate": state["curves"][0]["failure_rate"] if state["curves"]
            else None, "last_failure_rate": last.get("failure_rate"),
            "last_label_mse": last.get("label_mse")}


def task_figures(per_env: dict[str, np.ndarray], rollout: Rollout,
                 env_tasks: Sequence[str]) -> dict:
    """An iteration's episode counts and failure rate, in all and per task (`tasks`).

    Per task also the mean reward per step of its envs.
    """
    def figures(envs: np.ndarray) -> dict:
        counts = {k: int(v[envs].sum()) for k, v in per_env.items()}
        return {**counts, "failure_rate": counts["failures"] / max(1, counts["episodes"])}

    names = np.asarray(env_tasks)
    rewards = np.stack(rollout.columns["reward"])
    tasks = {t: {**figures(names == t),
                 "reward_per_step": round(float(rewards[:, names == t].mean()), 6)}
             for t in dict.fromkeys(env_tasks)}
    return {**figures(np.ones(len(names), bool)), "tasks": tasks}


def _save(path: Path, student, critic, optimizers, state: dict) -> None:
    atomic_torch_save(path, {"student": student.state_dict(), "critic": critic.state_dict(),
                             "optimizers": [o.state_dict() for o in optimizers], **state})


def _load(path: Path, student, critic, optimizers) -> dict:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    student.load_state_dict(saved.pop("student"))
    critic.load_state_dict(saved.pop("critic"))
    for opt, s in zip(optimizers, saved.pop("optimizers")):
        opt.load_state_dict(s)
    return saved


def finetuned(out_dir: Path, student: nn.Module) -> nn.Module:
    """`student` with the fine-tuned weights of the run in `out_dir` (DAgger's folder)."""
    path = Path(out_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: dagger.finetune is on but the "
                                "fine-tuning has not run; run the distill stage again")
    student.load_state_dict(torch.load(path, map_location="cpu",
                                       weights_only=False)["student"])
    return student.eval()


def write_curves(curves: list[dict], report_dir: Path) -> None:
    """`finetune_curves.json` and `finetune_curves.png` (failures, reward, label error).

    Failures and reward are drawn in all and per task.
    """
    atomic_write_json(Path(report_dir) / "finetune_curves.json", curves)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [c["iteration"] for c in curves]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for ax, key, label in zip(axes, ("failure_rate", "reward_per_step", "label_mse"),
                              ("episodes ended by a failure (fall)", "reward per step",
                               "student vs teacher MSE (normalised)")):
        ax.plot(x, [c[key] for c in curves], marker=".", label="all")
        tasks = dict.fromkeys(t for c in curves for t in c.get("tasks", {}))
        for task in tasks if key != "label_mse" and len(tasks) > 1 else ():
            rows = [(c["iteration"], c["tasks"][task][key]) for c in curves
                    if task in c.get("tasks", {})]
            ax.plot(*zip(*rows), lw=1, alpha=0.8, label=task)
        if ax.get_legend_handles_labels()[1][1:]:
            ax.legend(fontsize=8)
        ax.set_xlabel("iteration")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle("RL fine-tuning of the distilled student (noisy rollouts)")
    fig.tight_layout()
    atomic_write(Path(report_dir) / "finetune_curves.png",
                 lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
