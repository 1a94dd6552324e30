"""`distill-ros launch NAME`: start the node set of ``launch/NAME.launch.py`` without ROS.

With ROS 2 installed, ``ros2 launch distill_ros NAME.launch.py`` does this. Without it
(``launch``/``launch_ros`` are not pip-installable), this module starts the same nodes
with the same parameter files as child processes, forwards Ctrl-C to them, and stops
them all when one exits. ``test/nodes/test_launch.py`` checks that both agree.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

#: launch file stem -> [(executable, parameter file in config/)], as the launch files say.
LAUNCH_SETS: Dict[str, List[Tuple[str, str]]] = {
    "inference": [("policy_inference", "policy_inference_params.yaml")],
    "sim_demo": [("sim_robot", "sim_robot_params.yaml"),
                 ("policy_inference", "policy_inference_params.yaml")],
    "training": [("distill_trainer", "distill_trainer_params.yaml")],
    "humanoid_demo": [("sim_robot", "humanoid_sim_robot_params.yaml"),
                      ("motion_command", "motion_command_params.yaml"),
                      ("policy_inference", "humanoid_policy_inference_params.yaml")],
    "dressing_demo": [("sim_robot", "dressing_sim_robot_params.yaml"),
                      ("policy_inference", "dressing_policy_inference_params.yaml")],
}
#: launch argument -> (executable, parameter) it sets, as the launch files declare them.
LAUNCH_ARGUMENTS: Dict[str, Tuple[str, str]] = {
    "model_path": ("policy_inference", "model_path"),
    "task": ("sim_robot", "task"),
    "config_path": ("distill_trainer", "config_path"),
    "run_dir": ("distill_trainer", "run_dir"),
    "mode": ("motion_command", "mode"),
}
#: launch arguments that set a parameter of one more node where the set has it.
ALSO_SETS: Dict[str, Tuple[str, str]] = {
    "task": ("motion_command", "clip"),   # humanoid_demo: the clip to command is the sim's
}
#: launch arguments that only concern tools this launcher cannot start (RViz needs ROS 2).
IGNORED_ARGUMENTS = ("rviz",)


def config_dir() -> Path:
    """The node parameter files: ``config/`` of a source checkout, else the installed share."""
    source = Path(__file__).resolve().parents[1] / "config"
    if source.is_dir():
        return source
    installed = Path(sys.prefix) / "share" / "distill_ros" / "config"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"no config folder at {source} or {installed}: reinstall distill_ros")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``launch`` subcommand to the ``distill-ros`` parser."""
    p = sub.add_parser("launch", help="start a launch file's nodes without ROS 2 installed",
                       description="Start the nodes of launch/NAME.launch.py as processes "
                       "over the DDS backend; Ctrl-C stops them.")
    p.add_argument("name", choices=sorted(LAUNCH_SETS), help="launch file (without .launch.py)")
    p.add_argument("args", nargs="*", metavar="ARG:=VALUE",
                   help=f"launch arguments: {', '.join(LAUNCH_ARGUMENTS)}")


def node_commands(name: str, arguments: List[str]) -> List[List[str]]:
    """The command line of every node of launch set ``name``, with ``ARG:=VALUE`` applied."""
    values: Dict[str, str] = {}
    for item in arguments:
        key, sep, value = item.partition(":=")
        if sep and key in IGNORED_ARGUMENTS:
            print(f"distill-ros launch: {key}:={value} ignored: RViz needs ROS 2 "
                  "(run `rviz2 -d share/distill_ros/rviz/distill.rviz` where it is installed)",
                  file=sys.stderr)
            continue
        if not sep or key not in LAUNCH_ARGUMENTS:
            raise ValueError(f"launch arguments look like NAME:=VALUE with NAME one of "
                             f"{list(LAUNCH_ARGUMENTS) + list(IGNORED_ARGUMENTS)}, "
                             f"got {item!r}")
        values[key] = value
    commands = []
    for executable, params in LAUNCH_SETS[name]:
        cmd = [sys.executable, "-m", f"distill_ros.nodes.{executable}", "--ros-args",
               "--params-file", str(config_dir() / params)]
        for key, value in values.items():
            for target, param in (LAUNCH_ARGUMENTS[key], ALSO_SETS.get(key, ("", ""))):
                if target == executable:
                    cmd += ["-p", f"{param}:={value}"]
        commands.append(cmd)
    return commands


def launch(name: str, arguments: List[str]) -> int:
    """Start the nodes, wait until Ctrl-C/SIGTERM or until one exits, stop the rest."""
    # own sessions: a terminal Ctrl-C reaches this process only, which forwards exactly one
    commands = node_commands(name, arguments)
    procs = [subprocess.Popen(cmd, start_new_session=True) for cmd in commands]
    print(f"distill-ros launch {name}: started {len(procs)} node(s), pids "
          f"{[p.pid for p in procs]}; Ctrl-C stops them", flush=True)
    stop = {"asked": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["asked"] = True
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop["asked"] and all(p.poll() is None for p in procs):
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        died = [(cmd[2], p.returncode) for cmd, p in zip(commands, procs)
                if p.poll() is not None]
        failed = _stop_all(procs)
    if died and not stop["asked"]:
        names = ", ".join(f"{module.rsplit('.', 1)[-1]} (exit code {code})"
                          for module, code in died)
        print(f"distill-ros launch {name}: {names} exited, so every node was stopped; "
              "its error is in the log above", file=sys.stderr)
    return 1 if failed and not stop["asked"] else 0


def _stop_all(procs: List[subprocess.Popen]) -> bool:
    """SIGINT every node still running (as ros2 launch does), then kill laggards."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10.0
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return any(p.returncode not in (0, -signal.SIGINT) for p in procs)


def run(args: argparse.Namespace) -> int:
    """Dispatch target of ``distill-ros launch``."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return launch(args.name, args.args)
    except (ValueError, FileNotFoundError) as err:
        print(f"distill-ros launch: error: {err}", file=sys.stderr)
        return 2


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``launch`` on its own: ``python -m distill_ros.launcher NAME [ARG:=VALUE ...]``."""
    parser = argparse.ArgumentParser(prog="distill-ros")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["launch", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
