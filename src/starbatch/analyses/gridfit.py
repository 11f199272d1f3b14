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

from .labels import (
    HYDROGEN_COLUMNS,
    LABEL_COLUMNS,
    LABELS,
    QUALITY_COLUMNS,
    QUALITY_PARAMETERS,
    RESID_CORR,
    hydrogen_check,
    label_row,
    quality_flag,
    usable,
)

GRID_DIR = "resources/grids"


class GridFit(Analysis):
    name = "gridfit"
    product = APSTAR
    # 2: errors widened by the correlated excess chi2 (methods/gridfit/fit.py widening).
    # 3: NOT_COOL_STAR and its columns (methods/hydrogen.py).
    version = "3"
    parameters = (
        Parameter("grid", str, "demo", help="model grid name: resources/grids/{grid}.npz"),
        *QUALITY_PARAMETERS,
    )
    # Measured on the demo (~0.2 s and ~600 MB per 100-star batch), with margins for
    # real files on shared file systems.
    resources = {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 1.0}
    columns = LABEL_COLUMNS + (
        Column("chi2_red", "", "reduced chi-square of the best fit (noise only)"),
        RESID_CORR,
        *QUALITY_COLUMNS,
        Column("n_pix", "", "pixels used in the fit", "i8"),
        *HYDROGEN_COLUMNS,
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
        if not ok:
            return out
        floor = tasks[ok[0]].params["fit_floor"]
        spectra = [tasks[i].spectrum for i in ok]
        fits = fit_many(model, spectra, on_error="return", fit_floor=floor)
        hflag, hydrogen = hydrogen_check(spectra)
        for j, (i, fit) in enumerate(zip(ok, fits, strict=True)):
            if isinstance(fit, Exception):
                out[i] = fit
            else:
                out[i] = self._row(fit, tasks[i], hflag[j], hydrogen[j])
        return out

    @staticmethod
    def _row(fit: dict, task: Task, flag: int, hydrogen: dict) -> dict:
        from starbatch.methods.gridfit.fit import MODEL_ERROR

        flag |= flags.GRID_EDGE if fit["at_edge"] else 0
        flag |= quality_flag(fit["fit_chi2"], fit["line_snr"], task.params)
        values = [fit[name] for name in LABELS]
        errors = [fit[name + "_err"] for name in LABELS]
        extra = {k: fit[k] for k in ("chi2_red", "resid_corr", "fit_chi2", "line_snr", "n_pix")}
        return label_row(values, errors, MODEL_ERROR, int(flag), **extra, **hydrogen)
