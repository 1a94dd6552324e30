"""The DAgger learner, with rsl_rl `Distillation`'s verbs: act, process_env_step, update, save.

The student acts on the observation groups it reads; the teachers' labels for the states it
visited go into the capped replay buffer; `update` makes gradient steps on batches drawn
from it with the configured loss, in the normalised [-1, 1] action space. With a KL loss
the student has a Gaussian head (a learned log std); the exported policy is its mean.
With `ema_decay` > 0 the policy (`get_policy`: what acts, is evaluated and exported) is the
moving average of the student's weights (`distill/weight_average.py`), not the last update's.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from distill_ros.distill.dagger.buffer import ReplayBuffer
from distill_ros.distill.dagger.config import DaggerConfig
from distill_ros.distill.dagger.losses import GAUSSIAN_LOSSES, GaussianHead, make_loss
from distill_ros.distill.weight_average import averaged_copy, reset_average, update_average
from distill_ros.atomic import atomic_torch_save

Groups = dict[str, np.ndarray]


def student_input(groups: dict) -> object:
    """What a student takes: the plain array of a flat observation, else the dict of inputs."""
    if len(groups) == 1 and "obs" in groups:
        return groups["obs"]
    return groups


@torch.no_grad()
def student_act(student: torch.nn.Module, obs: Groups) -> tuple[np.ndarray, np.ndarray]:
    """`student`'s (physical, normalised [-1, 1]) actions for a batch of groups."""
    student.eval()
    x = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}
    a = student.forward_normalized(student_input(x))
    low, high = student.act_low, student.act_high
    physical = torch.clamp(low + (a + 1.0) * 0.5 * (high - low), low, high)
    return physical.numpy(), torch.clamp(a, -1.0, 1.0).numpy()


def normalize_labels(student: torch.nn.Module, mean: np.ndarray, std: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Physical teacher mean (and std) -> `student`'s normalised [-1, 1] action space."""
    m = student.normalize_actions(torch.as_tensor(mean, dtype=torch.float32))
    if std is None:
        return m.numpy(), None
    scale = 2.0 / (student.act_high - student.act_low)
    return m.numpy(), (torch.as_tensor(std, dtype=torch.float32) * scale).numpy()


class DAgger:
    """Student, optional Gaussian head, optimiser, the aggregate buffer, the weight average."""

    def __init__(self, student: torch.nn.Module, buffer: ReplayBuffer, cfg: DaggerConfig) -> None:
        self.student, self.buffer, self.cfg = student, buffer, cfg
        self.gaussian = cfg.loss in GAUSSIAN_LOSSES
        self.loss_fn = make_loss(cfg.loss, cfg.huber_delta)
        act_dim = int(student.act_low.numel())
        self.head = GaussianHead(act_dim, cfg.init_log_std) if self.gaussian else None
        params = list(student.parameters())
        if self.head is not None:
            params += list(self.head.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        self.average = averaged_copy(student) if cfg.ema_decay > 0 else None
        self.updates = 0

    # -- acting --------------------------------------------------------------------------------
    def act(self, obs: Groups) -> tuple[np.ndarray, np.ndarray]:
        """The policy's (physical, normalised [-1, 1]) actions for a batch of groups."""
        return student_act(self.get_policy(), obs)

    def normalize(self, mean: np.ndarray, std: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
        """Physical teacher mean (and std) -> the normalised [-1, 1] action space."""
        return normalize_labels(self.student, mean, std)

    def process_env_step(self, obs: Groups, teacher_mean: np.ndarray,
                         teacher_std: np.ndarray | None, task: np.ndarray) -> None:
        """Store the teacher's labels (physical units) for the states the student reads."""
        self.buffer.add(obs, teacher_mean, teacher_std if self.gaussian else None, task)

    # -- learning ------------------------------------------------------------------------------
    def loss(self, obs: dict, teacher_mean: torch.Tensor,
             teacher_std: torch.Tensor | None) -> torch.Tensor:
        """The configured loss between student and teacher, normalised action space."""
        mean = self.student.forward_normalized(student_input(obs))
        target = self.student.normalize_actions(teacher_mean)
        if not self.gaussian:
            return self.loss_fn(mean, target)
        scale = 2.0 / (self.student.act_high - self.student.act_low)
        return self.loss_fn(mean, target, student_std=self.head(mean),
                            teacher_std=teacher_std * scale)

    def update(self, learning_rate: float | None = None) -> dict[str, float]:
        """`updates_per_round` gradient steps on buffer batches; returns the mean figures.

        `learning_rate`, if given, is set for these steps (and kept in the optimiser's state).
        """
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.student.train()
        losses, norms = [], []
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for _ in range(self.cfg.updates_per_round):
            obs, mean, std = self.buffer.batch(self.buffer.sample(self.cfg.batch_size))
            loss = self.loss({k: torch.from_numpy(v) for k, v in obs.items()},
                             torch.from_numpy(mean),
                             None if std is None else torch.from_numpy(std))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms.append(torch.nn.utils.clip_grad_norm_(params, 1.0).item())
            self.optimizer.step()
            if self.average is not None:
                update_average(self.average, self.student, self.cfg.ema_decay)
            losses.append(loss.item())
            self.updates += 1
        self.student.eval()
        out = {"loss": float(np.mean(losses)) if losses else float("nan"),
               "grad_norm": float(np.mean(norms)) if norms else float("nan")}
        if self.head is not None:
            out["student_std"] = float(torch.exp(self.head.log_std.detach()).mean())
        return out

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Student, its weight average, head, optimiser, buffer and update count."""
        return {"student": self.student.state_dict(), "optimizer": self.optimizer.state_dict(),
                "student_average": (None if self.average is None
                                    else self.average.state_dict()),
                "head": None if self.head is None else self.head.state_dict(),
                "buffer": self.buffer.state_dict(), "updates": self.updates}

    def save(self, path: Path, **extra: object) -> None:
        """Atomically write everything `load` restores, plus the caller's state."""
        atomic_torch_save(path, {**self.state_dict(), **extra})

    def load(self, path: Path) -> dict:
        """Restore from `save`; returns the caller's state. Bad files name themselves."""
        problem = None
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            self.load_state_dict(state)
        except (RuntimeError, EOFError, KeyError, OSError, pickle.UnpicklingError) as err:
            problem = f"{type(err).__name__}: {str(err)[:200]}"
        if problem is not None:
            raise ValueError(f"DAgger checkpoint {path} cannot be loaded ({problem}); delete "
                             "it to restart DAgger from its first round")
        keys = ("student", "student_average", "optimizer", "head", "buffer", "updates")
        return {k: v for k, v in state.items() if k not in keys}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`."""
        self.student.load_state_dict(state["student"])
        if self.average is not None:
            if state.get("student_average") is None:
                raise KeyError("student_average: written with dagger.ema_decay 0, resumed "
                               "with an average")
            self.average.load_state_dict(state["student_average"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.head is not None:
            self.head.load_state_dict(state["head"])
        self.buffer.load_state_dict(state["buffer"])
        self.updates = int(state["updates"])

    def restart_average(self) -> None:
        """Start the weight average over at the student's weights (after a warm start)."""
        if self.average is not None:
            reset_average(self.average, self.student)

    def get_policy(self) -> torch.nn.Module:
        """The student, or its weight average with `ema_decay` (its mean action is exported)."""
        return self.student if self.average is None else self.average
