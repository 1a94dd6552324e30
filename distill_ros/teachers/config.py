"""Settings of the `teachers` section: SB3 experts trained here, or the user's files."""

from __future__ import annotations

from dataclasses import dataclass, field

from distill_ros.checks import choice, in_range, positive, positive_entries

SB3_ALGOS = ("ppo", "sac")


@dataclass
class TeacherConfig:
    """Where experts come from: trained here with SB3, or the user's files per task."""

    algo: str = "sac"
    timesteps: int = 60_000
    n_envs: int = 4
    n_steps: int = 256          # PPO only: rollout length per env
    batch_size: int = 256
    learning_rate: float = 1e-3
    gamma: float = 0.98         # discount per control step
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    checkpoint_every: int = 10_000
    eval_episodes: int = 20
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        choice("teachers.algo", self.algo, SB3_ALGOS)
        positive("teachers", timesteps=self.timesteps, n_envs=self.n_envs,
                 n_steps=self.n_steps, batch_size=self.batch_size,
                 learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                 eval_episodes=self.eval_episodes)
        in_range("teachers.gamma", self.gamma, 0.0, 1.0, low_open=True)
        positive_entries("teachers.net_arch", self.net_arch)
        for task, path in self.sources.items():
            if not path:
                raise ValueError(f"teachers.sources.{task} must name a teacher file, got ''")
