"""Consistency distillation: exact boundary, sampling shapes, falling loss, modes, ONNX path."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill_ros.distill.onestep.consistency import (ConsistencyConfig, ConsistencyDistiller,
                                                     ConsistencyGenerator)
from distill_ros.teachers.diffusion import DiffusionConfig, DiffusionPolicy, fit_diffusion
from toy_bimodal import ACT_DIM, H, OBS_DIM, bimodal_data, mode_fractions

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def teacher():
    obs, act = bimodal_data(4096)
    policy = DiffusionPolicy(DiffusionConfig(
        obs_dim=OBS_DIM, act_dim=ACT_DIM, horizon=H, n_exec=2, hidden_dim=128, n_blocks=2,
        time_embed_dim=32, prediction="sample"))
    fit_diffusion(policy, obs, act, steps=500, lr=2e-3)
    return policy.eval()


def test_boundary_condition_holds_exactly_for_any_weights(teacher):
    model = ConsistencyGenerator(teacher)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(torch.randn_like(p))           # weights far from the teacher's
        g = torch.Generator().manual_seed(0)
        a0, obs = torch.randn(64, H, ACT_DIM, generator=g), torch.randn(64, OBS_DIM, generator=g)
        out = model.consistency(a0, torch.zeros(64, dtype=torch.long), obs)
    assert torch.equal(out, a0 / model.alpha[0])
    assert model.c_skip[0] == 1.0 and model.c_out[0] == 0.0
    assert model.c_skip[-1] < 1e-3 and model.c_out[-1] > 0.49  # top: the network decides


def test_one_and_two_step_sampling_shapes_and_range(teacher):
    model = ConsistencyGenerator(teacher)
    obs, z = torch.randn(5, OBS_DIM), torch.randn(5, H, ACT_DIM)
    with torch.no_grad():
        one, two = model(obs, z), model.two_step(obs, z, torch.randn(5, H, ACT_DIM), 30)
    assert one.shape == two.shape == (5, H, ACT_DIM)
    assert one.abs().max() <= 1.0 and two.abs().max() <= 1.0
    assert not torch.equal(one, two)


def test_distillation_moves_the_mode_averaging_start_towards_the_modes(teacher):
    """At init f_θ(z, T-1) is the teacher's x̂_0 head: the data mean, between the modes.

    Consistency distillation must move the one-step samples out towards the modes; CD is
    slow (OneDP's point), so 150 updates are asked to halve the in-between share, not to
    finish the job.
    """
    obs, act = bimodal_data(4096, seed=1)
    distiller = ConsistencyDistiller(teacher, ConsistencyConfig(lr=3e-4, seed=0))
    g = torch.Generator().manual_seed(2)
    test_obs, z = torch.randn(512, OBS_DIM, generator=g), torch.randn(512, H, ACT_DIM, generator=g)
    with torch.no_grad():
        before = mode_fractions(distiller.get_policy()(test_obs, z))
    assert before[2] > 0.5, before
    losses = []
    for _ in range(150):
        idx = torch.randint(0, len(obs), (256,), generator=g)
        losses.append(distiller.update(obs[idx], act[idx])["loss_consistency"])
    assert np.all(np.isfinite(losses))
    with torch.no_grad():
        pos, neg, mid = mode_fractions(distiller.get_policy()(test_obs, z))
        spread = distiller.get_policy()(test_obs, z).mean(dim=(1, 2)).abs().mean()
    assert mid < 0.5 * before[2] and spread > 0.3, (before, (pos, neg, mid), spread)


def test_onnx_export_takes_noise_and_matches_torch(teacher, tmp_path):
    from distill_ros.distill.onestep.distiller import OneStepGenerator

    model = ConsistencyGenerator(teacher).eval()
    path = tmp_path / "cd.onnx"
    OneStepGenerator.as_onnx(model, str(path))       # the OneDP generator's export path
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((7, OBS_DIM)).astype(np.float32)
    z = rng.standard_normal((7, H, ACT_DIM)).astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"obs": obs, "noise": z})[0]
    ref = model(torch.from_numpy(obs), torch.from_numpy(z)).detach().numpy()
    assert np.max(np.abs(got - ref)) < 1e-4


def test_save_load_resumes_exactly_and_bad_settings_are_refused(teacher, tmp_path):
    obs, act = bimodal_data(512, seed=3)
    a = ConsistencyDistiller(teacher, ConsistencyConfig(seed=4))
    a.update(obs[:64], act[:64])
    a.save(str(tmp_path / "cd.pt"))
    b = ConsistencyDistiller(teacher, ConsistencyConfig(seed=4))
    b.load(str(tmp_path / "cd.pt"))
    la, lb = a.update(obs[64:128], act[64:128]), b.update(obs[64:128], act[64:128])
    assert la == lb and b.num_updates == 2
    for bad, match in (({"ema": 1.0}, "ema"), ({"grid_steps": 0}, "grid_steps"),
                       ({"mid_frac": 0.0}, "mid_frac"), ({"lr": 0.0}, "lr")):
        with pytest.raises(ValueError, match=match):
            ConsistencyConfig(**bad)
