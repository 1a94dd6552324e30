"""Settings of the `teachers` section: SB3 experts trained here, or the user's files."""

from __future__ import annotations

from dataclasses import dataclass, field

from distill_ros.checks import choice, in_range, positive, positive_entries

SB3_ALGOS = ("ppo", "sac")
#: `scripted`: the family's built-in expert (`TaskFamily.scripted_experts`), saved as the
#: task's teacher file with no training (fast pipelines, tests, a yardstick)
ALGOS = (*SB3_ALGOS, "scripted")
#: settings added after runs existed: left out of run.json at their defaults (older runs resume)
DEFAULTED_KEYS = ("expert", "demo_episodes", "demo_noise", "bc_steps", "ent_coef_init")


@dataclass
class TeacherConfig:
    """Where experts come from: trained here with SB3, the family's script, or the user's files.

    SAC from demonstrations (SACfD, Vecerik et al. 2017; RLPD, Ball et al. 2023): with
    `demo_episodes` > 0, that many episodes of the family's scripted expert (`expert`; empty:
    its only one), acted with Gaussian noise of `demo_noise` (normalised action units) for
    varied states, seed SAC's replay buffer; `bc_steps` gradient steps then fit the actor to
    the expert's clean actions (behaviour cloning) and the critics to the demonstrations
    before SAC's own steps. `ent_coef_init` starts SAC's learned entropy weight.
    """

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
    expert: str = ""
    demo_episodes: int = 0
    demo_noise: float = 0.1
    bc_steps: int = 0
    ent_coef_init: float = 1.0

    def __post_init__(self) -> None:
        choice("teachers.algo", self.algo, ALGOS)
        positive("teachers", ent_coef_init=self.ent_coef_init)
        for name in ("demo_episodes", "demo_noise", "bc_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"teachers.{name} must be >= 0, got {getattr(self, name)!r}")
        if (self.demo_episodes or self.bc_steps) and self.algo != "sac":
            raise ValueError(f"teachers.demo_episodes and teachers.bc_steps seed SAC, but "
                             f"teachers.algo is {self.algo!r}: set algo: sac or remove them")
        if self.bc_steps and not self.demo_episodes:
            raise ValueError("teachers.bc_steps clones demonstrations: set "
                             "teachers.demo_episodes > 0 too")
        positive("teachers", timesteps=self.timesteps, n_envs=self.n_envs,
                 n_steps=self.n_steps, batch_size=self.batch_size,
                 learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                 eval_episodes=self.eval_episodes)
        in_range("teachers.gamma", self.gamma, 0.0, 1.0, low_open=True)
        positive_entries("teachers.net_arch", self.net_arch)
        for task, path in self.sources.items():
            if not path:
                raise ValueError(f"teachers.sources.{task} must name a teacher file, got ''")
