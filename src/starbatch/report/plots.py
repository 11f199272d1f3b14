"""The PNGs a person would rather look at than read."""

from __future__ import annotations

import numpy as np

from starbatch.engine import flags
from starbatch.engine.atomic import write_atomic
from starbatch.engine.batch_table import read_columns


def pyplot():
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
    plt = pyplot()
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
    ax.set_title(f"Kiel diagram: {len(teff)} stars (gridfit; failed rows left out)")
    save(fig, output, dict(left=0.13, right=0.97, bottom=0.11, top=0.93))


# (column, name, unit, format of bias and scatter)
LABELS = (
    ("teff", "Teff", "K", ".0f"),
    ("logg", "log g", "dex", ".3f"),
    ("feh", "[Fe/H]", "dex", ".3f"),
)


def truth_vs_fit(truth_csv, summary_path, output) -> None:
    """One row of panels per labelling analysis: estimate vs true label for the
    demo's synthetic stars (rows not flagged as failed), bias and scatter in each panel."""
    import pandas as pd

    from starbatch.engine.results import read_table

    plt = pyplot()
    truth = pd.read_csv(truth_csv)
    table = read_table(summary_path)
    ok = (np.asarray(table["flag"]) & flags.FAILED) == 0
    fit = table[ok].to_pandas() if "teff" in table.colnames else pd.DataFrame()
    # Analyses that estimate labels for the synthetic stars (not snr, not visits).
    matched = fit[fit["obj"].isin(truth["obj"]) & np.isfinite(fit["teff"])] if len(fit) else fit
    analyses = sorted(matched["analysis"].unique()) if len(matched) else []
    nrow = max(len(analyses), 1)
    height = 3.2 * nrow + 0.6  # inches: margins in inches, as fractions of it
    fig, axes = plt.subplots(nrow, 3, figsize=(12, height), dpi=100, squeeze=False)
    for row, analysis in enumerate(analyses):
        both = truth.merge(fit[fit["analysis"] == analysis], on="obj", suffixes=("_true", ""))
        for ax, (label, name, unit, form) in zip(axes[row], LABELS, strict=True):
            t, f = both[f"{label}_true"], both[label]
            ax.errorbar(t, f, yerr=both[f"{label}_err"], fmt=".", ms=3, alpha=0.6, elinewidth=0.5)
            lims = [min(t.min(), f.min()), max(t.max(), f.max())] if len(both) else [0, 1]
            ax.plot(lims, lims, "k--", lw=0.8)
            d = f - t
            stats = f"N={len(both)}\nbias {d.median():+{form}} {unit}\nscatter {d.std():{form}}"
            box = {"facecolor": "white", "alpha": 0.8, "lw": 0}
            ax.text(0.03, 0.97, f"{stats} {unit}", transform=ax.transAxes, va="top", fontsize=8,
                    bbox=box)  # fmt: skip
            ax.set_xlabel(f"true {name} ({unit})")
            row_name = f"{analysis}\n" if label == "teff" else ""  # the row's analysis, once
            ax.set_ylabel(f"{row_name}{name} ({unit})")
    fig.suptitle(
        "Demo: estimates against the truth for the synthetic spectra (rows that did not fail)",
        y=1 - 0.2 / height,
    )
    margins = dict(left=0.08, right=0.98, bottom=0.55 / height, top=1 - 0.65 / height)
    save(fig, output, {**margins, "hspace": 0.35, "wspace": 0.3})


# Marker per data product of the label analyses' variants (analyses.registry.family).
PRODUCT_MARKERS = {"apstar": "o", "visit": "^", "dr19": "s", "visit_dr19": "v", "mwm": "D",
                   "mwmvisit": "P"}  # fmt: skip


def analysis_styles(names) -> dict:
    """{analysis: (colour, marker)}: a colour per method (gridfit, apogeenet, cannon and
    each other analysis), a marker per data product, so variants read as their method."""
    from starbatch.analyses.registry import family

    plt = pyplot()
    palette = [*plt.cm.tab10.colors, *plt.cm.Dark2.colors]
    kinds = {name: family(name) or (name, "apstar") for name in names}
    methods = sorted({method for method, _ in kinds.values()})
    colour = {method: palette[i % len(palette)] for i, method in enumerate(methods)}
    return {
        name: (colour[method], PRODUCT_MARKERS.get(product, "o"))
        for name, (method, product) in sorted(kinds.items())
    }


# Set-up shares of a batch drawn as guides: auto sizing's default target, and even.
SHARES = (0.05, 0.5)


def batch_timing(summary_path, output) -> None:
    """One point per batch: the seconds its set-up took against the seconds its
    observations took, log-log, with the lines where set-up is 5% and 50% of the work:
    batching pays where the points lie below the 5% line."""
    plt = pyplot()
    cols = read_columns(summary_path, ("analysis", "batch", "setup_share_s", "time_s"))
    names = sorted(set(cols["analysis"]))
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    floor = 1e-3  # seconds: a batch's cheaper side is drawn here, not at 0 (log axes)
    span = [np.inf, 0.0]
    for analysis, (colour, marker) in analysis_styles(names).items():
        mine = cols["analysis"] == analysis
        batches, index = np.unique(cols["batch"][mine], return_inverse=True)
        setup = np.bincount(index, weights=cols["setup_share_s"][mine], minlength=len(batches))
        work = np.bincount(index, weights=cols["time_s"][mine], minlength=len(batches))
        setup, work = np.maximum(setup, floor), np.maximum(work, floor)
        label = f"{analysis} ({len(batches)})"
        ax.scatter(work, setup, s=26, color=colour, marker=marker, label=label, alpha=0.85)
        span = [min(span[0], work.min(), setup.min()), max(span[1], work.max(), setup.max())]
    if names:
        lo, hi = span[0] / 2, span[1] * 2
        ax.set_ylim(lo, hi)
        work = np.array([lo, hi])
        for share, style in zip(SHARES, ("k--", "k:"), strict=True):
            label = f"set-up {share:.0%} of a batch"
            ax.plot(work, work * share / (1 - share), style, lw=0.8, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.legend(fontsize=7, title="analysis (batches)", title_fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.01, 1))  # fmt: skip
    else:
        ax.text(0.5, 0.5, "no batch ran", ha="center", transform=ax.transAxes)
    ax.set_xlabel("seconds analysing the batch's observations (sum of time_s)")
    ax.set_ylabel("seconds of set-up (once per batch)")
    ax.set_title("What a batch paid once against what it spent per observation")
    save(fig, output, dict(left=0.09, right=0.72, bottom=0.11, top=0.93))
