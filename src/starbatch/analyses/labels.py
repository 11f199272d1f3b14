"""What the stellar-label analyses (gridfit, apogeenet, cannon) share: their
result columns, the apStar-grid check that turns a wrong spectrum into a
BAD_DATA row, the training-range test behind GRID_EDGE, the goodness-of-fit
parameters and test behind POOR_FIT (starbatch.methods.goodness), and the result row
with the model-error term added to the noise errors in quadrature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Column, Task
from starbatch.engine.params import Parameter

LABEL_COLUMNS = (
    Column("teff", "K", "effective temperature"),
    Column("teff_err", "K", "1-sigma uncertainty of teff"),
    Column("logg", "dex", "log10 surface gravity (cgs)"),
    Column("logg_err", "dex", "1-sigma uncertainty of logg"),
    Column("feh", "dex", "[Fe/H]"),
    Column("feh_err", "dex", "1-sigma uncertainty of feh"),
)
LABELS = ("teff", "logg", "feh")
# The stars gridfit, apogeenet and cannon claim to describe: giants along the giant branch
# and dwarfs on the main sequence, in these Teff ranges (K), at these [Fe/H] (dex). Each
# analysis's labels and errors are held to their targets anywhere in it, and the
# independent evaluation draws its labels uniformly over it (docs/evaluation.md).
VALID_RANGE = {"giant_teff": (3800.0, 5200.0), "dwarf_teff": (4500.0, 6500.0), "feh": (-2.0, 0.4)}
# The fits' residual statistic behind their error widening (methods.goodness.widening).
RESID_CORR = Column(
    "resid_corr",
    "",
    "mean product of neighbouring pixels' whitened residuals: ~0 for noise alone, the "
    "correlated (model-error) part of chi2_red - 1, which widens the errors",
)

# POOR_FIT defaults (starbatch.methods.goodness): line depths uncertain by 45% (the real
# DR17 files need it: cannon's M giant gives fit_chi2 4.5 with it), and a fit must explain
# stellar lines at >= 10 sigma. Here, not in methods, so planning imports no numerics.
FIT_FLOOR = 0.45
MIN_LINE_SNR = 10.0

QUALITY_PARAMETERS = (
    Parameter(
        "max_chi2_red",
        float,
        5.0,
        help="flag POOR_FIT above this fit_chi2 (reduced chi-square with the model-error floor)",
    ),
    Parameter(
        "fit_floor",
        float,
        FIT_FLOOR,
        help="model-error floor of fit_chi2: fractional error of the model's line depths",
    ),
)
QUALITY_COLUMNS = (
    Column("fit_chi2", "", "reduced chi-square with the model-error floor (POOR_FIT above max)"),
    Column(
        "line_snr", "", f"significance of the lines the fit explains (POOR_FIT < {MIN_LINE_SNR:g})"
    ),
)
# The model-independent test behind NOT_COOL_STAR (starbatch.methods.hydrogen).
HYDROGEN_COLUMNS = (
    Column(
        "brackett_depth",
        "",
        "depth of the Brackett lines (Br11, fraction of the continuum; < 0: emission), "
        "measured without a stellar model (NOT_COOL_STAR)",
    ),
    Column(
        "metal_rms",
        "",
        "rms of the narrow (metal) lines, noise taken out, as a fraction of the continuum "
        "(NOT_COOL_STAR when small beside brackett_depth)",
    ),
)


def hydrogen_check(spectra: Sequence) -> tuple[np.ndarray, list[dict]]:
    """(NOT_COOL_STAR or 0 per spectrum, its HYDROGEN_COLUMNS values per spectrum), from
    the spectra as read: no analysis's model takes part (methods.hydrogen)."""
    from starbatch.methods.hydrogen import hydrogen_lines, not_cool_star

    h = hydrogen_lines(
        *(np.stack([getattr(s, k) for s in spectra]) for k in ("flux", "error", "bad"))
    )
    flag = np.where(
        not_cool_star(h["depth"], h["depth_err"], h["metal_rms"]), flags.NOT_COOL_STAR, 0
    )
    values = [
        {"brackett_depth": float(d), "metal_rms": float(m)}
        for d, m in zip(h["depth"], h["metal_rms"], strict=True)
    ]
    return flag, values


def label_row(values, noise_errors, model_error, flag: int = 0, **extra) -> dict:
    """A result row: labels, errors = noise errors (+) model error in quadrature."""
    errors = np.hypot(np.asarray(noise_errors, float), np.asarray(model_error, float))
    row = {"flag": int(flag), **extra}
    for k, name in enumerate(LABELS):
        row[name] = float(values[k])
        row[name + "_err"] = float(errors[k])
    return row


def quality_flag(fit_chi2: float, line_snr: float, params: dict) -> int:
    """POOR_FIT when the model does not describe the spectrum (goodness.poor_fit)."""
    from starbatch.methods.goodness import poor_fit

    bad = poor_fit(fit_chi2, line_snr, params["max_chi2_red"], MIN_LINE_SNR)
    return flags.POOR_FIT if bad else 0


def usable(tasks: Sequence[Task]) -> tuple[list, list[int]]:
    """Results list with BAD_DATA errors for spectra off the apStar grid (or without
    good pixels), and the indices of the others."""
    from starbatch.sdss.readers import check_apstar_grid  # astropy: not at planning time

    out: list = [None] * len(tasks)
    ok = []
    for i, task in enumerate(tasks):
        try:
            check_apstar_grid(task.spectrum)
            ok.append(i)
        except ValueError as exc:
            exc.flag = flags.BAD_DATA
            out[i] = exc
    return out, ok


def outside(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """True where a result lies outside the training label range."""
    return np.any((values < lo) | (values > hi), axis=-1)
