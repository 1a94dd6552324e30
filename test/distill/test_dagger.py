"""DAgger's parts, pure and fast: β schedules, on-demand takeover, the capped buffer, losses."""

import numpy as np
import pytest
import torch

from distill_ros.distill.dagger.beta import BetaMixer, OnDemandGate, beta_value, make_mixer
from distill_ros.distill.dagger.buffer import ReplayBuffer
from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.losses import (GaussianHead, forward_kl, gaussian_kl,
                                               make_loss, reverse_kl)

# -- β schedules -------------------------------------------------------------------------------


def test_schedule_values_follow_their_formulas():
    const = BetaConfig(schedule="constant", start=0.7)
    assert [beta_value(const, t) for t in (0, 10, 10**6)] == [0.7, 0.7, 0.7]
    lin = BetaConfig(schedule="linear", start=1.0, end=0.2, horizon=100)
    assert [beta_value(lin, t) for t in (0, 50, 100, 500)] == pytest.approx([1.0, 0.6, 0.2, 0.2])
    exp = BetaConfig(schedule="exponential", start=0.8, end=0.1, rate=0.5)
    assert [beta_value(exp, t) for t in (0, 1, 2, 3, 10)] == pytest.approx(
        [0.8, 0.4, 0.2, 0.1, 0.1])
    with pytest.raises(ValueError, match="on_demand"):
        beta_value(BetaConfig(schedule="on_demand"), 0)


def test_per_step_mixing_executes_the_teacher_at_rate_beta():
    cfg = BetaConfig(schedule="constant", start=0.3, per="step")
    mixer = BetaMixer(cfg, n_envs=50, seed=0)
    zeros = np.zeros((50, 2))
    frac = np.mean([mixer.teacher_mask(zeros, zeros).mean() for _ in range(200)])
    assert abs(frac - 0.3) < 0.02, f"teacher executed in {frac:.3f} of steps, β is 0.3"
    assert mixer.steps == 50 * 200


def test_per_episode_mixing_keeps_one_actor_per_episode_and_decays_per_episode():
    cfg = BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=10, per="episode")
    mixer = BetaMixer(cfg, n_envs=4, seed=1)
    z = np.zeros((4, 1))
    first = mixer.teacher_mask(z, z)
    assert first.all(), "β = 1 at the start: the teacher drives every first episode"
    for _ in range(5):   # no episode ends: the same actor keeps the env, β does not move
        assert (mixer.teacher_mask(z, z) == first).all()
    assert mixer.beta() == 1.0
    mixer.end_episodes(np.array([True, True, True, True]), np.zeros(4, bool))
    assert mixer.episodes == 4 and mixer.beta() == pytest.approx(0.6)
    for _ in range(2):
        mixer.end_episodes(np.ones(4, bool), np.zeros(4, bool))
    assert mixer.beta() == 0.0
    mixer.end_episodes(np.ones(4, bool), np.zeros(4, bool))
    assert not mixer.teacher_mask(z, z).any(), "β = 0: the student drives every episode"


