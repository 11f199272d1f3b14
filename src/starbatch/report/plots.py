"""The PNGs a person would rather look at than read."""

from __future__ import annotations

import numpy as np

from starbatch.engine import flags
from starbatch.engine.atomic import write_atomic
from starbatch.engine.batch_table import read_columns


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, output, margins: dict) -> None:
    """Write and close a figure. Fixed margins instead of tight_layout, which measures
    every tick label (~0.15 s a figure, at the end of every run)."""
    fig.subplots_adjust(**margins)
    write_atomic(output, lambda tmp: fig.savefig(tmp, format="png"))
    import matplotlib.pyplot as plt

    plt.close(fig)


def kiel_diagram(summary_path, output) -> None:
    plt = _pyplot()
    cols = read_columns(summary_path, ("analysis", "flag", "teff", "logg", "feh"))
    if "teff" in cols:
        ok = ((cols["flag"] & flags.FAILED) == 0) & (cols["analysis"] == "gridfit")
        teff, logg, feh = (cols[k][ok] for k in ("teff", "logg", "feh"))
    else:  # no labelling analysis in the run
        teff = logg = feh = np.zeros(0)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    if len(teff):
        sc = ax.scatter(teff, logg, c=feh, s=12, cmap="viridis", vmin=-2.5, vmax=0.5)
        fig.colorbar(sc, ax=ax, label="[Fe/H] (dex)")
    else:
        ax.text(0.5, 0.5, "no gridfit results", ha="center", transform=ax.transAxes)
    ax.invert_xaxis()
    ax.invert_yaxis()
    ax.set_xlabel("Teff (K)")
    ax.set_ylabel("log g (dex)")
    ax.set_title(f"Kiel diagram: {len(teff)} stars (gridfit, unflagged)")
    save(fig, output, dict(left=0.13, right=0.97, bottom=0.11, top=0.93))


LABELS = (("teff", "K"), ("logg", "dex"), ("feh", "dex"))


def truth_vs_fit(truth_csv, summary_path, output) -> None:
    """One row of panels per labelling analysis: estimate vs true label for the
    demo's synthetic stars (unflagged results), with bias and scatter."""
    import pandas as pd

    from starbatch.engine.results import read_table

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
    cols = read_columns(summary_path, ("analysis", "batch", "setup_share_s", "time_s"))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for analysis in sorted(set(cols["analysis"])):
        mine = cols["analysis"] == analysis
        batches, index, n = np.unique(cols["batch"][mine], return_inverse=True, return_counts=True)
        setup = np.bincount(index, weights=cols["setup_share_s"][mine], minlength=len(batches))
        work = np.bincount(index, weights=cols["time_s"][mine], minlength=len(batches))
        ax.scatter(n, setup, marker="s", label=f"{analysis}: set-up")
        ax.scatter(n, work, marker="o", label=f"{analysis}: analysis")
    ax.set_xlabel("observations in batch")
    ax.set_ylabel("seconds per batch")
    ax.set_yscale("symlog", linthresh=0.01)
    if len(cols["analysis"]):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no batch ran", ha="center", transform=ax.transAxes)
    ax.set_title("Set-up (paid once per batch) vs per-observation work")
    save(fig, output, dict(left=0.1, right=0.97, bottom=0.11, top=0.93))
