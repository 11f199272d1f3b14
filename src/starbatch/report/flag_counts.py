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
    """A table as a picture: a row per analysis, a column per flag that occurs, each
    cell the count of rows (shaded by their share of the analysis's rows), so that a
    flag on 1 row of 300 is as easy to read as one on 200."""
    from .plots import pyplot, save

    plt = pyplot()
    labels = ["clean", *(label for label in NAMES.values() if any(r[label] for r in rows))]
    names = [f"{row['analysis']} ({row['n']})" for row in rows]
    counts = np.array([[row[label] for label in labels] for row in rows], dtype=float)
    share = counts / np.maximum([[row["n"]] for row in rows], 1) if rows else counts
    width = 1.6 + 0.9 * len(labels) + 0.075 * max(map(len, names), default=8)
    height = 1.5 + 0.32 * max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    if rows:
        # Any count shows as a tint, however small its share; more rows, darker.
        shade = np.where(counts > 0, 0.15 + 0.85 * share, 0.0)
        ax.imshow(shade, cmap="Blues", vmin=0, vmax=1.4, aspect="auto")
        for (i, j), count in np.ndenumerate(counts):
            text = f"{count:.0f}" if count else "."
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if count else "0.6")  # fmt: skip
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.tick_params(length=0)
    else:
        ax.text(0.5, 0.5, "no results", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("Rows with each flag, per analysis (rows in brackets; a row may have several)",
                 fontsize=9)  # fmt: skip
    left = (0.3 + 0.075 * max(map(len, names), default=8)) / width
    save(fig, output, dict(left=left, right=0.98, bottom=0.8 / height, top=1 - 0.45 / height))
