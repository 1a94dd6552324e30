"""distill_trainer in its own process: services start/stop/export, progress, parameters."""

import json
import time

import pytest

from conftest import write_config

NODE = "/distill_trainer"
TRIGGER = "std_srvs/srv/Trigger"
STATUS = "distill_trainer: pipeline"


def _values(msg):
    for status in msg.status:
        if status.name == STATUS:
            return {kv.key: kv.value for kv in status.values}
    return None


def _state(msg):
    return (_values(msg) or {}).get("state")


def _start(tester, start_node, config, run_dir, rate_hz):
    """Record /diagnostics and the markers, then start a trainer for teachers..distill."""
    diags = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    markers = tester.record("visualization_msgs/msg/MarkerArray", "/distill_trainer/markers")
    trainer = start_node("distill_trainer", "-p", f"config_path:={config}",
                         "-p", f"run_dir:={run_dir}", "-p", f"progress_rate_hz:={rate_hz}",
                         "-p", "stages:=[teachers, collect, distill]")
    return diags, markers, trainer


def test_trainer_runs_stops_and_exports_through_services(tester, start_node, tmp_path,
                                                         expert_file):
    tasks = ["cube"]
    config = write_config(tmp_path / "c.yaml", tasks=tasks, held_out=[],
                          teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 1},
                          collect={"episodes_per_task": 10, "shard_episodes": 10},
                          distill={"epochs": 3}, eval={"episodes": 20})
    run_dir = tmp_path / "run"
    diags, markers, trainer = _start(tester, start_node, config, run_dir, 4.0)
    result = tester.set_param(NODE, "config_path", str(tmp_path / "missing.yaml"))
    assert not result.successful and "does not exist" in result.reason, result
    result = tester.set_param(NODE, "stages", ["teachers", "fly"])
    assert not result.successful and "stages must be among" in result.reason, result

    reply = tester.call(TRIGGER, f"{NODE}/start")
    assert reply.success, reply.message
    started = time.monotonic()
    busy = tester.call(TRIGGER, f"{NODE}/start")
    assert not busy.success and "busy" in busy.message, busy.message
    _, msg = diags.wait_for(lambda m: _state(m) == "complete", started, 120.0,
                            f"pipeline complete\n{trainer.log()}")
    assert _values(msg)["distill"] == "complete" and _values(msg)["fraction"] == "1", msg
    bar = json.loads((run_dir / "progress.json").read_text())  # the collect jobs' one bar
    assert {k: _values(msg)[k] for k in ("jobs_stage", "jobs", "work")} == {
        "jobs_stage": "collect", "jobs": "1/1", "work": "10/10 ep"} and bar["done"] == 10, msg
    # markers and diagnostics are separate messages: wait for the markers to catch up
    _, array = markers.wait_for(
        lambda m: any("complete 100%" in k.text for k in m.markers), started, 10.0,
        "a 'complete 100%' text marker")
    texts = [m.text for m in array.markers if m.text]
    assert any(t == "distill: complete" for t in texts), texts

    reply = tester.call(TRIGGER, f"{NODE}/export")
    assert reply.success and "policy.onnx" in reply.message, reply.message
    exported = time.monotonic()
    diags.wait_for(lambda m: _state(m) == "complete", exported, 60.0, "export complete")
    assert (run_dir / "export" / "policy.onnx").stat().st_size > 1000

    assert tester.set_param(NODE, "stages", ["eval"]).successful
    reply = tester.call(TRIGGER, f"{NODE}/start")
    assert reply.success, reply.message
    reply = tester.call(TRIGGER, f"{NODE}/stop")
    assert reply.success and "stopped during stage eval" in reply.message, reply.message
    diags.wait_for(lambda m: _state(m) == "stopped", exported, 10.0, "stopped state")


def test_trainer_publishes_every_dagger_rounds_figures(tester, start_node, tmp_path):
    """A DAgger run (toy family) from the node: round, queries, β, buffer, last success."""
    from distill_ros.teachers.scripted import save_toy_expert

    save_toy_expert(str(expert := tmp_path / "toy_expert.pt"))
    tasks, n_envs, steps, cap, horizon, rounds = ["goal_0", "goal_1"], 2, 20, 100, 400, 12
    config = write_config(
        tmp_path / "dag.yaml", family="toy", tasks=tasks, held_out=[],
        teachers={"sources": {t: str(expert) for t in tasks}, "eval_episodes": 1},
        distill={"algorithm": "dagger"}, student={"hidden": [32, 32]},
        dagger={"n_envs": n_envs, "vector": "sync", "rounds": rounds,
                "steps_per_round": steps, "updates_per_round": 400, "batch_size": 64,
                "buffer_size": cap, "eval_every": 3, "eval_episodes": 1,
                "beta": {"schedule": "linear", "horizon": horizon}})
    run_dir = tmp_path / "run"
    diags, markers, trainer = _start(tester, start_node, config, run_dir, 20.0)
    started = time.monotonic()
    reply = tester.call(TRIGGER, f"{NODE}/start")
    assert reply.success, reply.message
    _, final = diags.wait_for(lambda m: _state(m) in ("complete", "failed"), started, 180.0,
                              f"pipeline end\n{trainer.log()}")
    assert _state(final) == "complete", f"{_values(final)}\n{trainer.log()}"
    assert not any(k.startswith("distill.") for k in _values(final)), "stale round figures"
    seen = {}
    for _, msg in diags.since(started):
        values = _values(msg) or {}
        if "distill.round" not in values:
            continue
        r = int(values["distill.round"])
        queries = r * n_envs * steps
        assert values["distill.rounds"] == str(rounds), values
        assert values["distill.teacher_queries"] == str(queries), values
        assert values["distill.buffer"] == str(min(queries, cap)), values   # capped at 100
        assert float(values["distill.beta"]) == pytest.approx(max(0.0, 1 - queries / horizon),
                                                              abs=1e-3), values
        evaluated = r >= 3   # eval_every 3: no success before round 3
        assert (values["distill.last_success"] != "None") == evaluated, values
        if evaluated:
            assert 0.0 <= float(values["distill.last_success"]) <= 1.0, values
        seen[r] = values
    assert len(seen) >= 2, f"round figures of {sorted(seen)} only\n{trainer.log()}"
    texts = {m.text for _, a in markers.since(started) for m in a.markers}
    line = [t for t in texts if t.startswith("distill.") and "distill.round " in t]
    assert line and "distill.teacher_queries " in line[0], sorted(texts)[:20]
