"""Teachers: `distill-ros teachers` trains an expert that beats random; bad files are refused."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import write_config
from distill_ros.config import load_config
from distill_ros.pipeline import run_stages
from distill_ros.tasks.base import get_family, make_env
from distill_ros.teachers import load_teacher

FAM = get_family("grasp")


def _mean_return(policy, task="cube", episodes=4):
    env = make_env("grasp", task)
    totals = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=500 + seed)
        total = 0.0
        for _ in range(env.max_episode_steps):
            obs, r, _, trunc, _ = env.step(policy(obs[None])[0])
            total += r
            if trunc:
                break
        totals.append(total)
    env.close()
    return float(np.mean(totals))


def test_teachers_command_trains_an_expert_that_beats_random(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=[],
                                   teachers={"timesteps": 6000, "checkpoint_every": 3000}))
    run = run_stages(cfg, tmp_path / "run", ["teachers"])
    report = json.loads((run.root / "teachers" / "cube" / "eval.json").read_text())
    assert 0.0 <= report["success"] <= 1.0 and report["episodes"] == 2
    teacher = load_teacher(run.root / "teachers" / "cube" / "teacher.zip", FAM.obs_spec,
                           FAM.act_spec)
    rng = np.random.default_rng(0)
    random_return = _mean_return(
        lambda o: rng.uniform(FAM.act_spec.low, FAM.act_spec.high, (1, FAM.act_spec.dim)))
    teacher_return = _mean_return(teacher.act)
    assert teacher_return > random_return + 5.0, \
        f"teacher return {teacher_return:.1f} does not beat random {random_return:.1f}"
    assert not (run.root / "teachers" / "cube" / "checkpoint.zip").exists(), \
        "the finished teacher must replace its resume checkpoint"

    # killed after teacher.zip was saved, before its checkpoints were removed and it was checked
    folder = run.root / "teachers" / "cube"
    for name in ("checkpoint.zip", "checkpoint_state.pkl", "checkpoint_replay.pkl"):
        (folder / name).write_bytes(b"left by a kill")
    (folder / "eval.json").unlink()
    ledger = json.loads((run.root / "run.json").read_text())
    ledger["stages"]["teachers"]["status"] = "running"
    (run.root / "run.json").write_text(json.dumps(ledger))
    run_stages(cfg, tmp_path / "run", ["teachers"])
    left = sorted(p.name for p in folder.iterdir())
    assert left == ["eval.json", "obs_norm.npz", "teacher.zip"], left


def test_user_teacher_with_wrong_observation_size_is_refused(tmp_path):
    from stable_baselines3 import PPO

    class Small(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (12,), np.float32)
        action_space = gym.spaces.Box(-1, 1, (4,), np.float32)

    path = tmp_path / "small.zip"
    PPO("MlpPolicy", Small(), n_steps=64, device="cpu").save(path)
    with pytest.raises(ValueError, match=r"small.zip expects observations of 12 elements, but "
                                         r"the task provides 15 \(palm_x"):
        load_teacher(path, FAM.obs_spec, FAM.act_spec)

    onnx_path = tmp_path / "small.onnx"
    torch.onnx.export(torch.nn.Linear(12, 4), (torch.zeros(1, 12),), str(onnx_path),
                      dynamo=False, input_names=["obs"])
    with pytest.raises(ValueError, match="small.onnx expects observations of 12 elements"):
        load_teacher(onnx_path, FAM.obs_spec, FAM.act_spec)


def test_truncated_or_missing_teacher_files_are_refused(tmp_path, expert_file):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="cut.zip"):
        load_teacher(cut, FAM.obs_spec, FAM.act_spec)
    cut_ts = tmp_path / "cut.pt"
    cut_ts.write_bytes(expert_file.read_bytes()[:100])
    with pytest.raises(ValueError, match="cut.pt is not a readable TorchScript"):
        load_teacher(cut_ts, FAM.obs_spec, FAM.act_spec)
    with pytest.raises(FileNotFoundError, match="nope.zip does not exist"):
        load_teacher(tmp_path / "nope.zip", FAM.obs_spec, FAM.act_spec)
    with pytest.raises(ValueError, match="unsupported type '.pkl'"):
        (tmp_path / "x.pkl").write_bytes(b"0")
        load_teacher(tmp_path / "x.pkl", FAM.obs_spec, FAM.act_spec)


def test_sac_replay_buffer_is_sized_to_the_budget_and_never_wraps(tmp_path):
    from stable_baselines3 import SAC

    from distill_ros.teachers import sb3
    from distill_ros.teachers.config import TeacherConfig
    from distill_ros.teachers.sac_demos import seed_with_demos

    cfg = TeacherConfig(timesteps=300, n_envs=2, demo_episodes=2, demo_noise=0.1,
                        expert="scripted")
    venv = sb3._normalized(sb3._vec_env("grasp", "cube", cfg.n_envs, 0), cfg)
    model = sb3._new_model(SAC, cfg, venv, 0, FAM.max_episode_steps)
    buffer = model.replay_buffer
    capacity = sb3.replay_capacity(cfg, FAM.max_episode_steps)
    assert buffer.buffer_size * buffer.n_envs <= capacity < 10_000  # SB3's default: 1e6
    seed_with_demos(model, venv, "grasp", cfg, 0, np.asarray(FAM.act_spec.low),
                    np.asarray(FAM.act_spec.high), tmp_path)
    model.learn(cfg.timesteps, reset_num_timesteps=False)
    assert not buffer.full and buffer.pos > cfg.timesteps // cfg.n_envs, \
        "the buffer wrapped: SAC would sample differently than with SB3's default size"
