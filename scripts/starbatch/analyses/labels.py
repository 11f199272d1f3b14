"""What the stellar-label analyses (gridfit, apogeenet, cannon) share: their
result columns, the apStar-grid check that turns a wrong spectrum into a
BAD_DATA row, and the training-range test behind GRID_EDGE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Column, Task

LABEL_COLUMNS = (
    Column("teff", "K", "effective temperature"),
    Column("teff_err", "K", "1-sigma uncertainty of teff"),
    Column("logg", "dex", "log10 surface gravity (cgs)"),
    Column("logg_err", "dex", "1-sigma uncertainty of logg"),
    Column("feh", "dex", "[Fe/H]"),
    Column("feh_err", "dex", "1-sigma uncertainty of feh"),
)


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
