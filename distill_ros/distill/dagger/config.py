"""Settings of on-policy distillation (`distill.algorithm: dagger`), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from distill_ros.checks import asdict_without_defaults, in_range

SCHEDULES = ("constant", "linear", "exponential", "on_demand")
PER = ("step", "episode")
LOSSES = ("mse", "huber", "forward_kl", "reverse_kl")
BUFFER_MODES = ("fifo", "reservoir")
VECTOR = ("auto", "sync", "async")
INIT = ("scratch", "offline")
KEEP = ("last", "best")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"dagger.{name} must be one of {list(choices)}, got {value!r}")


def _positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"dagger.{name} must be > 0, got {value!r}")


def _unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"dagger.{name} must be in [0, 1], got {value!r}")


@dataclass
class BetaConfig:
    """Who acts: a decaying probability β that the teacher's action is executed, or on demand.

    `per: step` draws a coin for every env and step, and β's clock counts env steps;
    `per: episode` draws one coin per env and episode, and the clock counts finished episodes.
    `on_demand` ignores start/end/horizon/rate/per: the student acts unless its normalised
    action is farther than `threshold` (L2, in [-1, 1] units) from the teacher's, or it has
    driven the episode for `fail_steps` steps without success (0 turns that off).
    """

    schedule: str = "linear"
    per: str = "step"
    start: float = 1.0
    end: float = 0.0
    horizon: int = 10_000       # linear: units (steps or episodes) from start to end
    rate: float = 0.999         # exponential: β_t = max(end, start * rate ** t)
    threshold: float = 0.5      # on_demand
    fail_steps: int = 0         # on_demand

    def __post_init__(self) -> None:
        _choice("beta.schedule", self.schedule, SCHEDULES)
        _choice("beta.per", self.per, PER)
        _unit("beta.start", self.start)
        _unit("beta.end", self.end)
        if self.end > self.start:
            raise ValueError(f"dagger.beta.end must be <= dagger.beta.start ({self.start}), "
                             f"got {self.end}")
        _positive(**{"beta.horizon": self.horizon, "beta.rate": self.rate,
                     "beta.threshold": self.threshold})
        if self.rate > 1.0:
            raise ValueError(f"dagger.beta.rate must be in (0, 1], got {self.rate}")
        if self.fail_steps < 0:
            raise ValueError(f"dagger.beta.fail_steps must be >= 0 (0: off), "
                             f"got {self.fail_steps}")


@dataclass
class FinetuneConfig:
    """RL fine-tuning of the DAgger student on the task's own reward (`finetune.py`).

    After the DAgger rounds, `iterations` rounds of PPO (Schulman et al. 2017): the student
    drives alone with Gaussian exploration noise of std `noise` (normalised [-1, 1] action
    units) for `steps` steps per env, a critic that reads the teacher's groups and the task
    learns the discounted return (`gamma`, GAE `lam`), and the student takes `epochs` passes
    of clipped policy-gradient steps (`clip`, minibatches of `batch_size`) plus
    `distill_weight` times the distillation MSE to the teachers' labels on the same states,
    which holds it near them. The first `warmup` iterations train the critic only.
    `episode_steps` > 0 cuts episodes after that many steps (the return is bootstrapped from
    the critic), so more of them start where the env's resets put them. 0 iterations: off.
    """

    iterations: int = 0
    steps: int = 512
    warmup: int = 10
    noise: float = 0.02
    gamma: float = 0.95
    lam: float = 0.95
    learning_rate: float = 1e-5
    critic_learning_rate: float = 3e-4
    critic_hidden: list[int] = field(default_factory=lambda: [256, 256])
    epochs: int = 4
    batch_size: int = 512
    clip: float = 0.2
    distill_weight: float = 1000.0
    episode_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "warmup", "episode_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"dagger.finetune.{name} must be >= 0, "
                                 f"got {getattr(self, name)!r}")
        _positive(**{f"finetune.{k}": getattr(self, k) for k in (
            "steps", "noise", "learning_rate", "critic_learning_rate", "epochs",
            "batch_size", "clip")})
        for name in ("gamma", "lam"):
            in_range(f"dagger.finetune.{name}", getattr(self, name), 0.0, 1.0)
        if self.distill_weight < 0:
            raise ValueError(f"dagger.finetune.distill_weight must be >= 0 (0: reward only), "
                             f"got {self.distill_weight!r}")
        if not self.critic_hidden or min(self.critic_hidden) < 1:
            raise ValueError(f"dagger.finetune.critic_hidden must list the critic's layer "
                             f"widths, e.g. [256, 256], got {self.critic_hidden!r}")
        if self.iterations and self.warmup >= self.iterations:
            raise ValueError(f"dagger.finetune.warmup ({self.warmup}) must be under "
                             f"dagger.finetune.iterations ({self.iterations}): the warm-up "
                             "iterations train the critic only")


# Keys added after runs existed: left at their defaults, run.json does not record them.
LATE_KEYS = ("rollout_workers", "learning_rate_final", "action_noise", "keep",
             "min_teacher_success", "ema_decay", "finetune")


@dataclass
class DaggerConfig:
    """On-policy distillation from many teachers, routed per environment.

    Each of `n_envs` environments holds one task (round-robin over the run's tasks, or
    apportioned by `task_weights`, one weight per task). Every visited state is labelled by
    its task's teacher (a teacher query); `max_teacher_queries` (0: no limit) ends the run.
    `teacher_groups`/`student_groups` name the observation groups each side reads (empty:
    all). A round collects `steps_per_round` steps per env, then makes `updates_per_round`
    gradient steps on the capped buffer, evaluates the student alone every `eval_every`
    rounds, and checkpoints everything. `rollout_workers` > 0 spreads the envs over that many
    rollout workers, each holding its envs and teachers (Ray actors under `executor: ray`;
    `workers.py`); 0 keeps one vector in the driver. With `learning_rate_final` > 0 the
    learning rate falls linearly from `learning_rate` in the first round to it in the last.
    With `action_noise` > 0 the executed action (teacher's or student's) gets Gaussian noise of
    that std in the normalised action space while collecting, as DART (Laskey et al. 2017)
    does: the labels stay the teachers' clean actions for the states the noise leads to.
    `keep: best` hands on the weights of the best evaluation (every `eval_every` rounds) instead
    of the last round's: by the family's own validation (`TaskFamily.validate`, e.g. the
    humanoid's imitation reward with the full command), else by the mean return of the
    evaluation episodes. For students whose closed-loop behaviour swings from round to round
    (the humanoid's heading drift). Tasks whose teacher's measured success (the teachers
    stage's check) is under `min_teacher_success` get no env: their labels would teach the
    teacher's failure, and the offline collection keeps none of their failed episodes either.
    With `ema_decay` > 0 an exponential moving average of the student's weights (Polyak
    averaging, decay per update; `distill/weight_average.py`) is the student that acts while
    collecting, is evaluated, kept and exported; the optimiser trains the raw weights.
    `finetune` (`FinetuneConfig`, off by default) then fine-tunes that student by RL on the
    task's reward, and the fine-tuned student is the one exported.
    """

    n_envs: int = 4
    vector: str = "auto"        # auto: a process pool (async) when n_envs > 1
    task_weights: list[float] = field(default_factory=list)
    teacher_groups: list[str] = field(default_factory=list)
    student_groups: list[str] = field(default_factory=list)
    beta: BetaConfig = field(default_factory=BetaConfig)
    loss: str = "mse"
    huber_delta: float = 1.0    # normalised action units
    init_log_std: float = -1.0  # Gaussian student head (KL losses), normalised units
    rounds: int = 20
    steps_per_round: int = 200
    updates_per_round: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    learning_rate_final: float = 0.0  # > 0: linear decay to it over the rounds (0: constant)
    weight_decay: float = 0.0
    action_noise: float = 0.0   # std, normalised [-1, 1] units, on executed actions (0: none)
    keep: str = "last"          # the student DAgger hands on: the last weights, or the best
    ema_decay: float = 0.0      # > 0: the student is the weights' moving average (0: off)
    buffer_size: int = 100_000
    buffer_mode: str = "fifo"
    max_teacher_queries: int = 0
    init: str = "scratch"
    eval_every: int = 1
    eval_episodes: int = 10
    rollout_workers: int = 0    # 0: one vector here; k: k workers (Ray actors: executor ray)
    min_teacher_success: float = 0.0  # tasks whose teacher's check is under it get no env
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # RL after the rounds

    def __post_init__(self) -> None:
        _choice("vector", self.vector, VECTOR)
        _choice("loss", self.loss, LOSSES)
        _choice("buffer_mode", self.buffer_mode, BUFFER_MODES)
        _choice("init", self.init, INIT)
        _choice("keep", self.keep, KEEP)
        in_range("dagger.ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)  # 0: off
        _positive(n_envs=self.n_envs, huber_delta=self.huber_delta, rounds=self.rounds,
                  steps_per_round=self.steps_per_round, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, buffer_size=self.buffer_size,
                  eval_every=self.eval_every, eval_episodes=self.eval_episodes)
        if not 0 <= self.rollout_workers <= self.n_envs:
            raise ValueError(f"dagger.rollout_workers must be between 0 (no workers: one "
                             f"vector here) and dagger.n_envs ({self.n_envs}), got "
                             f"{self.rollout_workers}")
        beta = self.beta
        if self.rollout_workers and beta.per == "episode" and beta.schedule not in (
                "constant", "on_demand"):
            raise ValueError(f"dagger.rollout_workers needs β per step, constant or "
                             f"on_demand, got a {beta.schedule!r} schedule per episode (it "
                             "would follow the episodes of every worker): set "
                             "dagger.beta.per: step or dagger.rollout_workers: 0")
        if not 0.0 <= self.min_teacher_success <= 1.0:
            raise ValueError(f"dagger.min_teacher_success is a success rate in [0, 1] (0: "
                             f"every task), got {self.min_teacher_success!r}")
        for key in ("learning_rate_final", "action_noise"):
            if getattr(self, key) < 0:
                raise ValueError(f"dagger.{key} must be >= 0 (0: off), "
                                 f"got {getattr(self, key)!r}")
        if self.updates_per_round < 0 or self.max_teacher_queries < 0:
            raise ValueError("dagger.updates_per_round and dagger.max_teacher_queries must be "
                             f">= 0, got {self.updates_per_round} and "
                             f"{self.max_teacher_queries}")
        if any(w < 0 for w in self.task_weights) or (self.task_weights
                                                     and sum(self.task_weights) <= 0):
            raise ValueError(f"dagger.task_weights must be >= 0 with a positive sum, "
                             f"got {self.task_weights}")

    def ledger_dict(self) -> dict:
        """The section as run.json records it; keys added later only when set.

        The `LATE_KEYS` came after runs existed; left at their defaults they are not
        recorded, so those runs' config hashes (and resumes) stay valid.
        """
        return asdict_without_defaults(self, LATE_KEYS)

    def learning_rate_at(self, round_index: int) -> float:
        """The learning rate of round `round_index` (0-based) of `rounds`."""
        if self.learning_rate_final <= 0 or self.rounds == 1:
            return self.learning_rate
        frac = min(1.0, round_index / (self.rounds - 1))
        return self.learning_rate + (self.learning_rate_final - self.learning_rate) * frac
