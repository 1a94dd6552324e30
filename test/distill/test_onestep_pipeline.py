"""The onestep algorithm in the pipeline: teacher -> OneDP generators -> ONNX -> chunked eval."""

import json
import time

import numpy as np
import onnx
import pytest
import torch

from conftest import write_config
from distill_ros.config import load_config
from distill_ros.distill.onestep.chunk_data import episode_windows
from distill_ros.distill.onestep.chunk_policy import ChunkScaler, GeneratorPolicy
from distill_ros.distill.onestep.data import START_SEED, start_windows
from distill_ros.distill.onestep.distiller import OneStepConfig, OneStepDistiller
from distill_ros.distill.onestep.export import export_generator, generator_parity_check
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.pipeline import run_stages
from distill_ros.rollout import episode_seed
from distill_ros.runtime.chunked import ChunkedPolicy, OnnxChunkPlanner
from distill_ros.spec import ObsSpec, Spec
from distill_ros.tasks.base import make_env
from distill_ros.teachers.diffusion import DiffusionConfig, DiffusionPolicy

TINY = {"demonstrators": ["side_pos_y", "side_neg_y"], "hidden_dim": 64, "n_blocks": 2,
        "diffusion_steps": 20, "ddim_steps": 5, "teacher_updates": 300, "distill_updates": 30,
        "checkpoint_every": 100, "latency_repeats": 5}


def test_onestep_run_trains_exports_and_reports_every_policy(tmp_path):
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=["cube", "lego"], held_out=[],
        teachers={"eval_episodes": 3}, collect={"episodes_per_task": 12, "shard_episodes": 6},
        distill={"algorithm": "onestep", "epochs": 5}, eval={"episodes": 3}, onestep=TINY))
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill", "export", "eval"])
    ledger = json.loads((run.root / "run.json").read_text())
    assert all(s["status"] == "complete" for s in ledger["stages"].values()), ledger["stages"]
    distill = ledger["stages"]["distill"]
    teacher_wall = distill["teacher_train_wall_s"]
    spent = teacher_wall + sum(distill[v]["distill_wall_s"] for v in ("stochastic",
                                                                      "deterministic"))
    assert 0 < teacher_wall and spent <= distill["wall_s"], \
        f"the timed parts must fit inside the stage's own wall time: {distill}"
    for variant in ("stochastic", "deterministic"):
        assert distill[variant]["updates"] == 30
        ratio = distill[variant]["distill_wall_s"] / teacher_wall
        # Both walls are stored rounded to 0.1 ms; the ratio must agree to that precision.
        assert distill[f"{variant}_over_teacher_wall"] == pytest.approx(ratio, rel=1e-2)
        curves = json.loads((run.root / "student" / f"onestep_{variant}" / "curves.json")
                            .read_text())
        assert {"loss_generator", "teacher_gap"} <= set(curves[-1]), curves[-1]
        assert list((run.root / "student" / f"onestep_{variant}" / "tb").glob(
            "events.out.tfevents.*")), "loss terms go to TensorBoard too"
    stochastic = json.loads((run.root / "student" / "onestep_stochastic" / "curves.json")
                            .read_text())
    assert "loss_score" in stochastic[-1], "OneDP-S logs its score network's loss"
    for name, parity in ledger["stages"]["export"]["parity"].items():
        assert parity["max_abs_diff_real"] < 1e-4, (name, parity)

    report = json.loads((run.root / "report" / "eval.json").read_text())
    names = [r["policy"] for r in report["policies"]]
    assert names == ["demo side_pos_y", "demo side_neg_y", "diffusion DDPM-20",
                     "diffusion DDIM-5", "OneDP-S (stochastic, ONNX)",
                     "OneDP-D (deterministic, ONNX)", "BC mlp (ONNX)"], names
    assert all(r["latency_ms"] > 0 and set(r["success"]) == {"cube", "lego"}
               for r in report["policies"])
    assert report["policies"][0]["mean"] == 1.0, "the scripted demonstrators always grasp"
    for r in report["policies"]:   # 95% Wilson intervals: 3 episodes per task, 6 per mean
        assert r["episodes"] == 6 and r["mean_ci"][0] <= r["mean"] <= r["mean_ci"][1], r
        assert all(lo <= r["success"][t] <= hi for t, (lo, hi) in r["success_ci"].items()), r
    assert report["policies"][0]["mean_ci"][0] == pytest.approx(0.61, abs=0.01), "6/6"
    summary = report["summary"]
    assert set(summary["variants"]) == {"stochastic", "deterministic"}
    assert summary["variants"]["stochastic"]["speedup_vs_ddpm"] > 3
    table = (run.root / "report" / "eval.md").read_text()
    assert "| OneDP-S (stochastic, ONNX) |" in table and "latency ms/call" in table
    assert "| demo side_pos_y | 1.00 [0.44, 1.00] | 1.00 [0.44, 1.00] | 1.000 [0.61, 1.00] |" \
        in table, table
    for png in ("success_vs_latency.png", "eval.png"):
        assert (run.root / "report" / png).stat().st_size > 1000, png

    meta = {p.key: p.value for p in onnx.load(run.root / "export" / "policy.onnx")
            .metadata_props}
    assert (meta["chunk_length"], meta["n_exec"], meta["obs_history"]) == ("8", "4", "2")
    assert meta["student_arch"] == "onedp_stochastic" and meta["task_family"] == "grasp"
    runner = ChunkedPolicy.from_onnx(run.root / "export" / "policy.onnx", seed=1,
                                     want_gpu=False, control_period_s=None)
    act = runner.act(np.zeros(15, np.float32))
    assert act.shape == (4,) and 0.0 <= act[3] <= 0.09

    # a second run resumes: nothing is retrained; the evaluation, redone, is unchanged
    teacher_ckpt = run.root / "teachers" / "diffusion" / "teacher.pt"
    mtime = teacher_ckpt.stat().st_mtime_ns
    run_stages(cfg, tmp_path / "run", ["distill"])
    run_stages(cfg, tmp_path / "run", ["eval"], force=True)
    assert teacher_ckpt.stat().st_mtime_ns == mtime, "the diffusion teacher was retrained"
    again = json.loads((run.root / "report" / "eval.json").read_text())
    assert [r["success"] for r in again["policies"]] == \
        [r["success"] for r in report["policies"]], "seeded evaluation is not reproducible"


