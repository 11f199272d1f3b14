"""Flags per analysis: how many rows carry each flag bit (a table and a bar chart for the
report), so a run shows at a glance what fraction was POOR_FIT, GRID_EDGE, LOW_SNR..."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from starbatch.engine import flags
from starbatch.engine.atomic import write_atomic
from starbatch.engine.batch_table import read_columns

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
    rows = flag_counts(read_columns(summary_path, ("analysis", "flag")))
    columns = ["analysis", "n", "clean", *NAMES.values()]
    Path(table_out).parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, columns, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(table_out, write)
    _plot(rows, plot_out)
    return rows


def _plot(rows: list[dict], output) -> None:
    from .plots import _pyplot, save

    plt = _pyplot()
    labels = ["clean", *NAMES.values()]
    height = 0.45 * max(len(rows), 2) + 1.4
    fig, ax = plt.subplots(figsize=(7, height), dpi=110)
    names = [row["analysis"] for row in rows]
    left = np.zeros(len(rows))
    n = np.maximum([row["n"] for row in rows], 1)
    colours = plt.cm.tab10(np.arange(len(labels)))
    for colour, label in zip(colours, labels, strict=True):
        share = np.array([row[label] for row in rows]) / n
        if share.any():
            ax.barh(names, share, left=left, color=colour, label=label)
            left += share
    # A row can carry several flags, so the bars may pass 1: they count flags, not rows.
    ax.set_xlabel("fraction of rows with the flag")
    ax.legend(fontsize=7, loc="lower right")
    # Room for the longest analysis name (~0.08 inch a character of the 10-pt labels).
    left = min(0.5, 0.04 + 0.08 * max(map(len, names), default=4) / 7)
    save(fig, output, dict(left=left, right=0.97, bottom=0.9 / height, top=1 - 0.3 / height))
