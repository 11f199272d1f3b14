"""Flags per analysis: how many rows carry each flag bit (a table and a bar chart for the
report), so a run shows at a glance what fraction was POOR_FIT, GRID_EDGE, LOW_SNR..."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starbatch.engine import flags
from starbatch.engine.atomic import write_atomic
from starbatch.engine.results import read_table

NAMES = {bit: text.split(":")[0] for bit, text in flags.DESCRIPTIONS.items()}


def flag_counts(table) -> list[dict]:
    """One row per analysis: n rows, rows without flags, and the count of each bit."""
    analysis = np.asarray(table["analysis"]).astype(str)
    flag = np.asarray(table["flag"], dtype=np.int64)
    rows = []
    for name in sorted(set(analysis)):
        f = flag[analysis == name]
        row = {"analysis": name, "n": int(len(f)), "clean": int((f == 0).sum())}
        row.update({label: int((f & bit != 0).sum()) for bit, label in NAMES.items()})
        rows.append(row)
    return rows


def write_flag_summary(summary_path, table_out, plot_out) -> list[dict]:
    """The per-analysis counts as a TSV and a horizontal stacked bar chart (fractions)."""
    import pandas as pd

    rows = flag_counts(read_table(summary_path))
    frame = pd.DataFrame(rows, columns=["analysis", "n", "clean", *NAMES.values()])
    Path(table_out).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(table_out, lambda tmp: frame.to_csv(tmp, sep="\t", index=False))
    _plot(frame, plot_out)
    return rows


def _plot(frame, output) -> None:
    from .plots import _pyplot

    plt = _pyplot()
    labels = ["clean", *NAMES.values()]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(frame), 2) + 1.4), dpi=110)
    left = np.zeros(len(frame))
    n = np.maximum(frame["n"].to_numpy(), 1)
    colours = plt.cm.tab10(np.arange(len(labels)))
    for colour, label in zip(colours, labels, strict=True):
        share = frame[label].to_numpy() / n
        if share.any():
            ax.barh(frame["analysis"], share, left=left, color=colour, label=label)
            left += share
    # A row can carry several flags, so the bars may pass 1: they count flags, not rows.
    ax.set_xlabel("fraction of rows with the flag")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    write_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