def test_generator_onnx_has_normalisation_inside_and_matches_torch(tmp_path):
    obs_spec = Spec(names=("a", "b", "c"))
    act_spec = Spec(names=("u", "v"), low=(-2.0, 0.0), high=(2.0, 0.5))
    teacher = DiffusionPolicy(DiffusionConfig(obs_dim=3, act_dim=2, horizon=4, n_exec=2,
                                              obs_history=2, hidden_dim=32, n_blocks=1,
                                              num_train_steps=10))
    scaler = ChunkScaler(obs_spec, act_spec, obs_history=2)
    frames = np.random.default_rng(0).normal([5.0, -3.0, 100.0], [0.1, 2.0, 30.0], (500, 3))
    scaler.fit(frames.astype(np.float32))
    gen = OneStepDistiller(teacher, OneStepConfig()).get_policy()
    policy = GeneratorPolicy(gen, scaler).eval()
    path = tmp_path / "gen.onnx"
    export_generator(policy, path, 2, PolicyMetadata(ObsSpec.flat(obs_spec), act_spec, 10.0,
                                                     "toy"))
    real = np.concatenate([frames[:-1], frames[1:]], axis=1).astype(np.float32)
    parity = generator_parity_check(policy, path, real, tol=1e-4)
    assert parity["max_abs_diff_random"] < 1e-4 and parity["max_abs_diff_real"] < 1e-4
    planner = OnnxChunkPlanner(path, want_gpu=False)
    assert (planner.horizon, planner.n_exec, planner.obs_history) == (4, 2, 2)
    raw = real[:5]
    noise = np.random.default_rng(1).standard_normal((5, 4, 2)).astype(np.float32)
    got = planner.session.run(None, {"obs": raw, "noise": noise})[0]
    with torch.no_grad():   # the same numbers by hand: normalise, generate, unscale, clamp
        x = (torch.from_numpy(raw) - scaler.obs_mean) / scaler.obs_std
        a = gen(x, torch.from_numpy(noise))
        low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 0.5])
        want = torch.clamp(low + (a + 1.0) * 0.5 * (high - low), low, high).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert got[..., 1].min() >= 0.0 and got[..., 1].max() <= 0.5