def test_mixer_state_round_trip_continues_the_same_coins():
    cfg = BetaConfig(schedule="exponential", start=0.9, end=0.05, rate=0.99)
    a = BetaMixer(cfg, 8, seed=3)
    z = np.zeros((8, 1))
    for _ in range(10):
        a.teacher_mask(z, z)
    b = BetaMixer(cfg, 8, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(20):
        assert (a.teacher_mask(z, z) == b.teacher_mask(z, z)).all()
    assert a.beta() == b.beta()


def test_on_demand_never_executes_the_teacher_when_the_student_agrees():
    gate = make_mixer(BetaConfig(schedule="on_demand", threshold=0.3, fail_steps=0), 6, 0)
    assert isinstance(gate, OnDemandGate)
    rng = np.random.default_rng(0)
    for _ in range(300):
        teacher = rng.uniform(-1, 1, (6, 3))
        # the student within the threshold: a random offset of L2 norm < 0.3
        offset = rng.normal(size=(6, 3))
        offset *= rng.uniform(0, 0.299, (6, 1)) / np.linalg.norm(offset, axis=1, keepdims=True)
        assert not gate.teacher_mask(teacher + offset, teacher).any()
        gate.end_episodes(rng.random(6) < 0.1, np.zeros(6, bool))
    assert gate.teacher_steps == 0 and gate.takeovers == {"distance": 0, "stall": 0}


def test_on_demand_takes_over_only_while_the_student_strays_and_counts_takeovers():
    gate = OnDemandGate(BetaConfig(schedule="on_demand", threshold=0.5), 2, 0)
    t = np.zeros((2, 2))
    far, near = np.array([[0.0, 0.0], [0.6, 0.0]]), np.array([[0.1, 0.0], [0.1, 0.0]])
    seq = [gate.teacher_mask(s, t).tolist() for s in (far, far, near, far)]
    assert seq == [[False, True], [False, True], [False, False], [False, True]]
    assert gate.takeovers["distance"] == 2, "two separate takeovers in env 1"
    assert gate.teacher_steps == 3


def test_on_demand_teacher_finishes_an_episode_the_student_stalls_in():
    gate = OnDemandGate(BetaConfig(schedule="on_demand", threshold=0.5, fail_steps=3), 2, 0)
    a = np.zeros((2, 2))             # the student agrees with the teacher throughout
    masks = [gate.teacher_mask(a, a).tolist() for _ in range(5)]
    assert masks == [[False, False]] * 3 + [[True, True]] * 2
    assert gate.takeovers == {"distance": 0, "stall": 2}
    gate.end_episodes(np.array([True, False]), np.zeros(2, bool))
    assert gate.teacher_mask(a, a).tolist() == [False, True], "a new episode restarts the count"


def test_config_errors_name_the_field_and_value():
    with pytest.raises(ValueError, match=r"dagger.beta.schedule must be one of .*'cosine'"):
        BetaConfig(schedule="cosine")
    with pytest.raises(ValueError, match=r"dagger.beta.end must be <= .*0.5.*got 0.9"):
        BetaConfig(start=0.5, end=0.9)
    with pytest.raises(ValueError, match=r"dagger.beta.rate must be in \(0, 1\], got 1.5"):
        BetaConfig(rate=1.5)
    with pytest.raises(ValueError, match=r"dagger.loss must be one of .*got 'l1'"):
        DaggerConfig(loss="l1")
    with pytest.raises(ValueError, match=r"dagger.buffer_mode must be one of .*got 'lifo'"):
        DaggerConfig(buffer_mode="lifo")


def test_learning_rate_decay_and_action_noise_are_checked_and_recorded_only_when_set():
    cfg = DaggerConfig(rounds=5, learning_rate=1e-3, learning_rate_final=2e-4)
    assert [cfg.learning_rate_at(r) for r in range(5)] == pytest.approx(
        [1e-3, 8e-4, 6e-4, 4e-4, 2e-4])
    assert cfg.ledger_dict()["learning_rate_final"] == 2e-4
    const = DaggerConfig(rounds=5, learning_rate=1e-3)
    assert [const.learning_rate_at(r) for r in range(5)] == [1e-3] * 5
    assert "learning_rate_final" not in const.ledger_dict(), "older runs' hashes would change"
    with pytest.raises(ValueError, match=r"dagger.learning_rate_final must be >= 0.*-0.1"):
        DaggerConfig(learning_rate_final=-0.1)
    with pytest.raises(ValueError, match=r"dagger.action_noise must be >= 0.*-0.2"):
        DaggerConfig(action_noise=-0.2)
    assert "action_noise" not in const.ledger_dict()

# -- replay buffer ------------------------------------------------------------------------------


def _buffer(cap, mode="fifo", seed=0, gaussian=False):
    groups = {"obs": ((3,), np.float32), "cmd": ((2,), np.float32)}
    return ReplayBuffer(cap, groups, act_dim=2, gaussian=gaussian, mode=mode, seed=seed)


def _offer(buf, start, n):
    ids = np.arange(start, start + n, dtype=np.float32)
    obs = {"obs": np.repeat(ids[:, None], 3, 1), "cmd": np.repeat(ids[:, None], 2, 1)}
    std = np.ones((n, 2), np.float32) if buf.std is not None else None
    buf.add(obs, np.repeat(ids[:, None], 2, 1), std, np.zeros(n, np.int32))


@pytest.mark.parametrize("mode", ["fifo", "reservoir"])
def test_buffer_cap_holds_and_memory_is_fixed(mode):
    buf = _buffer(100, mode)
    arrays = [buf.obs["obs"], buf.obs["cmd"], buf.mean, buf.task]
    nbytes = buf.nbytes
    for k in range(50):
        _offer(buf, 7 * k, 7)
        assert len(buf) == min(100, 7 * (k + 1))
    assert buf.seen == 350 and len(buf) == 100
    assert buf.nbytes == nbytes and all(a is b for a, b in
                                        zip(arrays, [buf.obs["obs"], buf.obs["cmd"], buf.mean,
                                                     buf.task])), "arrays were reallocated"
    # every stored row is one offered transition, consistent across groups and labels
    assert (buf.obs["obs"][:, 0] == buf.mean[:, 0]).all()
    assert (buf.obs["cmd"][:, 1] == buf.mean[:, 1]).all()


def test_fifo_keeps_the_newest():
    buf = _buffer(10)
    _offer(buf, 0, 7)
    _offer(buf, 7, 8)
    assert sorted(buf.mean[:, 0].astype(int)) == list(range(5, 15))


def test_reservoir_is_uniform_over_everything_offered_and_seeded():
    counts = np.zeros(1000)
    for seed in range(200):
        buf = _buffer(100, "reservoir", seed)
        for k in range(0, 1000, 50):
            _offer(buf, k, 50)
        counts[buf.mean[:, 0].astype(int)] += 1
    # each item is kept with probability 100/1000; over 200 runs its count is ~Bin(200, 0.1)
    early, late = counts[:500].mean(), counts[500:].mean()
    assert abs(early - 20) < 1.5 and abs(late - 20) < 1.5, (early, late)
    assert counts.std() < 7, f"per-item counts spread {counts.std():.1f}, Bin(200,.1) has 4.2"
    a, b = _buffer(50, "reservoir", 5), _buffer(50, "reservoir", 5)
    for buf in (a, b):
        for k in range(0, 400, 40):
            _offer(buf, k, 40)
    assert np.array_equal(a.mean, b.mean), "same seed, different reservoir"


def test_buffer_save_load_round_trip(tmp_path):
    buf = _buffer(20, "reservoir", 1, gaussian=True)
    _offer(buf, 0, 35)
    buf.save(tmp_path / "b.pt")
    back = _buffer(20, "reservoir", 9, gaussian=True)
    back.load(tmp_path / "b.pt")
    assert back.seen == 35 and len(back) == 20
    assert np.array_equal(back.obs["cmd"], buf.obs["cmd"]) and np.array_equal(back.std, buf.std)
    assert np.array_equal(back.sample(64), buf.sample(64)), "RNG state not restored"
    with pytest.raises(ValueError, match="capacity 20.*buffer_size"):
        _buffer(30, "reservoir", gaussian=True).load(tmp_path / "b.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["b.pt"], "temporary file left behind"

# -- losses -------------------------------------------------------------------------------------


def test_gaussian_kl_matches_the_closed_form_and_torch():
    g = torch.Generator().manual_seed(0)
    mu_p, mu_q = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g)
    sp, sq = torch.rand(16, 3, generator=g) + 0.2, torch.rand(16, 3, generator=g) + 0.2
    ours = gaussian_kl(mu_p, sp, mu_q, sq)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu_p, sp),
                                            torch.distributions.Normal(mu_q, sq)).sum(-1).mean()
    assert torch.allclose(ours, ref, atol=1e-6)
    # 1-D by hand: KL(N(0,1) || N(1,2)) = log 2 + (1 + 1) / 8 - 1/2
    one = gaussian_kl(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 2 * torch.ones(1, 1))
    assert one.item() == pytest.approx(np.log(2) + 2 / 8 - 0.5, abs=1e-6)


