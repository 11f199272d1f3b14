"""gridfit: FERRE-style fitting of Teff, logg and [Fe/H] against a grid of
model spectra held in memory. Loading the grid is the expensive part, paid
once per batch; the chi-square against the whole grid is computed for a chunk
of spectra at once with matrix products (see starbatch.methods.gridfit)."""

from __future__ import annotations

from collections.abc import Sequence

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Column, Task
from starbatch.engine.identifiers import check_identifier
from starbatch.engine.params import Parameter
from starbatch.sdss.products import APSTAR

from .labels import LABEL_COLUMNS, usable

GRID_DIR = "resources/grids"


class GridFit(Analysis):
    name = "gridfit"
    product = APSTAR
    parameters = (
        Parameter("grid", str, "demo", help="model grid name: resources/grids/{grid}.npz"),
        Parameter("max_chi2_red", float, 5.0, help="flag POOR_FIT above this reduced chi2"),
    )
    # Measured on the demo (~0.2 s and ~600 MB per 100-star batch), with margins for
    # real files on shared file systems.
    resources = {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 1.0}
    columns = LABEL_COLUMNS + (
        Column("chi2_red", "", "reduced chi-square of the best fit"),
        Column("n_pix", "", "pixels used in the fit", "i8"),
    )
    chunk_size = 64

    @classmethod
    def model_files(cls, params) -> list[str]:
        return [f"{GRID_DIR}/{check_identifier('grid', params['grid'])}.npz"]

    def load(self, params):
        from starbatch.methods.gridfit.grid import load_grid

        return load_grid(self.model_files(params)[0])

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from starbatch.methods.gridfit.fit import fit_many

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