def test_windows_pad_history_with_first_frame_and_chunk_with_last_action():
    obs = np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    act = 10 + np.arange(4, dtype=np.float32)[:, None]
    hist, chunks = episode_windows(obs, act, obs_history=3, horizon=3)
    np.testing.assert_array_equal(hist[0], [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hist[2], [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(chunks[2, :, 0], [12, 13, 13])
    np.testing.assert_array_equal(chunks[3, :, 0], [13, 13, 13])


def test_onestep_config_is_validated(tmp_path):
    base = {"tasks": ["cube"], "held_out": [], "distill": {"algorithm": "onestep"}}
    with pytest.raises(ValueError, match=r"onestep.n_exec must be <= onestep.horizon \(4\)"):
        load_config(write_config(tmp_path / "a.yaml", **base,
                                 onestep={"horizon": 4, "n_exec": 6}))
    with pytest.raises(ValueError, match=r"onestep.deploy must be one of \['deterministic'\]"):
        load_config(write_config(tmp_path / "b.yaml", **base,
                                 onestep={"variants": ["deterministic"]}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['onestep.horizn'\]"):
        load_config(write_config(tmp_path / "c.yaml", **base, onestep={"horizn": 4}))
    with pytest.raises(ValueError, match=r"onestep.generator_ema must be in \[0, 1\)"):
        load_config(write_config(tmp_path / "d.yaml", **base, onestep={"generator_ema": 1.5}))
    # a key added later is recorded only when set: older runs keep their config hash
    plain = load_config(write_config(tmp_path / "e.yaml", **base))
    assert "generator_ema" not in plain.to_dict()["onestep"]
    averaged = load_config(write_config(tmp_path / "f.yaml", **base,
                                        onestep={"generator_ema": 0.99}))
    assert averaged.to_dict()["onestep"]["generator_ema"] == 0.99
    assert averaged.digest() != plain.digest()
    assert not {"score_updates", "t_min_frac", "t_max_frac"} & set(plain.to_dict()["onestep"])
    tracked = load_config(write_config(tmp_path / "g.yaml", **base,
                                       onestep={"score_updates": 4, "t_max_frac": 0.6}))
    assert tracked.to_dict()["onestep"]["score_updates"] == 4
    assert tracked.to_dict()["onestep"]["t_max_frac"] == 0.6
    distiller = tracked.onestep.distiller_config("stochastic", seed=0)
    assert (distiller.score_updates, distiller.t_min_frac, distiller.t_max_frac) == (4, 0.02, 0.6)
    with pytest.raises(ValueError, match=r"need 0 <= onestep.t_min_frac <= onestep.t_max_frac"):
        load_config(write_config(tmp_path / "i.yaml", **base, onestep={"t_max_frac": 0.01}))
    with pytest.raises(ValueError, match="onestep.score_updates must be a positive integer"):
        load_config(write_config(tmp_path / "h.yaml", **base, onestep={"score_updates": 0}))
    side = {"gen_timestep": 40, "latent_side": 1.0, "latent_scale": 0.3, "anchor_weight": 1.0}
    assert not set(side) & set(plain.to_dict()["onestep"])
    sided = load_config(write_config(tmp_path / "j.yaml", **base, onestep=side))
    assert {k: sided.to_dict()["onestep"][k] for k in side} == side
    s = sided.onestep.distiller_config("stochastic", seed=0)
    assert (s.gen_timestep, s.latent_side, s.latent_scale, s.anchor_weight) == (40, 1.0, 0.3, 1.0)
    assert sided.onestep.distiller_config("deterministic", seed=0).gen_timestep is None
    with pytest.raises(ValueError, match="onestep.latent_scale must be > 0"):
        load_config(write_config(tmp_path / "k.yaml", **base, onestep={"latent_scale": 0}))
    assert "stochastic_ema" not in plain.to_dict()["onestep"]
    own = load_config(write_config(tmp_path / "l.yaml", **base,
                                   onestep={"generator_ema": 0.99, "stochastic_ema": 0.999}))
    assert own.onestep.distiller_config("stochastic", seed=0).ema_decay == 0.999
    assert own.onestep.distiller_config("deterministic", seed=0).ema_decay == 0.99
    assert averaged.onestep.distiller_config("stochastic", seed=0).ema_decay == 0.99
    with pytest.raises(ValueError, match=r"onestep.stochastic_ema must be in \[0, 1\)"):
        load_config(write_config(tmp_path / "m.yaml", **base, onestep={"stochastic_ema": 1.0}))
    assert "distill_starts" not in plain.to_dict()["onestep"]
    with pytest.raises(ValueError, match="onestep.distill_starts must be an integer >= 0"):
        load_config(write_config(tmp_path / "n.yaml", **base, onestep={"distill_starts": -1}))


def test_start_windows_are_first_plan_histories_of_their_own_resets(tmp_path):
    cfg = load_config(write_config(
        tmp_path / "c.yaml", family="detour", tasks=["post", "pillar"], held_out=[],
        distill={"algorithm": "onestep"},
        onestep={"demonstrators": ["detour_left", "detour_right"], "distill_starts": 5}))
    rows = start_windows(cfg)
    assert rows.shape == (10, 2 * 7) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, :7], rows[:, 7:])   # tick 0: the frame repeated
    env = make_env("detour", "pillar")
    first = env.reset(seed=episode_seed(START_SEED, 1, 3))[0]
    np.testing.assert_allclose(rows[5 + 3, :7], first, rtol=0, atol=1e-6)
    evals = np.stack([env.reset(seed=episode_seed(cfg.eval.seed, 1, e))[0] for e in range(5)])
    env.close()
    assert len(np.unique(rows, axis=0)) == 10, "every start is its own reset"
    assert not np.isclose(rows[5:, None, :7], evals[None]).all(axis=2).any(), \
        "the generators never train on the eval seeds' starts"


def test_interrupted_teacher_and_generator_resume_to_identical_weights(tmp_path, monkeypatch):
    """A kill after the first checkpoint, then a rerun, gives the uninterrupted weights."""
    from distill_ros.distill.onestep import train as onestep_train
    from distill_ros.rundir import RunDir

    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=["cube"], held_out=[], distill={"algorithm": "onestep"},
        onestep={**TINY, "teacher_updates": 40, "distill_updates": 20, "checkpoint_every": 10}))
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(64, 15)).astype(np.float32)
    hist = np.concatenate([frames, frames], axis=1)
    chunks = rng.uniform([-0.9, -0.9, -0.9, 0.0], [0.9, 0.9, 0.9, 0.09], (64, 8, 4))
    chunks = chunks.astype(np.float32)

    def train(root, crash: bool):
        run = RunDir(root, cfg)
        started, spent_before = time.monotonic(), 0.0
        if crash:
            real_save, calls = onestep_train.atomic_torch_save, []

            def save_then_die(path, obj):
                real_save(path, obj)
                calls.append(path)
                if len(calls) == 2:
                    raise KeyboardInterrupt
            monkeypatch.setattr(onestep_train, "atomic_torch_save", save_then_die)
            with pytest.raises(KeyboardInterrupt):
                onestep_train.train_teacher(run, cfg, hist, chunks, frames)
            monkeypatch.undo()
            latest = run.root / "teachers" / "diffusion" / "latest.pt"
            spent_before = torch.load(latest, weights_only=False)["state"]["wall_s"]
            assert spent_before > 0, "the checkpoint records the time spent so far"
        onestep_train.train_teacher(run, cfg, hist, chunks, frames)
        teacher, scaler, wall = onestep_train.load_diffusion_teacher(run, cfg)
        # summed over the interrupted and the resumed session, never more than both took
        assert spent_before < wall <= time.monotonic() - started, (spent_before, wall)
        x = scaler.norm_obs(torch.from_numpy(hist))
        if crash:   # generator: stop after its first checkpoint by asking for fewer updates
            cfg.onestep.distill_updates = 10
            onestep_train.distill_generator(run, cfg, "stochastic", teacher, x)
            cfg.onestep.distill_updates = 20
        info = onestep_train.distill_generator(run, cfg, "stochastic", teacher, x)
        assert info["updates"] == 20
        gen = onestep_train.load_generator(run, cfg, "stochastic", teacher, scaler)
        return teacher.state_dict(), gen.state_dict()

    whole = train(tmp_path / "a", crash=False)
    resumed = train(tmp_path / "b", crash=True)
    for a, b, what in zip(whole, resumed, ("teacher", "generator")):
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), f"resumed {what}: {name} differs"


