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

from . import labels


class Cannon(Analysis):
    name = "cannon"
    product = APSTAR
    # 2: errors widened by the correlated excess chi2 (methods/goodness.py widening).
    # 3: NOT_COOL_STAR and its columns (methods/hydrogen.py); line_snr against the noise
    # alone, not noise + the model's scatter s2 (POOR_FIT on 40% of metal-poor dwarfs);
    # pixels the training never covered are bad; cannon-v2 cubic, trained over the valid range.
    version = "3"
    parameters = (
        Parameter("model", str, "v2", help="model cannon-{model}.npz (project, else shipped)"),
        *labels.QUALITY_PARAMETERS,
    )
    # A trained model in memory; generous margins.
    resources = {"mem_mb": 2000, "runtime_setup_s": 60, "runtime_per_obs_s": 0.5}
    columns = labels.LABEL_COLUMNS + (
        Column("chi2_red", "", "reduced chi-square (with the model's intrinsic scatter)"),
        labels.RESID_CORR,
        *labels.QUALITY_COLUMNS,
        Column("n_pix", "", "pixels used in the fit", "i8"),
        *labels.HYDROGEN_COLUMNS,
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
        from starbatch.methods.cannon.model import fit_labels, noise_errors
        from starbatch.methods.goodness import fit_quality

        out, ok = labels.usable(tasks)
        if not ok:
            return out
        spectra = [tasks[i].spectrum for i in ok]
        prepared = model.prepare(
            np.stack([s.flux for s in spectra]),
            np.stack([s.error for s in spectra]),
            np.stack([s.bad for s in spectra]),
        )
        fit = fit_labels(model, prepared)
        best, resid_corr = fit["flux"], fit["resid_corr"]
        errors, chi2_red = noise_errors(model, fit)
        params = tasks[ok[0]].params
        fit_chi2, line_snr = fit_quality(
            prepared.flux,
            prepared.error**2 + model.s2,
            best,
            np.ones_like(best),
            ~prepared.bad,
            params["fit_floor"],
            3,
            noise=prepared.error**2,
        )
        edge = labels.outside(fit["labels"], model.label_min, model.label_max)
        hflag, hydrogen = labels.hydrogen_check(spectra)
        for j, i in enumerate(ok):
            if fit["n_pix"][j] < 300:
                exc = ValueError(f"only {fit['n_pix'][j]} usable pixels after normalisation")
                exc.flag = flags.BAD_DATA
                out[i] = exc
                continue
            flag = int(hflag[j]) | (flags.GRID_EDGE if edge[j] else 0)
            flag |= labels.quality_flag(fit_chi2[j], line_snr[j], params)
            out[i] = labels.label_row(
                fit["labels"][j],
                errors[j],
                model.model_error,
                flag,
                chi2_red=float(chi2_red[j]),
                resid_corr=float(resid_corr[j]),
                fit_chi2=float(fit_chi2[j]),
                line_snr=float(line_snr[j]),
                n_pix=int(fit["n_pix"][j]),
                **hydrogen[j],
            )
        return out
