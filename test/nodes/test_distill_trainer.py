"""distill_trainer in its own process: services start/stop/export, progress, parameters."""

import json
import time

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


def test_trainer_runs_stops_and_exports_through_services(tester, start_node, tmp_path,
                                                         expert_file):
    tasks = ["cube"]
    config = write_config(tmp_path / "c.yaml", tasks=tasks, held_out=[],
                          teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 1},
                          collect={"episodes_per_task": 10, "shard_episodes": 10},
                          distill={"epochs": 3}, eval={"episodes": 20})
    run_dir = tmp_path / "run"
    diags = tester.record("diagnostic_msgs/msg/DiagnosticArray", "/diagnostics")
    markers = tester.record("visualization_msgs/msg/MarkerArray", "/distill_trainer/markers")
    trainer = start_node("distill_trainer", "-p", f"config_path:={config}",
                         "-p", f"run_dir:={run_dir}", "-p", "progress_rate_hz:=4.0",
                         "-p", "stages:=[teachers, collect, distill]")
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
