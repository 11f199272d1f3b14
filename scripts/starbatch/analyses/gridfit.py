"""gridfit: FERRE-style fitting of Teff, logg and [Fe/H] against a grid of
model spectra held in memory. Loading the grid is the expensive part, paid
once per batch; the chi-square against the whole grid is computed for a chunk
of spectra at once with matrix products (see starbatch.gridfit)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import flags
from ..analysis import Analysis, Column, Task
from ..params import Parameter
from ..products import APSTAR, check_identifier

GRID_DIR = "resources/grids"


class GridFit(Analysis):
    name = "gridfit"
    product = APSTAR
    parameters = (
        Parameter("grid", str, "demo", help="model grid name: resources/grids/{grid}.npz"),
        Parameter("max_chi2_red", float, 5.0, help="flag POOR_FIT above this reduced chi2"),
    )
    columns = (
        Column("teff", "K", "effective temperature"),
        Column("teff_err", "K", "1-sigma uncertainty of teff"),
        Column("logg", "dex", "log10 surface gravity (cgs)"),
        Column("logg_err", "dex", "1-sigma uncertainty of logg"),
        Column("feh", "dex", "[Fe/H]"),
        Column("feh_err", "dex", "1-sigma uncertainty of feh"),
        Column("chi2_red", "", "reduced chi-square of the best fit"),
        Column("n_pix", "", "pixels used in the fit", "i8"),
    )
    chunk_size = 64

    @classmethod
    def model_files(cls, params) -> list[str]:
        return [f"{GRID_DIR}/{check_identifier('grid', params['grid'])}.npz"]

    def load(self, params):
        from ..grid import load_grid

        return load_grid(self.model_files(params)[0])

    def analyse(self, model, task: Task) -> dict:
        return self.analyse_many(model, [task])[0]

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from ..gridfit import fit_many
        from ..readers import check_apstar_grid

        out: list = [None] * len(tasks)
        usable = []
        for i, task in enumerate(tasks):
            try:
                check_apstar_grid(task.spectrum)
                usable.append(i)
            except ValueError as exc:
                exc.flag = flags.BAD_DATA
                out[i] = exc
        fits = fit_many(model, [tasks[i].spectrum for i in usable], on_error="return")
        for i, fit in zip(usable, fits, strict=True):
            out[i] = fit if isinstance(fit, Exception) else self._flagged(fit, tasks[i])
        return out

    @staticmethod
    def _flagged(fit: dict, task: Task) -> dict:
        flag = flags.GRID_EDGE if fit.pop("at_edge", False) else 0
        if fit["chi2_red"] > task.params["max_chi2_red"]:
            flag |= flags.POOR_FIT
        return {**fit, "flag": flag}
