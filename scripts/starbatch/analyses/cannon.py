"""cannon: The Cannon, quadratic in (Teff, logg, [Fe/H]) (see starbatch.methods.cannon).
Loading the model is the set-up; the test step fits all spectra of a chunk together
(vectorised Levenberg-Marquardt over spectra and starting points)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Column, Task
from starbatch.engine.identifiers import check_identifier
from starbatch.engine.params import Parameter
from starbatch.resources import model_path
from starbatch.sdss.products import APSTAR

from .labels import LABEL_COLUMNS, outside, usable


class Cannon(Analysis):
    name = "cannon"
    product = APSTAR
    parameters = (
        Parameter("model", str, "v1", help="model cannon-{model}.npz (project, else shipped)"),
        Parameter("max_chi2_red", float, 5.0, help="flag POOR_FIT above this reduced chi2"),
    )
    # A trained model in memory; generous margins.
    resources = {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 0.5}
    columns = LABEL_COLUMNS + (
        Column("chi2_red", "", "reduced chi-square (with the model's intrinsic scatter)"),
        Column("n_pix", "", "pixels used in the fit", "i8"),
    )
    chunk_size = 128

    @classmethod
    def model_files(cls, params) -> list[str]:
        model = check_identifier("model", params["model"])
        return [model_path(f"cannon-{model}.npz")]

    def load(self, params):
        from starbatch.methods.cannon.model import CannonModel

        return CannonModel.load(self.model_files(params)[0])

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from starbatch.methods.cannon.model import fit_labels

        out, ok = usable(tasks)
        if not ok:
            return out
        spectra = [tasks[i].spectrum for i in ok]
        prepared = model.prepare(
            np.stack([s.flux for s in spectra]),
            np.stack([s.error for s in spectra]),
            np.stack([s.bad for s in spectra]),
        )
        fit = fit_labels(model, prepared)
        chi2_red = fit["chi2"] / np.maximum(fit["n_pix"] - 3, 1)
        # Like gridfit: widen the formal errors when the fit is worse than the noise.
        inflate = np.sqrt(np.maximum(chi2_red, 1.0))
        edge = outside(fit["labels"], model.label_min, model.label_max)
        max_chi2 = tasks[ok[0]].params["max_chi2_red"]
        for j, i in enumerate(ok):
            if fit["n_pix"][j] < 300:
                exc = ValueError(f"only {fit['n_pix'][j]} usable pixels after normalisation")
                exc.flag = flags.BAD_DATA
                out[i] = exc
                continue
            flag = (flags.GRID_EDGE if edge[j] else 0) | (
                flags.POOR_FIT if chi2_red[j] > max_chi2 else 0
            )
            row = {"flag": flag, "chi2_red": float(chi2_red[j]), "n_pix": int(fit["n_pix"][j])}
            errors = np.sqrt(np.diag(fit["cov"][j])) * inflate[j]
            for k, name in enumerate(("teff", "logg", "feh")):
                row[name] = float(fit["labels"][j, k])
                row[name + "_err"] = float(errors[k])
            out[i] = row
        return out