def test_forward_and_reverse_kl_are_the_two_directions():
    s_mu, t_mu = torch.tensor([[0.2, -0.1]]), torch.tensor([[0.0, 0.3]])
    s_sd, t_sd = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.1, 0.3]])
    fwd = forward_kl(s_mu, t_mu, student_std=s_sd, teacher_std=t_sd)
    rev = reverse_kl(s_mu, t_mu, student_std=s_sd, teacher_std=t_sd)
    assert fwd.item() == pytest.approx(gaussian_kl(t_mu, t_sd, s_mu, s_sd).item())
    assert rev.item() == pytest.approx(gaussian_kl(s_mu, s_sd, t_mu, t_sd).item())
    assert fwd.item() != pytest.approx(rev.item())
    same = forward_kl(t_mu, t_mu, student_std=t_sd, teacher_std=t_sd)
    assert same.item() == pytest.approx(0.0, abs=1e-7)


def test_mse_and_huber_closed_forms():
    s, t = torch.tensor([[0.0, 3.0]]), torch.tensor([[0.5, 0.0]])
    assert make_loss("mse")(s, t).item() == pytest.approx((0.25 + 9.0) / 2)
    # huber, delta 1: 0.5 x^2 inside, delta (|x| - delta/2) outside
    assert make_loss("huber", 1.0)(s, t).item() == pytest.approx((0.125 + 2.5) / 2)


