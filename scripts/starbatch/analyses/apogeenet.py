"""apogeenet: an APOGEENet-style 1-D CNN predicting Teff, logg and [Fe/H] from the
apStar spectrum, the mean over noise draws, with uncertainties from their spread (see
starbatch.methods.apogeenet). Loading the network is the set-up paid once per batch;
inference stacks the chunk's spectra (and all their noise draws) into tensors and runs on
CUDA when available, else on CPU.
Goodness of fit (POOR_FIT): the network has no chi-square of its own, so the spectrum is
compared with the emulator at the predicted labels, both prepared the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Task
from starbatch.engine.identifiers import check_identifier
from starbatch.engine.params import Parameter
from starbatch.resources import EMULATOR, model_path
from starbatch.sdss.products import APSTAR

from . import labels


class ApogeeNet(Analysis):
    name = "apogeenet"
    product = APSTAR
    # 2: the labels are the mean over the noise draws (methods/apogeenet/network.py).
    version = "2"
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
    )
    # A network in memory (GPUs only when the config asks: analyses.apogeenet.gpu).
    resources = {"mem_mb": 4000, "runtime_setup_s": 120, "runtime_per_obs_s": 0.5, "threads": 2}
    columns = labels.LABEL_COLUMNS + labels.QUALITY_COLUMNS
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
        model = load_model(self.model_files(params)[0], params["device"])
        model.reference = Emulator.load(EMULATOR)
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
        fit_chi2, line_snr = self._quality(model, cubic, values, params["fit_floor"])
        edge = labels.outside(values, model.label_min, model.label_max)
        for j, i in enumerate(ok):
            flag = (flags.GRID_EDGE if edge[j] else 0) | labels.quality_flag(
                fit_chi2[j], line_snr[j], params
            )
            extra = {"fit_chi2": float(fit_chi2[j]), "line_snr": float(line_snr[j])}
            out[i] = labels.label_row(values[j], errors[j], model.model_error, flag, **extra)
        return out

    @staticmethod
    def _quality(model, p, values, floor):
        """fit_chi2, line_snr of the per-chip normalised spectra ``p`` against the emulator
        at the predicted labels (clipped into its range), normalised the same way."""
        from starbatch.methods.apogeenet.inputs import stages
        from starbatch.methods.goodness import fit_quality

        ref = model.reference
        flux = ref.flux(np.clip(values, ref.label_min, ref.label_max))
        no_bad = np.zeros(flux.shape, bool)
        m = stages(flux, np.full_like(flux, 1e-3), no_bad, model.cont_mask)[0]
        good = ~p.bad & ~m.bad
        return fit_quality(p.flux, p.error**2, m.flux, np.ones_like(m.flux), good, floor, 3)
