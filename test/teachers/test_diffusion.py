"""Tests of the diffusion policy teacher: schedules, bimodal fit, samplers, state_dict."""

import copy

import pytest
import torch

from distill_ros.teachers.diffusion import DiffusionConfig, DiffusionPolicy, fit_diffusion
from distill_ros.teachers.diffusion_schedule import cosine_alpha_bar, make_schedule
from toy_bimodal import ACT_DIM, H, OBS_DIM, bimodal_data, mode_fractions

torch.set_num_threads(1)


def tiny_cfg(**kw) -> DiffusionConfig:
    base = dict(obs_dim=OBS_DIM, act_dim=ACT_DIM, horizon=H, n_exec=2, hidden_dim=128,
                n_blocks=2, time_embed_dim=32)
    base.update(kw)
    return DiffusionConfig(**base)


@pytest.fixture(scope="module")
def trained():
    obs, act = bimodal_data(4096)
    policy = DiffusionPolicy(tiny_cfg())
    losses = fit_diffusion(policy, obs, act, steps=500, lr=2e-3)
    return policy, losses


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_closed_forms_match_direct_computation(kind):
    T = 100
    s = make_schedule(kind, T)
    prod, ab_loop = 1.0, []
    for t in range(T):
        prod *= 1.0 - s.betas[t].item()
        ab_loop.append(prod)
    torch.testing.assert_close(s.alphas_cumprod, torch.tensor(ab_loop, dtype=torch.float64),
                               msg=f"{kind}: ᾱ_t differs from the loop product of (1 - β)")
    assert s.alphas_cumprod[-1] < 1e-4, f"{kind}: ᾱ_T={s.alphas_cumprod[-1]} is not near noise"
    for t in range(1, T):
        # Posterior of x_{t-1} by Gaussian conjugacy of q(x_{t-1}|x_0) and q(x_t|x_{t-1}).
        ab_prev, a, b = ab_loop[t - 1], 1.0 - s.betas[t].item(), s.betas[t].item()
        var = 1.0 / (1.0 / (1.0 - ab_prev) + a / b)
        c0, ct = var * ab_prev ** 0.5 / (1.0 - ab_prev), var * a ** 0.5 / b
        for name, got, want in (("posterior_variance", s.posterior_variance[t], var),
                                ("posterior_mean_coef_x0", s.posterior_mean_coef_x0[t], c0),
                                ("posterior_mean_coef_xt", s.posterior_mean_coef_xt[t], ct)):
            assert abs(got.item() - want) <= 1e-9 + 1e-7 * abs(want), \
                f"{kind}: {name}[{t}] = {got.item()}, direct computation gives {want}"
    assert s.posterior_variance[0] == 0.0, "β̃_0 must be 0 (ᾱ_{-1} = 1)"
    if kind == "cosine":  # unclipped steps follow ᾱ(t) = f(t)/f(0) exactly
        closed = cosine_alpha_bar(torch.arange(1, T, dtype=torch.float64), T)
        torch.testing.assert_close(s.alphas_cumprod[:-1], closed,
                                   msg="cosine ᾱ_t differs from f(t+1)/f(0)")


def test_config_rejects_bad_values_with_reasons():
    with pytest.raises(ValueError,
                       match=r"schedule must be one of \('cosine', 'linear'\), got 'quad'"):
        tiny_cfg(schedule="quad")
    with pytest.raises(ValueError, match=r"n_exec must be <= horizon \(4\), got 5"):
        tiny_cfg(n_exec=5)
    with pytest.raises(ValueError, match="prediction must be one of"):
        tiny_cfg(prediction="v")
    with pytest.raises(ValueError, match="obs_history must be a positive integer, got 0"):
        tiny_cfg(obs_history=0)


def test_loss_falls(trained):
    _, losses = trained
    # x_0 prediction of a bimodal target has a floor (at large t the sign is unknowable)
    first, last = sum(losses[:5]) / 5, sum(losses[-50:]) / 50
    assert last < 0.5 * first, f"DDPM loss did not fall: {first:.3f} -> {last:.3f}"


@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 10)])
def test_teacher_reproduces_both_modes(trained, sampler, steps):
    policy, _ = trained
    obs = torch.randn(512, OBS_DIM, generator=torch.Generator().manual_seed(5))
    chunks = policy.sample(obs, steps=steps, sampler=sampler,
                           generator=torch.Generator().manual_seed(1))
    assert chunks.shape == (512, H, ACT_DIM)
    assert chunks.abs().max() <= 1.0, "samples must be clipped to [-1, 1]"
    pos, neg, mid = mode_fractions(chunks)
    assert pos > 0.35 and neg > 0.35, f"{sampler}: mode fractions +{pos:.2f} / -{neg:.2f}"
    assert mid < 0.05, f"{sampler}: {mid:.2f} of samples fall between the modes"


def test_sampling_is_seeded_and_validates_input(trained):
    policy, _ = trained
    obs = torch.randn(4, OBS_DIM)
    a = policy.sample(obs, sampler="ddim", generator=torch.Generator().manual_seed(3))
    b = policy.sample(obs, sampler="ddim", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b), "same generator seed must give the same samples"
    assert policy.act(obs).shape == (4, 2, ACT_DIM), "act returns the n_exec executed steps"
    with pytest.raises(ValueError, match=r"obs must have shape .* = \(B, 3\), got \(4, 5\)"):
        policy.sample(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="use sampler='ddim' for fewer steps"):
        policy.sample(obs, steps=10, sampler="ddpm")


def test_state_dict_round_trip_and_seeded_init(trained):
    policy, _ = trained
    fresh = DiffusionPolicy(tiny_cfg(seed=1))
    same_seed = DiffusionPolicy(tiny_cfg(seed=1))
    for (name, p), q in zip(fresh.state_dict().items(), same_seed.state_dict().values()):
        assert torch.equal(p, q), f"seeded init differs at {name}"
    fresh.load_state_dict(copy.deepcopy(policy.state_dict()))
    obs = torch.randn(8, OBS_DIM)
    a = policy.sample(obs, generator=torch.Generator().manual_seed(2))
    b = fresh.sample(obs, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b), "a policy loaded from state_dict must sample identically"


def test_epsilon_prediction_and_history_shapes():
    cfg = tiny_cfg(prediction="epsilon", obs_history=2, schedule="linear", hidden_dim=32)
    policy = DiffusionPolicy(cfg)
    obs, act = torch.randn(16, 2 * OBS_DIM), torch.rand(16, H, ACT_DIM) * 2 - 1
    loss = policy.loss(obs, act)
    assert loss.ndim == 0 and torch.isfinite(loss), "loss must be a finite scalar"
    x_t, t = torch.randn(16, H, ACT_DIM), torch.randint(0, 100, (16,))
    x0, eps = policy.predict_x0_eps(x_t, t, obs)
    torch.testing.assert_close(policy.q_sample(x0, t, eps), x_t, atol=1e-4, rtol=1e-4,
                               msg="x̂_0 and ε̂ must reconstruct x_t")
