"""Who acts in each environment: the teacher with probability β, or the student on demand.

DAgger (Ross et al., 2011) executes the mixture π_i = β_i π* + (1 - β_i) π̂_i, with β
decaying over training. `BetaMixer` implements that per step (a fresh coin for every env
and step) or per episode (one coin per env and episode). `OnDemandGate` implements
guidance on demand: the student always acts, and the teacher takes over only for steps where
the student's action strays more than a threshold from the teacher's, or once the student has
driven an episode for k steps without solving it. Both take actions in the normalised
[-1, 1] action space and return a boolean mask, true where the teacher's action is executed.
"""

from __future__ import annotations

import numpy as np

from distill_ros.distill.dagger.config import BetaConfig


def beta_value(cfg: BetaConfig, t: int) -> float:
    """β after `t` units (steps or episodes) of collection.

    constant: β = start. linear: from start to end over `horizon` units, then end.
    exponential: β = max(end, start · rate^t) (DAgger's β_i = p^i with p = rate).
    """
    if cfg.schedule == "constant":
        return cfg.start
    if cfg.schedule == "linear":
        frac = min(1.0, t / cfg.horizon)
        return cfg.start + (cfg.end - cfg.start) * frac
    if cfg.schedule == "exponential":
        return max(cfg.end, cfg.start * cfg.rate ** t)
    raise ValueError(f"dagger.beta.schedule {cfg.schedule!r} has no β value; on_demand "
                     "decides per step from the actions (OnDemandGate)")


