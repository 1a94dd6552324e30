"""Tests of OneDP distillation: mode coverage, teacher untouched, seeding, save/load, ONNX."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from distill_ros.distill.onestep.distiller import OneStepConfig, OneStepDistiller
from distill_ros.teachers.diffusion import DiffusionConfig, DiffusionPolicy, fit_diffusion
from toy_bimodal import (ACT_DIM, H, MODE, OBS_DIM, bimodal_data, conditional_data,
                         follows_obs, mode_fractions)

torch.set_num_threads(1)


def fit_teacher(data) -> DiffusionPolicy:
    obs, act = data(4096)
    policy = DiffusionPolicy(DiffusionConfig(
        obs_dim=OBS_DIM, act_dim=ACT_DIM, horizon=H, n_exec=2, hidden_dim=128, n_blocks=2,
        time_embed_dim=32))
    fit_diffusion(policy, obs, act, steps=500, lr=2e-3)
    return policy


@pytest.fixture(scope="module")
def teacher():
    return fit_teacher(bimodal_data)


@pytest.fixture(scope="module")
def cond_teacher():
    return fit_teacher(conditional_data)


def distill(teacher: DiffusionPolicy, cfg: OneStepConfig, updates: int,
            data=bimodal_data) -> OneStepDistiller:
    obs, _ = data(4096, seed=1)
    g = torch.Generator().manual_seed(3 + cfg.seed)
    distiller = OneStepDistiller(teacher, cfg)
    for _ in range(updates):
        logs = distiller.update(obs[torch.randint(0, obs.shape[0], (256,), generator=g)])
    assert all(np.isfinite(v) for v in logs.values()), f"non-finite logs {logs}"
    return distiller


def eval_inputs(n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return torch.randn(n, OBS_DIM, generator=g), torch.randn(n, H, ACT_DIM, generator=g)


def assert_same_state(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: different keys"
    for name in a:
        assert torch.equal(a[name], b[name]), f"{what}: tensor {name} differs"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stochastic_generator_covers_both_modes_and_teacher_is_untouched(teacher, seed):
    before = copy.deepcopy(teacher.state_dict())
    distiller = distill(teacher, OneStepConfig(variant="stochastic", seed=seed), updates=300)
    assert_same_state(before, teacher.state_dict(), "teacher after OneDP-S updates")
    obs, noise = eval_inputs()
    with torch.no_grad():
        chunks = distiller.get_policy()(obs, noise)
    assert chunks.shape == (512, H, ACT_DIM) and chunks.abs().max() <= 1.0
    pos, neg, mid = mode_fractions(chunks)
    assert pos > 0.3 and neg > 0.3, f"OneDP-S mode fractions +{pos:.2f} / -{neg:.2f}"
    assert mid < 0.2, f"OneDP-S puts {mid:.2f} of samples between the modes (mean collapse)"


def test_deterministic_generator_is_mode_seeking(teacher):
    """OneDP-D ignores the noise and lands on a mode per observation, never the mean."""
    before = copy.deepcopy(teacher.state_dict())
    distiller = distill(teacher, OneStepConfig(variant="deterministic", seed=0), updates=150)
    assert_same_state(before, teacher.state_dict(), "teacher after OneDP-D updates")
    obs, noise = eval_inputs()
    gen = distiller.get_policy()
    with torch.no_grad():
        chunks = gen(obs, noise)
        assert torch.equal(chunks, gen(obs, torch.randn_like(noise))), "OneDP-D must ignore z"
    pos, neg, mid = mode_fractions(chunks)
    assert pos + neg > 0.9, f"OneDP-D samples off the modes: +{pos:.2f} / -{neg:.2f}"
    assert mid < 0.05, f"OneDP-D puts {mid:.2f} of samples at the mean"


@pytest.mark.parametrize("weighting", ["sigma2", "dmd"])
def test_generators_follow_the_observation(cond_teacher, weighting):
    """The action's sign is set by obs[0]: teacher and both generators must condition on it."""
    cond = cond_teacher
    obs, noise = eval_inputs()
    with torch.no_grad():
        taught = cond.sample(obs, sampler="ddim", generator=torch.Generator().manual_seed(0))
    assert follows_obs(taught, obs) > 0.9, "the teacher ignores the observation"
    for variant, updates in (("stochastic", 150), ("deterministic", 100)):
        cfg = OneStepConfig(variant=variant, weighting=weighting, seed=0)
        gen = distill(cond, cfg, updates, data=conditional_data).get_policy()
        with torch.no_grad():
            hit = follows_obs(gen(obs, noise), obs)
        assert hit > 0.9, f"OneDP-{variant[0].upper()} ({weighting}) follows obs[0] in " \
                          f"only {hit:.2f} of samples"


