"""The humanoid evaluation's table, summary and plots (report/eval.json, eval.md, eval.png).

Rows are `evaluate.evaluate_policy`'s, each with `policy` (teacher, student, or a
specialist's label) and `split` (seen: the clip has a teacher in the run; held-out: not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill_ros.atomic import atomic_write, atomic_write_json, atomic_write_text

COLUMNS = (("fall_rate", "fall rate", ".2f"), ("reward", "imitation reward", ".3f"),
           ("mpjpe_mm", "MPJPE (mm)", ".0f"), ("joint_err_rad", "joint err (rad)", ".3f"),
           ("root_vel_err", "root vel err (m/s)", ".3f"))


def summarize(rows: list[dict]) -> dict:
    """Per clip: reward and fall rate of each policy and mode, and student/teacher reward.

    The ratio is the student's reward with the full command over the teacher's (the issue's
    "keeps 90% of each teacher's reward" check).
    """
    out: dict = {"clips": {}}
    for r in rows:
        clip = out["clips"].setdefault(r["clip"], {"split": r["split"]})
        clip[f"{r['policy']}/{r['mode']}"] = {"reward": r["reward"], "fall_rate": r["fall_rate"]}
    for name, clip in out["clips"].items():
        teacher, full = clip.get("teacher/any"), clip.get("student/full")
        if teacher and full and teacher["reward"] > 0:
            clip["student_full_over_teacher"] = full["reward"] / teacher["reward"]
    return out


def format_table(rows: list[dict]) -> str:
    """Markdown: one line per policy x clip x mode, metrics averaged over every step."""
    head = "| policy | clip | split | mode | " + " | ".join(c[1] for c in COLUMNS) + \
        " | episodes | steps |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 6)]
    for r in sorted(rows, key=lambda r: (r["clip"], r["mode"] != "any", r["mode"],
                                         r["policy"] != "teacher", r["policy"])):
        values = " | ".join(format(r[k], f) for k, _, f in COLUMNS)
        lines.append(f"| {r['policy']} | {r['clip']} | {r['split']} | {r['mode']} | {values} "
                     f"| {r['episodes']} | {r['steps']} |")
    lines += ["", "Teachers read the clip phase and ignore the command (mode `any`); students "
              "read proprioception and the masked command. Imitation reward: mean per step "
              "of the whole episode, steps lost to a fall counting 0. Errors: means over the "
              "steps before any fall; MPJPE over head, hands, pelvis and feet relative to the "
              "root."]
    return "\n".join(lines) + "\n"


def write_report(report_dir: Path, rows: list[dict], summary: dict) -> None:
    """eval.json (rows and summary), eval.md (table) and eval.png (reward and falls)."""
    report_dir = Path(report_dir)
    atomic_write_json(report_dir / "eval.json", {"rows": rows, "summary": summary})
    atomic_write_text(report_dir / "eval.md", format_table(rows))
    plot(rows, report_dir / "eval.png")


def plot(rows: list[dict], path: Path) -> None:
    """Grouped bars per clip x mode: imitation reward (top) and fall rate (bottom) by policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    keys = list(dict.fromkeys((r["clip"], r["mode"]) for r in rows if r["mode"] != "any"))
    per_clip = {(r["policy"], r["clip"]): r for r in rows if r["mode"] == "any"}  # teachers
    x = np.arange(len(keys))
    width = 0.8 / max(1, len(policies))
    fig, axes = plt.subplots(2, 1, figsize=(max(7, 0.9 * len(keys) + 2), 6), sharex=True)
    for ax, metric, label in ((axes[0], "reward", "imitation reward"),
                              (axes[1], "fall_rate", "fall rate")):
        for j, who in enumerate(policies):
            by_key = {(r["clip"], r["mode"]): r[metric] for r in rows if r["policy"] == who}
            if any(p == who for p, _ in per_clip):  # a teacher: its clip's value, every mode
                by_key = {k: per_clip[who, k[0]][metric] for k in keys
                          if (who, k[0]) in per_clip}
            values = [by_key.get(k, np.nan) for k in keys]
            ax.bar(x + (j - (len(policies) - 1) / 2) * width, values, width, label=who)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.05)
    axes[1].set_xticks(x, [f"{c}\n{m}" for c, m in keys], rotation=45, ha="right",
                       fontsize="small")
    axes[0].legend(fontsize="small", ncol=min(4, len(policies)))
    axes[0].set_title("humanoid: tracking per clip and command mode", fontsize="medium")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


#: per metric: True when higher is better
HIGHER_IS_BETTER = {"fall_rate": False, "reward": True, "mpjpe_mm": False,
                    "joint_err_rad": False, "root_vel_err": False}


def versus_specialists(multi: list[dict], specialists: list[dict]) -> dict:
    """Where the multi-mode student matches or beats each specialist on its own mode.

    Per (clip, mode) a specialist was measured on: the metrics the multi-mode student
    matches or beats, and whether they are at least half of them (HOVER's claim).
    """
    ours = {(r["clip"], r["mode"]): r for r in multi}
    cells = []
    for spec in specialists:
        mine = ours.get((spec["clip"], spec["mode"]))
        if mine is None:
            continue
        wins = [k for k, higher in HIGHER_IS_BETTER.items()
                if (mine[k] >= spec[k] if higher else mine[k] <= spec[k])]
        cells.append({"clip": spec["clip"], "mode": spec["mode"], "split": spec["split"],
                      "multi_matches_or_beats": wins,
                      "at_least_half": len(wins) * 2 >= len(HIGHER_IS_BETTER)})
    return {"cells": cells, "cells_at_least_half": sum(c["at_least_half"] for c in cells),
            "cells_total": len(cells)}


def plot_paired(specialists: dict, path: Path) -> None:
    """One panel per metric: multi-mode - specialist per clip, with its 95% interval.

    `specialists` is `bench_humanoid_versus`'s: mode -> {"clips": {clip: {"all": a
    `paired_comparison`}}}. Green: beats, red: loses, grey: within the noise.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(mode, clip, c["all"]) for mode, m in specialists.items()
             for clip, c in m["clips"].items()]
    colours = {"beats": "tab:green", "loses": "tab:red", "matches": "tab:grey"}
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(3.0 * len(COLUMNS), 3.4))
    for ax, (key, label, _) in zip(axes, COLUMNS):
        for x, (_, _, cmp) in enumerate(cells):
            m = cmp["metrics"][key]
            lo, hi = m["interval"]
            ax.errorbar([x], [m["diff"]], yerr=[[m["diff"] - lo], [hi - m["diff"]]], fmt="o",
                        color=colours[m["verdict"]], capsize=4)
        ax.axhline(0.0, color="black", lw=0.8)
        better = "higher" if HIGHER_IS_BETTER[key] else "lower"
        ax.set_title(f"{label}\n({better} is better)", fontsize="small")
        ax.set_xticks(range(len(cells)), [f"{clip}\n{mode}" for mode, clip, _ in cells],
                      fontsize="x-small", rotation=30, ha="right")
        ax.set_xlim(-0.6, len(cells) - 0.4)
    axes[0].set_ylabel("multi-mode - specialist")
    starts = cells[0][2]["starts"] if cells else 0
    fig.suptitle(f"multi-mode student vs specialists on their modes, {starts} starts, 95% "
                 "paired-bootstrap intervals (green beats, red loses)", fontsize="small")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
