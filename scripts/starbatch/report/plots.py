"""The PNGs a person would rather look at than read."""

from __future__ import annotations

import numpy as np

from starbatch.engine import flags
from starbatch.engine.atomic import write_atomic
from starbatch.engine.results import read_table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _good_gridfit(table):
    if "teff" not in table.colnames:
        return table[:0]
    ok = (np.asarray(table["flag"]) & flags.FAILED) == 0
    ok &= np.asarray(table["analysis"]) == "gridfit"
    return table[ok]


def kiel_diagram(summary_path, output) -> None:
    plt = _pyplot()
    table = _good_gridfit(read_table(summary_path))
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    if len(table):
        sc = ax.scatter(
            table["teff"], table["logg"], c=table["feh"], s=12, cmap="viridis", vmin=-2.5, vmax=0.5
        )
        fig.colorbar(sc, ax=ax, label="[Fe/H] (dex)")
    else:
        ax.text(0.5, 0.5, "no gridfit results", ha="center", transform=ax.transAxes)
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff (K)")
    ax.set_ylabel("log g (dex)")
    ax.set_title(f"Kiel diagram: {len(table)} stars (gridfit, unflagged)")
    fig.tight_layout()
    write_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


LABELS = (("teff", "K"), ("logg", "dex"), ("feh", "dex"))


def truth_vs_fit(truth_csv, summary_path, output) -> None:
    """One row of panels per labelling analysis: estimate vs true label for the
    demo's synthetic stars (unflagged results), with bias and scatter."""
    import pandas as pd

    plt = _pyplot()
    truth = pd.read_csv(truth_csv)
    table = read_table(summary_path)
    ok = (np.asarray(table["flag"]) & flags.FAILED) == 0
    fit = table[ok].to_pandas() if "teff" in table.colnames else pd.DataFrame()
    # Analyses that estimate labels for the synthetic stars (not snr, not visits).
    matched = fit[fit["obj"].isin(truth["obj"]) & np.isfinite(fit["teff"])] if len(fit) else fit
    analyses = sorted(matched["analysis"].unique()) if len(matched) else []
    nrow = max(len(analyses), 1)
    fig, axes = plt.subplots(nrow, 3, figsize=(13, 3.6 * nrow), dpi=100, squeeze=False)
    for row, analysis in enumerate(analyses):
        both = truth.merge(fit[fit["analysis"] == analysis], on="obj", suffixes=("_true", ""))
        for ax, (label, unit) in zip(axes[row], LABELS, strict=True):
            t, f = both[f"{label}_true"], both[label]
            ax.errorbar(t, f, yerr=both[f"{label}_err"], fmt=".", ms=3, alpha=0.6, elinewidth=0.5)
            lims = [min(t.min(), f.min()), max(t.max(), f.max())] if len(both) else [0, 1]
            ax.plot(lims, lims, "k--", lw=0.8)
            d = f - t
            ax.set_title(
                f"{analysis} {label}: bias {d.median():+.3g}, scatter {d.std():.3g} {unit}"
                f" (N={len(both)})",
                fontsize=9,
            )
            ax.set_xlabel(f"true {label} ({unit})")
            ax.set_ylabel(f"{analysis} {label} ({unit})")
    fig.suptitle("Demo: estimates vs truth for the synthetic spectra (unflagged rows)")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    write_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def batch_timing(summary_path, output) -> None:
    """Per batch: set-up time against the time spent on its observations, the
    figure that shows whether batching pays (set-up should be a small share)."""
    plt = _pyplot()
    table = read_table(summary_path).to_pandas()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for analysis, rows in table.groupby("analysis"):
        per_batch = rows.groupby("batch").agg(
            setup=("setup_share_s", "sum"), work=("time_s", "sum"), n=("time_s", "size")
        )
        ax.scatter(per_batch["n"], per_batch["setup"], marker="s", label=f"{analysis}: set-up")
        ax.scatter(per_batch["n"], per_batch["work"], marker="o", label=f"{analysis}: analysis")
    ax.set_xlabel("observations in batch")
    ax.set_ylabel("seconds per batch")
    ax.set_yscale("symlog", linthresh=0.01)
    if len(table):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no batch ran", ha="center", transform=ax.transAxes)
    ax.set_title("Set-up (paid once per batch) vs per-observation work")
    fig.tight_layout()
    write_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
