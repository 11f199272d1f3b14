"""apogeenet: an APOGEENet-style 1-D CNN predicting Teff, logg and [Fe/H] from the
apStar spectrum, the mean over noise draws, with uncertainties from their spread (see
starbatch.methods.apogeenet). Loading the network is the set-up paid once per batch;
inference stacks the chunk's spectra (and all their noise draws) into tensors and runs on
CUDA when available, else on CPU.
Goodness of fit (POOR_FIT): the network has no chi-square of its own, so the spectrum is
compared with the emulator at the predicted labels, both prepared the same way.
Consistency (OFF_BEST_FIT): the emulator is also fitted from the predicted labels
(methods.emulator_fit); when it fits markedly better elsewhere (fit_chi2 lower by more than
``max_chi2_excess``), the network has read the spectrum differently from the physical
model, as on spectra unlike its training set (docs/analyses.md).
Uncertainties: the draws' spread times ``noise_corr`` (methods.goodness.noise_correlation:
the draws are white, a resampled spectrum's noise is not), then the model-error term in
quadrature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Column, Task
from starbatch.engine.identifiers import check_identifier
from starbatch.engine.params import Parameter
from starbatch.resources import EMULATOR, model_path
from starbatch.sdss.products import APSTAR

from . import labels

# fit_chi2 at the labels minus at the emulator's best fit near them: at most 0.46 on 1600
# held-out synthetic spectra, clean and perturbed, S/N 20-200; 0.96 for the DR17 M giant
# whose logg apogeenet overestimates by 0.6 dex (docs/analyses.md).
MAX_CHI2_EXCESS = 0.5


class ApogeeNet(Analysis):
    name = "apogeenet"
    product = APSTAR
    # 2: the labels are the mean over the noise draws (methods/apogeenet/network.py).
    # 3: chi2_excess and OFF_BEST_FIT.
    # 4: errors times noise_corr (noise correlated between neighbouring pixels).
    # 5: NOT_COOL_STAR and its columns (methods/hydrogen.py); apogeenet-v2 retrained with
    # half its labels uniform over the valid range.
    version = "5"
    parameters = (
        Parameter(
            "model",
            str,
            "v2",
            help="weights apogeenet-{model}.pt (project, else shipped)",
        ),
        Parameter(
            "n_draws",
            int,
            32,
            help="noise draws: label = their mean, error = their spread; 0: unperturbed, no errors",
        ),
        Parameter(
            "device",
            str,
            "auto",
            significant=False,
            help="torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N",
        ),
        *labels.QUALITY_PARAMETERS,
        Parameter(
            "max_chi2_excess",
            float,
            MAX_CHI2_EXCESS,
            help="flag OFF_BEST_FIT when the emulator's best fit near the labels has a "
            "fit_chi2 lower by more than this",
        ),
    )
    # A network in memory (GPUs only when the config asks: analyses.apogeenet.gpu).
    resources = {"mem_mb": 4000, "runtime_setup_s": 120, "runtime_per_obs_s": 0.5, "threads": 2}
    columns = (
        *labels.LABEL_COLUMNS,
        *labels.QUALITY_COLUMNS,
        Column(
            "chi2_excess",
            "",
            "fit_chi2 minus that of the emulator's best fit near the labels (OFF_BEST_FIT above "
            "max_chi2_excess)",
        ),
        Column(
            "noise_corr",
            "",
            "factor on the noise-draw errors for noise correlated between neighbouring pixels "
            "(1: white), from the residuals of that best fit",
        ),
        *labels.HYDROGEN_COLUMNS,
    )
    # Spectra per analyse_many call: x n_draws (or 1) network inputs (~35 kB each).
    chunk_size = 32

    @classmethod
    def model_files(cls, params) -> list[str]:
        model = check_identifier("model", params["model"])
        return [model_path(f"apogeenet-{model}.pt"), str(EMULATOR)]

    def load(self, params):
        from starbatch.methods.apogeenet.network import load_model
        from starbatch.methods.emulator import Emulator

        if params["n_draws"] < 0 or params["n_draws"] == 1:
            raise ValueError(f"n_draws must be 0 or >= 2, got {params['n_draws']}")
        from starbatch.methods.emulator_fit import NormalisedEmulator

        model = load_model(self.model_files(params)[0], params["device"])
        model.reference = NormalisedEmulator(Emulator.load(EMULATOR), model.cont_mask)
        return model

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from starbatch.methods.apogeenet.inputs import network_inputs, stages

        out, ok = labels.usable(tasks)
        if not ok:
            return out
        spectra = [tasks[i].spectrum for i in ok]
        cubic, p = stages(
            np.stack([s.flux for s in spectra]),
            np.stack([s.error for s in spectra]),
            np.stack([s.bad for s in spectra]),
            model.cont_mask,
        )
        params = tasks[ok[0]].params
        values, errors = model.predict(*network_inputs(p), n_draws=params["n_draws"])
        fit_chi2, line_snr, excess, corr = self._quality(model, cubic, values, params["fit_floor"])
        errors = errors * corr[:, None]
        edge = labels.outside(values, model.label_min, model.label_max)
        hflag, hydrogen = labels.hydrogen_check(spectra)
        for j, i in enumerate(ok):
            flag = (
                int(hflag[j])
                | (flags.GRID_EDGE if edge[j] else 0)
                | labels.quality_flag(fit_chi2[j], line_snr[j], params)
            )
            if excess[j] > params["max_chi2_excess"]:
                flag |= flags.OFF_BEST_FIT
            extra = {
                "fit_chi2": float(fit_chi2[j]),
                "line_snr": float(line_snr[j]),
                "chi2_excess": float(excess[j]),
                "noise_corr": float(corr[j]),
                **hydrogen[j],
            }
            out[i] = labels.label_row(values[j], errors[j], model.model_error, flag, **extra)
        return out

    @staticmethod
    def _quality(model, p, values, floor):
        """fit_chi2, line_snr and chi2_excess of the per-chip normalised spectra ``p``
        against the emulator at the predicted labels (clipped into its range), normalised
        the same way, and at its best fit from there; and the noise-correlation factor of
        that best fit's residuals."""
        from starbatch.methods.goodness import fit_quality, noise_correlation

        ref = model.reference
        good = ~p.bad & ref.valid

        def quality(m):
            return fit_quality(p.flux, p.error**2, m, np.ones_like(m), good, floor, 3)

        fit_chi2, line_snr = quality(ref.flux(values))
        best_flux = ref.best_fit(p.flux, p.error, ~p.bad, values, floor)[1]
        best = quality(best_flux)[0]
        corr = noise_correlation(p.flux - best_flux, p.error, good)
        return fit_chi2, line_snr, np.maximum(fit_chi2 - best, 0.0), corr