def _user_dataset(folder, task="cube", episodes=8):
    """A user's .npz of demonstrations: two scripted styles, alternating, as one file."""
    from distill_ros.rollout import run_episode
    from distill_ros.tasks.base import get_family, make_env
    from distill_ros.teachers import load_teacher
    from distill_ros.teachers.scripted_styles import save_named_expert

    fam = get_family("grasp")
    experts = [load_teacher(save_named_expert(n, folder / f"{n}.pt"), fam.obs_spec,
                            fam.act_spec) for n in ("side_pos_y", "side_neg_y")]
    env = make_env("grasp", task)
    eps = [run_episode(env, experts[e % 2].act, 100 + e) for e in range(episodes)]
    env.close()
    fields = dict(obs=np.concatenate([e.obs for e in eps]),
                  act=np.concatenate([e.act for e in eps]),
                  episode=np.concatenate([np.full(len(e.obs), 7 * k) for k, e in
                                          enumerate(eps)]),
                  obs_names=np.array(fam.obs_spec.names), act_names=np.array(fam.act_spec.names))
    np.savez(folder / f"{task}_demos.npz", **fields)
    return folder / "{task}_demos.npz", fields, eps


def test_users_own_dataset_trains_the_teacher_and_generator(tmp_path):
    pattern, _, eps = _user_dataset(tmp_path)
    tiny = {**TINY, "demonstrators": [], "dataset": str(pattern), "variants": ["deterministic"],
            "deploy": "deterministic"}
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=["cube"], held_out=[], eval={"episodes": 3},
        collect={"shard_episodes": 3}, distill={"algorithm": "onestep", "epochs": 3},
        onestep=tiny))
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill", "export", "eval"])
    shards = sorted((run.root / "data" / "cube").glob("shard_*.npz"))
    assert len(shards) == 3, "8 episodes in shards of 3"
    ledger = json.loads((run.root / "run.json").read_text())
    assert ledger["stages"]["collect"]["steps"]["cube"] == sum(len(e.obs) for e in eps)
    report = json.loads((run.root / "report" / "eval.json").read_text())
    names = [r["policy"] for r in report["policies"]]
    assert names == ["diffusion DDPM-20", "diffusion DDIM-5", "OneDP-D (deterministic, ONNX)",
                     "BC mlp (ONNX)"], names


