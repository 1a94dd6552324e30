"""Build a student from its config."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from distill_ros.spec import ObsSpec, Spec
from distill_ros.students.base import StudentPolicy
from distill_ros.students.config import StudentConfig
from distill_ros.students.encoders import POINT_FEATURES, GroupEncoder
from distill_ros.students.mlp import make_mlp
from distill_ros.students.transformer import ObsTokenTransformer


def build_student(cfg: StudentConfig, obs_spec: Union[Spec, ObsSpec], act_spec: Spec,
                  point_features: int = POINT_FEATURES,
                  frame_vectors: Optional[Sequence[Sequence[int]]] = None) -> StudentPolicy:
    """The student named by `cfg.arch` over the groups' features, with normalisers and limits.

    `cfg.arch` is the core that reads the concatenated group features (`GroupEncoder`).
    `frame_vectors`: the action's world-frame 3-vectors (`TaskFamily.act_frame_vectors`),
    which a student with `cfg.points_frame` outputs in that frame.
    """
    spec = ObsSpec.of(obs_spec)
    encoder = GroupEncoder(spec, point_features)
    builders = {
        "mlp": lambda: make_mlp(encoder.out_dim, act_spec.dim, cfg.hidden),
        "transformer": lambda: ObsTokenTransformer(
            encoder.out_dim, act_spec.dim, cfg.d_model, cfg.n_heads, cfg.n_layers),
    }
    return StudentPolicy(builders[cfg.arch](), spec, act_spec, encoder, cfg.points_origin,
                         cfg.points_frame, frame_vectors)