def test_seeded_runs_give_identical_generators(teacher):
    cfg = OneStepConfig(variant="stochastic", seed=4)
    a, b = distill(teacher, cfg, updates=4), distill(teacher, cfg, updates=4)
    assert_same_state(a.generator.state_dict(), b.generator.state_dict(), "seeded generators")
    c = distill(teacher, OneStepConfig(variant="stochastic", seed=5), updates=4)
    assert not torch.equal(a.generator.net.out.weight, c.generator.net.out.weight), \
        "a different seed should give a different generator"


def test_save_load_round_trip_resumes_exactly(teacher, tmp_path):
    cfg = OneStepConfig(variant="stochastic", seed=2)
    obs = bimodal_data(64, seed=7)[0]
    a = distill(teacher, cfg, updates=3)
    path = tmp_path / "onedp.pt"
    a.save(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["onedp.pt"], "temp file left behind"
    b = OneStepDistiller(teacher, cfg)
    b.load(str(path))
    assert b.num_updates == 3
    assert_same_state(a.generator.state_dict(), b.generator.state_dict(), "loaded generator")
    a.update(obs), b.update(obs)  # optimiser moments and RNG must resume identically
    assert_same_state(a.generator.state_dict(), b.generator.state_dict(), "resumed generator")
    with pytest.raises(ValueError, match="checkpoint variant is 'stochastic'"):
        OneStepDistiller(teacher, OneStepConfig(variant="deterministic")).load(str(path))
    with pytest.raises(FileNotFoundError):
        b.load(str(tmp_path / "missing.pt"))


def test_generator_average_tracks_the_weights_and_resumes(teacher, tmp_path):
    """ema_decay d: avg <- d avg + (1 - d) G_θ after every update; it is the exported policy."""
    plain = distill(teacher, OneStepConfig(variant="stochastic", seed=6), updates=3)
    cfg = OneStepConfig(variant="stochastic", seed=6, ema_decay=0.9)
    start = copy.deepcopy(OneStepDistiller(teacher, cfg).generator.state_dict())
    obs = bimodal_data(256, seed=1)[0]
    averaged = OneStepDistiller(teacher, cfg)
    want = {k: v.clone() for k, v in start.items()}
    for _ in range(3):
        averaged.update(obs)
        for k, v in averaged.generator.state_dict().items():
            want[k] = 0.9 * want[k] + 0.1 * v if v.is_floating_point() else v
    assert averaged.get_policy() is averaged.ema is not averaged.generator
    for k, v in averaged.get_policy().state_dict().items():
        torch.testing.assert_close(v, want[k], msg=f"average of {k}")
    assert not torch.equal(averaged.ema.net.out.weight, averaged.generator.net.out.weight)
    assert plain.get_policy() is plain.generator and plain.ema is None
    # the average changes nothing about G_θ's own updates
    twin = OneStepDistiller(teacher, OneStepConfig(variant="stochastic", seed=6))
    for _ in range(3):
        twin.update(obs)
    assert_same_state(twin.generator.state_dict(), averaged.generator.state_dict(), "G_θ")
    path = str(tmp_path / "avg.pt")
    averaged.save(path)
    again = OneStepDistiller(teacher, cfg)
    again.load(path)
    assert_same_state(again.ema.state_dict(), averaged.ema.state_dict(), "loaded average")
    twin.save(path)
    with pytest.raises(ValueError, match="no generator average"):
        again.load(path)


def score_loss_on_generator_samples(distiller: OneStepDistiller) -> float:
    """ψ's denoising loss on fresh samples of G_θ, averaged over seeded noise draws."""
    obs = bimodal_data(1024, seed=11)[0]
    g = torch.Generator().manual_seed(12)
    with torch.no_grad():
        fake = distiller.generator.generate(obs, torch.randn(1024, H, ACT_DIM, generator=g))
        return float(np.mean([distiller.score.loss(obs, fake, generator=g).item()
                              for _ in range(16)]))


def test_more_score_steps_fit_the_generator_closer(teacher):
    """score_updates k: ψ takes k denoising steps per G_θ step, so it tracks p_θ better."""
    one = distill(teacher, OneStepConfig(variant="stochastic", seed=7), updates=30)
    three = distill(teacher, OneStepConfig(variant="stochastic", seed=7, score_updates=3),
                    updates=30)
    steps = [int(s["step"]) for s in three.opt_score.state_dict()["state"].values()]
    assert set(steps) == {90}, f"ψ optimiser steps {set(steps)}, want 3 per update"
    loose, close = score_loss_on_generator_samples(one), score_loss_on_generator_samples(three)
    assert close < loose, f"ψ loss on G_θ's samples: {close:.4f} with 3 steps per update, " \
                          f"{loose:.4f} with 1"
    with pytest.raises(ValueError, match="score_updates must be a positive integer, got 0"):
        OneStepConfig(score_updates=0)


def test_onnx_matches_torch(teacher, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    gen = distill(teacher, OneStepConfig(variant="stochastic"), updates=2).get_policy()
    path = tmp_path / "onedp.onnx"
    gen.as_onnx(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["obs", "noise"]
    assert [o.name for o in sess.get_outputs()] == ["actions"]
    for batch in (1, 7):
        obs, noise = torch.randn(batch, OBS_DIM) * 2, torch.randn(batch, H, ACT_DIM)
        with torch.no_grad():
            want = gen(obs, noise).numpy()
        got = sess.run(["actions"], {"obs": obs.numpy(), "noise": noise.numpy()})[0]
        assert got.shape == (batch, H, ACT_DIM)
        diff = np.abs(got - want).max()
        assert diff < 1e-4, f"ONNX vs torch max abs diff {diff:.2e} at batch {batch}"


def test_config_rejects_bad_values_with_reasons():
    with pytest.raises(ValueError, match=r"variant must be one of \('stochastic', "
                                         r"'deterministic'\), got 'gan'"):
        OneStepConfig(variant="gan")
    with pytest.raises(ValueError, match="lr_generator must be > 0, got 0"):
        OneStepConfig(lr_generator=0)
    with pytest.raises(ValueError, match="t_min_frac"):
        OneStepConfig(t_min_frac=0.9, t_max_frac=0.1)
    with pytest.raises(ValueError, match=r"weighting must be one of \('sigma2', 'dmd'\)"):
        OneStepConfig(weighting="uniform")
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        OneStepConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="latent_side must be >= 0"):
        OneStepConfig(latent_side=-1.0)
    with pytest.raises(ValueError, match="latent_scale must be > 0"):
        OneStepConfig(latent_scale=0.0)
    with pytest.raises(ValueError, match="anchor_steps must be a positive integer"):
        OneStepConfig(anchor_steps=0)


@pytest.mark.parametrize("prediction", ["sample", "epsilon"])
def test_generator_starts_as_teacher_x0_head(prediction):
    """At init G_θ(O, z) is the teacher's x̂_0 at k* with z in place of A_k* (OneDP init)."""
    small = DiffusionPolicy(DiffusionConfig(obs_dim=OBS_DIM, act_dim=ACT_DIM, horizon=H,
                                            n_exec=2, hidden_dim=32, prediction=prediction))
    distiller = OneStepDistiller(small, OneStepConfig())
    k_star = int(distiller.generator.gen_timestep)
    want_k = 99 if prediction == "sample" else int((small.alphas_cumprod >= 0.01).sum()) - 1
    assert k_star == want_k, f"{prediction}: default k* is {k_star}, expected {want_k}"
    obs, noise = eval_inputs(16)
    with torch.no_grad():
        got = distiller.generator.generate(obs, noise)
        want, _ = small.predict_x0_eps(noise, torch.full((16,), k_star), obs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5,
                               msg=f"{prediction}: generator init is not the teacher's x̂_0")


#: OneDP-S with the side bit (detour_onestep's settings)
SIDE = {"latent_side": 1.0, "latent_scale": 0.3, "gen_timestep": 40}


def side_agreement(chunks: torch.Tensor, noise: torch.Tensor) -> float:
    """Fraction of chunks on the mode whose sign is the side bit s = sign(noise[:, 0, 0])."""
    want = MODE * torch.sign(noise[:, 0, 0])
    return (chunks.mean(dim=(1, 2)) - want).abs().lt(0.15).float().mean().item()


def test_side_bit_picks_the_mode_from_the_start(teacher):
    """latent_side: G_θ's input is 0.3 z ± 1, so the initial x̂_0 head already follows s."""
    obs, noise = eval_inputs()
    sided = OneStepDistiller(teacher, OneStepConfig(**SIDE)).generator
    plain = OneStepDistiller(teacher, OneStepConfig(gen_timestep=40)).generator
    with torch.no_grad():
        latent = sided.latent(noise)
        torch.testing.assert_close(latent, 0.3 * noise + torch.sign(noise[:, :1, :1]))
        want = teacher.predict_x0_eps(latent, torch.full((512,), 40), obs)[0]
        torch.testing.assert_close(sided.generate(obs, noise), want, atol=1e-5, rtol=1e-5)
        hit, plain_hit = side_agreement(sided(obs, noise), noise), side_agreement(
            plain(obs, noise), noise)
    assert hit > 0.95, f"with the side bit only {hit:.2f} of samples follow s"
    assert plain_hit < 0.75, f"the plain latent follows z[0, 0] in {plain_hit:.2f} of samples"
    det = OneStepDistiller(teacher, OneStepConfig(variant="deterministic", **SIDE)).generator
    assert det.side is None and torch.equal(det.latent(noise), torch.zeros_like(noise))


def test_ddim_from_the_top_is_the_ddim_sampler(teacher):
    obs = bimodal_data(32, seed=3)[0]
    x = torch.randn(32, H, ACT_DIM, generator=torch.Generator().manual_seed(5))
    want = teacher.sample(obs, 5, "ddim", generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(teacher.ddim_from(x, 99, 5, obs), want)


def test_anchor_pulls_the_generator_to_the_teachers_sample_from_its_input(teacher):
    """anchor_weight: G_θ(O, z) also regresses on the teacher's DDIM sample from x_k* = input."""
    obs, noise = eval_inputs()

    def distance(d: OneStepDistiller) -> float:
        with torch.no_grad():
            ref = teacher.ddim_from(d.generator.latent(noise), 40, 4, obs)
            return float((d.generator.generate(obs, noise) - ref).abs().mean())

    cfg = OneStepConfig(lr_generator=5e-4, **SIDE)
    anchored = distill(teacher, dataclasses.replace(cfg, anchor_weight=1.0), updates=100)
    free = distill(teacher, cfg, updates=100)
    near, far = distance(anchored), distance(free)
    assert near < 0.7 * far, f"|G - teacher sample| {near:.3f} with the anchor, {far:.3f} without"
    with torch.no_grad():
        hit = side_agreement(anchored.get_policy()(obs, noise), noise)
    assert hit > 0.9, f"after distillation only {hit:.2f} of samples follow the side bit"
    assert "loss_anchor" in anchored.update(obs[:64]) and "loss_anchor" not in free.update(obs)