@pytest.mark.parametrize("change, match", [
    (lambda f: f.update(obs=np.where(np.arange(f["obs"].size).reshape(f["obs"].shape) == 31,
                                     np.nan, f["obs"])),
     r"field 'obs' contains NaN/Inf at row 2, column 1"),
    (lambda f: f.update(act=f["act"][:, :3]), r"field 'act' has shape \(\d+, 3\), expected"),
    (lambda f: f.update(act_names=f["act_names"][::-1]), "act_names .* differ from the task"),
    (lambda f: f.pop("episode"), r"lacks field\(s\) \['episode'\]"),
    (lambda f: f.update(episode=np.r_[f["episode"][-1:], f["episode"][:-1]]),
     "must be contiguous"),
])
def test_bad_user_dataset_names_file_field_and_fix(tmp_path, change, match):
    from distill_ros.distill.dataset import read_episodes
    from distill_ros.tasks.base import get_family

    fam = get_family("grasp")
    _, fields, _ = _user_dataset(tmp_path, episodes=2)
    change(fields)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **fields)
    with pytest.raises(ValueError, match=match) as err:
        read_episodes(bad, fam.obs_spec, fam.act_spec, "onestep.dataset")
    assert "onestep.dataset" in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(FileNotFoundError, match="onestep.dataset: dataset file .* does not"):
        read_episodes(tmp_path / "nope.npz", fam.obs_spec, fam.act_spec, "onestep.dataset")
    with pytest.raises(ValueError, match="onestep.dataset and onestep.demonstrators"):
        load_config(write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=[],
                                 distill={"algorithm": "onestep"},
                                 onestep={"dataset": "x.npz", "demonstrators": ["side_pos_y"]}))


def test_keys_added_later_are_recorded_only_when_set():
    """run.json (and the config hash) of runs made before a key existed must not change."""
    from distill_ros.distill.onestep.config import LATE_KEYS, OneStepPipelineConfig

    assert not set(LATE_KEYS) & set(OneStepPipelineConfig().ledger_dict())
    changed = OneStepPipelineConfig(stochastic_ema=0.999, distill_starts=10, generator_ema=0.9,
                                    anchor_weight=0.5)
    recorded = changed.ledger_dict()
    assert {k: recorded[k] for k in ("stochastic_ema", "distill_starts", "generator_ema",
                                     "anchor_weight")} == {
        "stochastic_ema": 0.999, "distill_starts": 10, "generator_ema": 0.9,
        "anchor_weight": 0.5}
    assert "dataset" not in recorded and recorded["teacher_updates"] == 4000
