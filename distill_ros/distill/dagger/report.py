"""DAgger's curves: student success against teacher queries and against wall time."""

from __future__ import annotations

from pathlib import Path

from distill_ros.atomic import atomic_write, atomic_write_json


def write_curves(curves: list[dict], report_dir: Path) -> None:
    """`dagger_curves.json` and `dagger_curves.png` (two panels) in `report_dir`."""
    atomic_write_json(Path(report_dir) / "dagger_curves.json", curves)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in curves if "success" in c]
    fig, (by_queries, by_time) = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, key, label in ((by_queries, "queries", "teacher queries (labelled states)"),
                           (by_time, "wall_s", "wall time (s)")):
        ax.plot([c[key] for c in rows], [c["success"] for c in rows], marker="o")
        ax.set_xlabel(label)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    by_queries.set_ylabel("student success (alone)")
    fig.suptitle("DAgger: student success vs teacher queries and wall time")
    fig.tight_layout()
    atomic_write(Path(report_dir) / "dagger_curves.png",
                 lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
