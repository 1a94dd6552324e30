"""The one-step report's plot: every policy readable, however close their points are.

Floating labels next to the points covered other points and each other; a legend cannot.
"""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from distill_ros.distill.onestep.eval import draw_success_vs_latency  # noqa: E402
from distill_ros.evaluate import wilson_interval  # noqa: E402

# As config/onestep.yaml reports them: two demonstrators and two one-step variants coincide.
ROWS = [("demo side_pos_y", 1.0, 0.05), ("demo side_neg_y", 1.0, 0.05),
        ("diffusion DDPM-100", 1.0, 21.0), ("diffusion DDIM-10", 0.98, 2.2),
        ("OneDP-S (stochastic, ONNX)", 1.0, 0.09), ("OneDP-D (deterministic, ONNX)", 1.0, 0.08),
        ("BC mlp (ONNX)", 0.99, 0.04)]


def test_success_vs_latency_texts_never_overlap():
    rows = [{"policy": p, "mean": m, "latency_ms": ms, "episodes": 100,
             "mean_ci": wilson_interval(round(m * 100), 100)} for p, m, ms in ROWS]
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    draw_success_vs_latency(ax, rows)
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    ticks = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1] + \
        [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
    legend = ax.get_legend().get_texts() if ax.get_legend() else []
    texts = [t for t in [*ticks, *legend, *ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]
             if t.get_text()]
    shown = " ".join(t.get_text() for t in texts)
    assert all(p in shown for p, _, _ in ROWS), "every policy is named"
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlaps = [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)]
    assert not overlaps, f"texts overlap: {overlaps}"
    points = ax.transData.transform([(ms, m) for _, m, ms in ROWS])
    covered = [(name, tuple(p)) for name, box in boxes for p in points
               if box.expanded(1.0, 1.0).padded(4).contains(*p)]   # 4 px: a marker's radius
    assert not covered, f"texts cover data points: {covered}"
    fig_box = fig.bbox
    assert all(fig_box.x0 <= x.x0 and x.x1 <= fig_box.x1 and fig_box.y0 <= x.y0
               for _, x in boxes), "a text falls outside the figure"
    plt.close(fig)


def test_gap_interval_is_newcombes_and_says_when_a_gap_is_noise():
    from distill_ros.distill.onestep.eval import gap_interval_pp

    def row(wins, n):
        return {"mean": wins / n, "mean_ci": wilson_interval(wins, n)}

    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339
    assert gap_interval_pp(row(56, 70), row(48, 80)) == (5.24, 33.39)
    # issue 15's old table: .94 vs .90 on 100 episodes each is within noise; at 400 it is not
    lo, hi = gap_interval_pp(row(94, 100), row(90, 100))
    assert lo < 0 < hi
    lo, hi = gap_interval_pp(row(376, 400), row(360, 400))
    assert 0 < lo < 4 < hi
