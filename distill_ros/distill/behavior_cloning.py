"""The distiller: regress the student onto teacher actions (rsl_rl `Distillation`'s verbs).

The same object serves offline distillation (UniGraspTransformer: batches come from teacher
rollout shards) and on-policy distillation (DAgger, HOVER, the dressing work: `act` drives
the env, the teachers label the visited states, `process_env_step` stores the pair,
`update` trains on the buffer). Only where the (obs, teacher action) pairs come from differs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from distill_ros.atomic import atomic_torch_save
from distill_ros.spec import ObsSpec, Spec
from distill_ros.students.base import StudentPolicy


class Distillation:
    """Student regression onto teacher actions in normalised action space (MSE)."""

    def __init__(self, student: StudentPolicy, learning_rate: float,
                 weight_decay: float = 0.0, buffer_size: int = 200_000) -> None:
        self.student = student
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=learning_rate,
                                           weight_decay=weight_decay)
        self.buffer_size = buffer_size
        self._obs: list[np.ndarray] = []
        self._act: list[np.ndarray] = []

    # -- acting (on-policy use) ----------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The student's physical action for a batch of raw observations."""
        return self.student.act(obs)

    def process_env_step(self, obs: np.ndarray, teacher_actions: np.ndarray) -> None:
        """Store teacher labels for states the student visited (DAgger aggregation)."""
        self._obs.append(np.asarray(obs, np.float32))
        self._act.append(np.asarray(teacher_actions, np.float32))
        total = sum(len(o) for o in self._obs)
        while total > self.buffer_size and len(self._obs) > 1:
            total -= len(self._obs.pop(0))
            self._act.pop(0)

    def buffer(self) -> tuple[np.ndarray, np.ndarray]:
        """The aggregated (obs, teacher action) pairs."""
        return np.concatenate(self._obs), np.concatenate(self._act)

    # -- learning ------------------------------------------------------------------------------
    def loss(self, obs: torch.Tensor, teacher_actions: torch.Tensor) -> torch.Tensor:
        """Mean squared error between student and teacher in [-1, 1] action space."""
        target = self.student.normalize_actions(teacher_actions)
        return torch.mean((self.student.forward_normalized(obs) - target) ** 2)

    def update(self, obs: torch.Tensor, teacher_actions: torch.Tensor) -> dict[str, float]:
        """One gradient step on a batch; returns the logged figures."""
        self.student.train()
        loss = self.loss(obs, teacher_actions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.optimizer.step()
        return {"loss": loss.item(), "grad_norm": grad_norm.item()}

    @torch.no_grad()
    def evaluate(self, obs: torch.Tensor, teacher_actions: torch.Tensor) -> float:
        """Loss on held-back data, without a gradient step."""
        self.student.eval()
        return float(self.loss(obs, teacher_actions))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path, **extra: object) -> None:
        """Atomically write student, optimiser, layouts and caller state (epoch, loss, RNG)."""
        atomic_torch_save(path, {"student": self.student.state_dict(),
                                 "optimizer": self.optimizer.state_dict(),
                                 "obs_spec": self.student.obs_spec.to_json(),
                                 "act_spec": self.student.act_spec.to_json(), **extra})

    def load(self, path: Path) -> dict:
        """Restore from `save`; returns the caller state. Bad files name themselves.

        A checkpoint for other layouts is refused by name; one written before checkpoints
        carried their layouts (no ``obs_spec``) is checked by the weights' shapes only.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if "obs_spec" in state:
                self.student.obs_spec.check_same(ObsSpec.from_json(state["obs_spec"]),
                                                 f"student checkpoint {path}")
                Spec.from_json(state["act_spec"]).check_same(
                    self.student.act_spec, "action", f"student checkpoint {path}")
            self.student.load_state_dict(state["student"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, EOFError, KeyError, OSError, pickle.UnpicklingError) as err:
            raise ValueError(f"student checkpoint {path} cannot be loaded "
                             f"({type(err).__name__}: {str(err)[:200]}); delete it to retrain "
                             "from the last good checkpoint or from scratch") from None
        return {k: v for k, v in state.items()
                if k not in ("student", "optimizer", "obs_spec", "act_spec")}

    def get_policy(self) -> StudentPolicy:
        """The student, for export and evaluation."""
        return self.student
