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
from .labels import LABEL_COLUMNS, usable

GRID_DIR = "resources/grids"


class GridFit(Analysis):
    name = "gridfit"
    product = APSTAR
    parameters = (
        Parameter("grid", str, "demo", help="model grid name: resources/grids/{grid}.npz"),
        Parameter("max_chi2_red", float, 5.0, help="flag POOR_FIT above this reduced chi2"),
    )
    columns = LABEL_COLUMNS + (
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

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from ..gridfit import fit_many

        out, ok = usable(tasks)
        fits = fit_many(model, [tasks[i].spectrum for i in ok], on_error="return")
        for i, fit in zip(ok, fits, strict=True):
            out[i] = fit if isinstance(fit, Exception) else self._flagged(fit, tasks[i])
        return out

    @staticmethod
    def _flagged(fit: dict, task: Task) -> dict:
        flag = flags.GRID_EDGE if fit.pop("at_edge", False) else 0
        if fit["chi2_red"] > task.params["max_chi2_red"]:
            flag |= flags.POOR_FIT
        return {**fit, "flag": flag}