def test_kl_trained_gaussian_head_matches_the_teacher_std():
    head = GaussianHead(2, init_log_std=0.0)
    mean = torch.zeros(64, 2)
    t_std = torch.tensor([0.2, 0.6]).expand(64, 2)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(400):
        loss = forward_kl(mean, mean, student_std=head(mean), teacher_std=t_std)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(torch.exp(head.log_std), torch.tensor([0.2, 0.6]), atol=0.01)

# -- Gaussian teachers ---------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_sb3_teacher_distribution_mean_is_its_action(algo):
    import gymnasium as gym
    from stable_baselines3 import PPO, SAC

    from distill_ros.distill.dagger.routing import teacher_gaussian
    from distill_ros.spec import Spec
    from distill_ros.teachers.sb3 import SB3Teacher

    act = Spec(("vx", "gripper"), low=(-2.0, 0.0), high=(2.0, 0.1))
    env = gym.make("Pendulum-v1")
    env.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)   # normalised actions
    cls = {"ppo": PPO, "sac": SAC}[algo]
    model = cls("MlpPolicy", env, seed=0, device="cpu",
                policy_kwargs={"log_std_init": -0.5} if algo == "ppo" else {})
    teacher = SB3Teacher(model, act, np.zeros(3, np.float32), np.full(3, 4.0, np.float32))
    obs = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    mean, std = teacher_gaussian(teacher, obs)
    assert np.allclose(mean, teacher.act(obs), atol=1e-5), "mean differs from the action"
    span = np.array([4.0, 0.1])
    x, _ = model.policy.obs_to_tensor(obs / 2.0)
    if algo == "ppo":    # Gaussian in [-1, 1] units: std exp(log_std), unscaled by span / 2
        assert np.allclose(std, np.exp(-0.5) * span / 2, rtol=1e-5)
    else:                # tanh-squashed: delta method at the pre-tanh mean
        mu, log_std, _ = model.policy.actor.get_action_dist_params(x)
        want = (torch.exp(log_std) * (1 - torch.tanh(mu) ** 2)).detach().numpy() * span / 2
        assert np.allclose(std, want, rtol=1e-4)


def test_kl_loss_refuses_teachers_without_a_std():
    from distill_ros.distill.dagger.routing import TeacherRouter

    class Deterministic:
        def act(self, obs):
            return np.zeros((len(obs), 2), np.float32)

    router = TeacherRouter(["a"], lambda task: Deterministic(), act_dim=2, gaussian=True)
    with pytest.raises(ValueError, match="task 'a' gives actions without a std.*mse or huber"):
        router.label(np.zeros((1, 3), np.float32))
