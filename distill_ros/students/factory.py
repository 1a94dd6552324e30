"""Build a student from its config."""

from __future__ import annotations

from distill_ros.spec import Spec
from distill_ros.students.base import StudentPolicy
from distill_ros.students.config import StudentConfig
from distill_ros.students.mlp import make_mlp
from distill_ros.students.transformer import ObsTokenTransformer


def build_student(cfg: StudentConfig, obs_spec: Spec, act_spec: Spec) -> StudentPolicy:
    """The student named by `cfg.arch`, wrapped with normaliser and action limits."""
    builders = {
        "mlp": lambda: make_mlp(obs_spec.dim, act_spec.dim, cfg.hidden),
        "transformer": lambda: ObsTokenTransformer(
            obs_spec.dim, act_spec.dim, cfg.d_model, cfg.n_heads, cfg.n_layers),
    }
    return StudentPolicy(builders[cfg.arch](), obs_spec, act_spec)
