"""Plug-ins named in the config by import path, and executors that change nothing but speed.

This module is itself the user's package: it defines a task family and an algorithm that
the configs below name as `test_plugins:FAMILY` and `test_plugins:ALGORITHM`.
"""

from dataclasses import dataclass

import pytest
import yaml

from distill_ros.checks import positive
from distill_ros.config import load_config
from distill_ros.distill import Algorithm
from distill_ros.executor import ProcessExecutor, SerialExecutor
from distill_ros.pipeline import run_stages
from distill_ros.rundir import STAGES
from distill_ros.tasks import toy
from distill_ros.tasks.base import TaskFamily

GOALS = {"near": "goal_0", "far": "goal_4", "side": "goal_2"}
FAMILY = TaskFamily(name="two_goals", tasks=tuple(GOALS),
                    make=lambda task, **kw: toy.ToyEnv(GOALS[task], **kw),
                    obs_spec=toy.OBS_SPEC, act_spec=toy.ACT_SPEC,
                    control_rate_hz=20.0, max_episode_steps=toy.EPISODE_STEPS)
NOT_A_FAMILY = "a string"


@dataclass
class RoundsConfig:
    """The settings section of the test algorithm."""

    rounds: int = 1

    def __post_init__(self) -> None:
        positive("my_algo", rounds=self.rounds)


def _offline_stages():
    from distill_ros.distill.offline.stages import STAGES as offline

    return offline


ALGORITHM = Algorithm(name="my_algo", stages=_offline_stages, config_cls=RoundsConfig)


def toy_config(tmp_path, expert, **overrides):
    """A seconds-long pipeline on the family above, with the analytic expert as teacher."""
    cfg = {"name": "plug", "family": "test_plugins:FAMILY", "tasks": ["near", "far"],
           "held_out": ["side"], "seed": 3,
           "teachers": {"sources": {"near": str(expert), "far": str(expert)},
                        "eval_episodes": 4},
           "collect": {"episodes_per_task": 24, "shard_episodes": 8},
           "distill": {"epochs": 8}, "eval": {"episodes": 8}, **overrides}
    path = tmp_path / "plug.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def toy_expert(tmp_path_factory):
    from distill_ros.teachers.scripted import save_toy_expert

    path = tmp_path_factory.mktemp("toy") / "toy_expert.pt"
    save_toy_expert(str(path))
    return path


def test_a_family_and_an_algorithm_named_by_path_run_and_every_executor_writes_the_same(
        tmp_path, toy_expert):
    distill = {"epochs": 8, "algorithm": "test_plugins:ALGORITHM"}
    cfg = load_config(toy_config(tmp_path, toy_expert, distill=distill, my_algo={"rounds": 2}))
    assert cfg.my_algo.rounds == 2 and cfg.to_dict()["my_algo"] == {"rounds": 2}
    serial = run_stages(cfg, tmp_path / "serial", list(STAGES), executor=SerialExecutor())
    pooled = run_stages(cfg, tmp_path / "pool", list(STAGES), executor=ProcessExecutor(2))
    shards = sorted(p.relative_to(serial.root) for p in (serial.root / "data").rglob("*.npz"))
    assert len(shards) == 2 * 3, shards  # 24 episodes in shards of 8, two tasks
    for shard in shards:
        assert (serial.root / shard).read_bytes() == (pooled.root / shard).read_bytes(), shard
    for artefact in ("student/curves.json", "report/eval.json", "export/policy.onnx"):
        assert (serial.root / artefact).read_bytes() == (pooled.root / artefact).read_bytes(), \
            artefact
    report = (serial.root / "report" / "eval.md").read_text()
    assert "| near | seen | 1.00 [" in report, report  # the analytic expert, measured


@pytest.mark.parametrize("family, message", [
    ("no_such_module_xyz:FAMILY", r"family: cannot import 'no_such_module_xyz'.*PYTHONPATH"),
    ("test_plugins:MISSING", r"module 'test_plugins' has no 'MISSING'"),
    ("test_plugins:NOT_A_FAMILY", r"is a str, not a distill_ros.tasks.base.TaskFamily"),
    ("laundry", r"unknown task family 'laundry'.*my_pkg.my_module:FAMILY"),
])
def test_a_bad_family_path_names_the_key_the_file_and_the_fix(tmp_path, family, message):
    path = toy_config(tmp_path, "x.pt", family=family)
    with pytest.raises(ValueError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_an_algorithm_section_is_validated_by_its_own_dataclass(tmp_path):
    distill = {"algorithm": "test_plugins:ALGORITHM"}
    path = toy_config(tmp_path, "x.pt", distill=distill, my_algo={"rounds": 0})
    with pytest.raises(ValueError, match=r"my_algo.rounds must be > 0, got 0"):
        load_config(path)
    path = toy_config(tmp_path, "x.pt", distill=distill, my_algo={"round": 3})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['my_algo.round'\]"):
        load_config(path)
    path = toy_config(tmp_path, "x.pt", my_algo={"rounds": 3})  # offline chosen
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['my_algo'\]"):
        load_config(path)
