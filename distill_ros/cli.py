"""`distill-ros`: run the whole pipeline or one stage of it on a YAML config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from distill_ros.launcher import add_parser as add_launch_parser, run as run_launch

STAGE_HELP = {
    "teachers": "train (or load) one expert per task and measure its success",
    "collect": "roll the teachers out into dataset shards under data/",
    "distill": "train the one student on the dataset (checkpoints latest + best)",
    "export": "export the best student to export/policy.onnx and check parity",
    "eval": "per-task success of teachers and student; writes report/eval.{json,md,png}",
}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="pipeline YAML, e.g. config/grasp_quick.yaml")
    p.add_argument("--run-dir", help="run folder (default: runs/<config name>)")
    p.add_argument("--force", action="store_true",
                   help="redo stages that are already complete")
    p.add_argument("--processes", type=int, default=0, metavar="N",
                   help="spread jobs (collection shards) over N worker processes; the "
                   "artefacts are the same as with the default 0 (all in this process)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate for testing and docs)."""
    parser = argparse.ArgumentParser(
        prog="distill-ros", description="Distil many robot policies into one ONNX student.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="all stages: teachers, collect, distill, export, eval",
                         description="Run every stage; finished stages are skipped, so a "
                         "killed run resumes when started again.")
    _add_common(run)
    for stage, text in STAGE_HELP.items():
        _add_common(sub.add_parser(stage, help=text, description=text))
    add_launch_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `distill-ros` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "launch":
        return run_launch(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("distill_ros").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from distill_ros.config import load_config
    from distill_ros.executor import make_executor
    from distill_ros.pipeline import run_stages
    from distill_ros.rundir import STAGES

    try:
        cfg = load_config(args.config)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.name
        stages = list(STAGES) if args.command == "run" else [args.command]
        run = run_stages(cfg, run_dir, stages, force=args.force,
                         executor=make_executor(args.processes))
        if "eval" in stages:
            print((run.root / "report" / "eval.md").read_text(), end="")
            print(f"report: {run.root / 'report'} (eval.json, eval.md, eval.png)")
    except (ValueError, FileNotFoundError) as err:
        print(f"distill-ros: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distill-ros: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