class BetaMixer:
    """β-schedule mixing for `n_envs` environments, seeded, with resumable state."""

    def __init__(self, cfg: BetaConfig, n_envs: int, seed: int) -> None:
        self.cfg, self.n_envs = cfg, n_envs
        self.rng = np.random.default_rng(seed)
        self.steps = 0          # env steps mixed so far (all envs)
        self.episodes = 0       # episodes finished so far (all envs)
        self.teacher_steps = 0  # steps in which the teacher's action was executed
        self._episode_coin = np.zeros(n_envs, bool)
        self.start_episodes(np.ones(n_envs, bool))

    def beta(self) -> float:
        """The current β, on the clock the config names (`per`)."""
        return beta_value(self.cfg, self.steps if self.cfg.per == "step" else self.episodes)

    def start_episodes(self, mask: np.ndarray) -> None:
        """Draw who acts for the episodes starting in envs `mask` (per-episode mixing)."""
        if self.cfg.per == "episode":
            coins = self.rng.random(self.n_envs) < self.beta()
            self._episode_coin = np.where(mask, coins, self._episode_coin)

    def teacher_mask(self, student: np.ndarray, teacher: np.ndarray) -> np.ndarray:
        """(n_envs,) bool: where the teacher's action is executed this step."""
        if self.cfg.per == "step":
            mask = self.rng.random(self.n_envs) < self.beta()
        else:
            mask = self._episode_coin.copy()
        self.steps += self.n_envs
        self.teacher_steps += int(mask.sum())
        return mask

    def end_episodes(self, done: np.ndarray, success: np.ndarray) -> None:
        """Advance the episode clock by the episodes that ended; draw coins for the next ones."""
        del success  # β schedules do not look at outcomes
        self.episodes += int(done.sum())
        self.start_episodes(done)

    def draw_round(self, steps: int) -> np.ndarray:
        """Every coin of a round of `steps` vector steps, for rollout workers to replay.

        The draws, and their order, are those of `collect_round` on one vector: per step, one
        coin per env and step (the step counters advance here); per episode, one row at the
        round's start and one after each step (β must then be constant: it would follow the
        episodes that end across all workers).
        """
        if self.cfg.per == "step":
            rows = [self.teacher_mask(None, None) for _ in range(steps)]
            return np.stack(rows) if rows else np.zeros((0, self.n_envs), bool)
        assert self.cfg.schedule == "constant", "DaggerConfig refuses this with workers"
        return np.stack([self.rng.random(self.n_envs) < self.beta() for _ in range(steps + 1)])

    def merge_round(self, parts: list[dict], steps: int) -> None:
        """Add the workers' counts of a round whose coins `draw_round` drew."""
        self.episodes += sum(p["episodes"] for p in parts)
        if self.cfg.per == "episode":
            self.steps += self.n_envs * steps
            self.teacher_steps += sum(p["teacher_steps"] for p in parts)
            self._episode_coin = np.concatenate([p["episode_coin"] for p in parts])

    def stats(self) -> dict[str, float]:
        """Figures for the progress bar and the logs."""
        return {"beta": self.beta(), "teacher_steps": self.teacher_steps,
                "teacher_fraction": self.teacher_steps / max(1, self.steps)}

    def state_dict(self) -> dict:
        """Everything needed to continue the same sequence of coins after a resume."""
        return {"rng": self.rng.bit_generator.state, "steps": self.steps,
                "episodes": self.episodes, "teacher_steps": self.teacher_steps,
                "episode_coin": self._episode_coin.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        self.steps, self.episodes = int(state["steps"]), int(state["episodes"])
        self.teacher_steps = int(state["teacher_steps"])
        self._episode_coin = np.asarray(state["episode_coin"], bool).copy()


class OnDemandGate:
    """The student acts; the teacher takes over while the student strays or stalls.

    A step is taken over when the L2 distance between the student's and the teacher's
    normalised actions exceeds `threshold` (cause "distance"), or when the student has
    driven the current episode for `fail_steps` steps without success (cause "stall": the
    teacher then finishes that episode). Takeovers (a switch from student to teacher) and
    teacher-executed steps are counted per cause.
    """

    def __init__(self, cfg: BetaConfig, n_envs: int, seed: int) -> None:
        del seed  # deterministic: nothing is drawn
        self.cfg, self.n_envs = cfg, n_envs
        self.steps = 0
        self.teacher_steps = 0
        self.takeovers = {"distance": 0, "stall": 0}
        self.episode_steps = np.zeros(n_envs, np.int64)
        self._stalled = np.zeros(n_envs, bool)
        self._prev = np.zeros(n_envs, bool)

    def teacher_mask(self, student: np.ndarray, teacher: np.ndarray) -> np.ndarray:
        """(n_envs,) bool: where the teacher's action is executed this step."""
        far = np.linalg.norm(np.asarray(student) - np.asarray(teacher), axis=-1) \
            > self.cfg.threshold
        if self.cfg.fail_steps > 0:
            self._stalled |= self.episode_steps >= self.cfg.fail_steps
        mask = far | self._stalled
        started = mask & ~self._prev
        self.takeovers["stall"] += int((started & self._stalled).sum())
        self.takeovers["distance"] += int((started & ~self._stalled).sum())
        self._prev = mask
        self.episode_steps += 1
        self.steps += self.n_envs
        self.teacher_steps += int(mask.sum())
        return mask

    def end_episodes(self, done: np.ndarray, success: np.ndarray) -> None:
        """Reset the per-episode stall counters of the envs whose episode ended."""
        del success  # the episode ended either way; the next one starts with the student
        self.episode_steps[done] = 0
        self._stalled[done] = False
        self._prev[done] = False

    def start_episodes(self, mask: np.ndarray) -> None:
        """Fresh episodes in envs `mask` (after a reset) start with the student in control."""
        self.end_episodes(mask, np.zeros_like(mask))

    def draw_round(self, steps: int) -> None:
        """Nothing to draw: each rollout worker gates its own envs (see `BetaMixer`)."""
        del steps

    def merge_round(self, parts: list[dict], steps: int) -> None:
        """Add the counters of the workers' gates."""
        del steps
        self.steps += sum(p["steps"] for p in parts)
        self.teacher_steps += sum(p["teacher_steps"] for p in parts)
        for cause in self.takeovers:
            self.takeovers[cause] += sum(p["takeovers"][cause] for p in parts)

    def round_counts(self) -> dict:
        """What `merge_round` adds up (a worker's own gate)."""
        return {"steps": self.steps, "teacher_steps": self.teacher_steps,
                "takeovers": dict(self.takeovers)}

    def stats(self) -> dict[str, float]:
        """Figures for the progress bar and the logs."""
        return {"teacher_steps": self.teacher_steps,
                "teacher_fraction": self.teacher_steps / max(1, self.steps),
                "takeovers_distance": self.takeovers["distance"],
                "takeovers_stall": self.takeovers["stall"]}

    def state_dict(self) -> dict:
        """Counters (per-episode state is rebuilt when the next round resets its envs)."""
        return {"steps": self.steps, "teacher_steps": self.teacher_steps,
                "takeovers": dict(self.takeovers)}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of `state_dict`."""
        self.steps, self.teacher_steps = int(state["steps"]), int(state["teacher_steps"])
        self.takeovers = dict(state["takeovers"])


class ReplayedCoins:
    """A rollout worker's mixer: the coins of its envs that the driver's `BetaMixer` drew."""

    def __init__(self, per_step: bool, rows: np.ndarray) -> None:
        self.per_step, self.rows, self.next = per_step, rows, 0
        self.teacher_steps = 0
        self.episode_coin = np.zeros(rows.shape[1], bool)

    def start_episodes(self, mask: np.ndarray) -> None:
        """Per episode: the next row's coins for the episodes starting in `mask`."""
        if not self.per_step:
            self.episode_coin = np.where(mask, self.rows[self.next], self.episode_coin)
            self.next += 1

    def teacher_mask(self, student: np.ndarray, teacher: np.ndarray) -> np.ndarray:
        """Where the teacher acts this step: this step's coins, or the episodes' coins."""
        if self.per_step:
            mask = self.rows[self.next].copy()
            self.next += 1
        else:
            mask = self.episode_coin.copy()
        self.teacher_steps += int(mask.sum())
        return mask

    def end_episodes(self, done: np.ndarray, success: np.ndarray) -> None:
        """Per episode: coins for the episodes that start after this step."""
        self.start_episodes(done)

    def round_counts(self) -> dict:
        """What `BetaMixer.merge_round` adds up (episodes come from the round's stats)."""
        return {"teacher_steps": self.teacher_steps, "episode_coin": self.episode_coin}


def make_mixer(cfg: BetaConfig, n_envs: int, seed: int) -> BetaMixer | OnDemandGate:
    """The mixer the config's `schedule` names."""
    if cfg.schedule == "on_demand":
        return OnDemandGate(cfg, n_envs, seed)
    return BetaMixer(cfg, n_envs, seed)
