"""The humanoid multi-mode student against its teachers and per-mode specialists (HOVER).

Runs (or resumes) every stage of `--config` (the multi-mode student), then the same config
once per `--modes` entry with the family `specialist_<mode>` (one student that always sees
that mode; the same budget), and writes the combined table and plots to
`<run>/report/specialists/` (eval.json, eval.md, eval.png). Prints one JSON object: wall
time per run, the student/teacher reward ratios with the full command, fall rates, and
where the multi-mode student matches or beats each specialist on its own mode.

    OPENBLAS_NUM_THREADS=1 python bench/bench_humanoid_distill.py \
        --config config/humanoid_quick.yaml [--modes full,head_hands] [--no-specialists]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: batched teachers, 1 thread

import yaml  # noqa: E402

from distill_ros.config import load_config  # noqa: E402
from distill_ros.pipeline import run_stages  # noqa: E402
from distill_ros.progress import stdout_to_stderr  # noqa: E402
from distill_ros.rundir import STAGES  # noqa: E402
from distill_ros.tasks.humanoid.commands import EVAL_MODES  # noqa: E402
from distill_ros.tasks.humanoid.report import versus_specialists, write_report  # noqa: E402

SPECIALIST_FAMILY = "distill_ros.tasks.humanoid.family:specialist_{}"


def run_config(data: dict, runs: Path, scratch: Path) -> tuple[Path, float, list[dict]]:
    """Every stage of the config `data` in runs/<name>; its folder, wall time and eval rows.

    The wall time is the sum of the stages' own, as the run recorded them when they ran (a
    resumed run reports the time its stages took, not the time to skip them).
    """
    path = scratch / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    with stdout_to_stderr():  # pybullet prints to fd 1: stdout holds only the JSON
        run = run_stages(load_config(path), runs / data["name"], list(STAGES))
    wall = sum(run.ledger["stages"][s].get("wall_s", 0.0) for s in STAGES)
    rows = json.loads((run.root / "report" / "eval.json").read_text())["rows"]
    return run.root, wall, rows


def main(argv: list[str] | None = None) -> int:
    """Run the multi-mode config and its specialists; print the comparison as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/humanoid_quick.yaml")
    p.add_argument("--runs", default="runs", help="folder of the run folders")
    p.add_argument("--modes", default=",".join(EVAL_MODES),
                   help="specialists to train, comma-separated")
    p.add_argument("--no-specialists", action="store_true")
    args = p.parse_args(argv)
    base = yaml.safe_load(Path(args.config).read_text())
    runs = Path(args.runs)
    scratch = runs / ".bench_configs"
    scratch.mkdir(parents=True, exist_ok=True)
    root, wall, multi = run_config(base, runs, scratch)
    out = {"config": args.config, "wall_s": {"multi_mode": round(wall, 1)}}
    rows = [dict(r, policy="multi-mode" if r["policy"] == "student" else r["policy"])
            for r in multi]
    specialists = []
    for mode in [] if args.no_specialists else args.modes.split(","):
        data = dict(base, name=f"{base['name']}_specialist_{mode}",
                    family=SPECIALIST_FAMILY.format(mode))
        _, wall, spec_rows = run_config(data, runs, scratch)
        out["wall_s"][f"specialist_{mode}"] = round(wall, 1)
        specialists += [dict(r, policy="specialist") for r in spec_rows
                        if r["policy"] == "student"]
    rows += specialists
    out["rows"] = rows
    out["versus_specialists"] = versus_specialists(
        [r for r in rows if r["policy"] == "multi-mode"], specialists)
    teacher = {r["clip"]: r for r in rows if r["policy"] == "teacher"}
    out["full_command_over_teacher"] = {
        r["clip"]: round(r["reward"] / teacher[r["clip"]]["reward"], 3)
        for r in rows if r["policy"] == "multi-mode" and r["mode"] == "full"
        and r["clip"] in teacher}
    write_report(root / "report" / "specialists", rows, out["versus_specialists"])
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
