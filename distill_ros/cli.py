"""`distill-ros`: run the whole pipeline or one stage of it on a YAML config."""

from __future__ import annotations

import argparse
import errno
import logging
import os
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
    p.add_argument("--executor", choices=("serial", "processes", "ray"),
                   help="where jobs run (default: executor of the config, serial): "
                   "`processes` uses --processes N; `ray` runs Ray tasks, on an embedded "
                   "local instance or the cluster at ray.address of the config")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate for testing and docs)."""
    parser = argparse.ArgumentParser(
        prog="distill-ros", description="Distil many robot policies into one ONNX student.",
        epilog="exit status: 0 done, 1 filesystem error (read-only, full, not a folder), "
        "2 bad config or arguments, 3 run folder in use by another process, 130 interrupted. "
        "Torch uses `threads` of the config (default 1) per process; $DISTILL_ROS_THREADS "
        "overrides it.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="all stages: teachers, collect, distill, export, eval",
                         description="Run every stage; finished stages are skipped, so a "
                         "killed run resumes when started again.")
    _add_common(run)
    for stage, text in STAGE_HELP.items():
        _add_common(sub.add_parser(stage, help=text, description=text))
    for name in ("run", "distill"):
        sub.choices[name].add_argument(
            "--nproc", type=int, metavar="N", help="train the offline student on N "
            "torch.distributed processes (gloo on CPU, nccl on N GPUs); the same global "
            "batch, so the same curve up to floating-point noise (default: distill.nproc, 1)")
    ev = sub.choices["eval"]
    ev.add_argument("--held-out", metavar="A,B", type=_names,
                    help="evaluate the finished run's export on these objects instead (any "
                    "built-in or `objects:` of CONFIG), without retraining; writes "
                    "report/eval_<objects>_n<episodes>_s<seed>/")
    ev.add_argument("--episodes", metavar="N", type=int,
                    help="episodes per object (default: eval.episodes of CONFIG)")
    add_launch_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `distill-ros` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "launch":
        return run_launch(args)
    quiet_progress_bars()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("distill_ros").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from distill_ros.config import load_config
    from distill_ros.executor import make_executor
    from distill_ros.pipeline import run_stages
    from distill_ros.rundir import STAGES, RunFolderBusy

    try:
        cfg = load_config(args.config)
        if getattr(args, "nproc", None) is not None:
            cfg.distill.nproc = positive_nproc(args.nproc)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.name
        stages = list(STAGES) if args.command == "run" else [args.command]
        executor = make_executor(args.processes, args.executor or cfg.executor, cfg.ray)
        if args.command == "eval" and (args.held_out or args.episodes):
            report = _evaluate_again(cfg, run_dir, args, executor)
        elif "eval" in stages:
            report = run_stages(cfg, run_dir, stages, force=args.force,
                                executor=executor).root / "report"
        else:
            run_stages(cfg, run_dir, stages, force=args.force, executor=executor)
            report = None
        if report is not None:
            print((report / "eval.md").read_text(), end="")
            print(f"report: {report} (eval.json, eval.md, eval.png)")
    except (ValueError, FileNotFoundError) as err:
        print(f"distill-ros: error: {err}", file=sys.stderr)
        return 2
    except RunFolderBusy as err:
        print(f"distill-ros: error: {err}", file=sys.stderr)
        return 3
    except OSError as err:  # read-only or full disk, a file where a folder should be, ...
        print(f"distill-ros: error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("distill-ros: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def positive_nproc(nproc: int) -> int:
    """`--nproc` checked: a whole number of ranks >= 1."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1 (1: train the student in this process), "
                         f"got {nproc}")
    return nproc


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected object names separated by commas, got "
                                         f"{text!r}")
    return names


def _evaluate_again(cfg, run_dir: Path, args: argparse.Namespace, executor) -> Path:
    """`eval --held-out/--episodes`: a finished run's export on other objects or episodes."""
    from distill_ros.evaluate import evaluate_run
    from distill_ros.pipeline import set_threads

    set_threads(cfg)
    return evaluate_run(cfg, run_dir, args.held_out or cfg.tasks + cfg.held_out,
                        args.episodes, executor)


def quiet_progress_bars(interval_s: float = 30.0) -> None:
    """When stderr is not a terminal (a log file, a pipe), redraw bars every `interval_s`.

    tqdm reads ``TQDM_*`` variables as defaults for every bar (ours and the libraries'); a
    user's own setting wins.
    """
    if not sys.stderr.isatty():
        for name in ("TQDM_MININTERVAL", "TQDM_MAXINTERVAL"):
            os.environ.setdefault(name, f"{interval_s:g}")


def describe_os_error(err: OSError) -> str:
    """One line for a filesystem error: what failed, on which path, and what to check."""
    path = err.filename if err.filename is not None else "a file"
    what = err.strerror or str(err)
    hints = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
             errno.EFBIG: "free some disk space or raise the file size limit",
             errno.EROFS: "choose a writable --run-dir", errno.EACCES: "choose a writable "
             "--run-dir or fix the folder's permissions", errno.EPERM: "choose a writable "
             "--run-dir or fix the folder's permissions", errno.ENOTDIR: "a file is in the "
             "way of a folder the run needs: choose another --run-dir"}
    hint = hints.get(err.errno, "check the run folder and the disk")
    return f"{what}: {path} ({hint}); then run the same command again to resume"


if __name__ == "__main__":
    sys.exit(main())
