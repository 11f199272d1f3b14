"""apogeenet: an APOGEENet-style 1-D CNN predicting Teff, logg and [Fe/H] from the
apStar spectrum, with uncertainties from noise draws (see starbatch.methods.apogeenet). Loading the
network is the set-up paid once per batch; inference stacks the chunk's spectra (and
all their noise draws) into tensors and runs on CUDA when available, else on CPU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Task
from starbatch.engine.identifiers import check_identifier
from starbatch.engine.params import Parameter
from starbatch.resources import model_path
from starbatch.sdss.products import APSTAR

from .labels import LABEL_COLUMNS, outside, usable


class ApogeeNet(Analysis):
    name = "apogeenet"
    product = APSTAR
    parameters = (
        Parameter(
            "model",
            str,
            "v1",
            help="weights apogeenet-{model}.pt (project, else shipped)",
        ),
        Parameter("n_draws", int, 32, help="noise draws for the uncertainties; 0: no errors"),
        Parameter(
            "device",
            str,
            "auto",
            significant=False,
            help="torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N",
        ),
    )
    # A network in memory (GPUs only when the config asks: analyses.apogeenet.gpu).
    resources = {"mem_mb": 4000, "runtime_setup_s": 120, "runtime_per_obs_s": 0.5, "threads": 2}
    columns = LABEL_COLUMNS
    # Spectra per analyse_many call: x n_draws+1 network inputs (~35 kB each) per chunk.
    chunk_size = 32

    @classmethod
    def model_files(cls, params) -> list[str]:
        model = check_identifier("model", params["model"])
        return [model_path(f"apogeenet-{model}.pt")]

    def load(self, params):
        from starbatch.methods.apogeenet.network import load_model

        if params["n_draws"] < 0 or params["n_draws"] == 1:
            raise ValueError(f"n_draws must be 0 or >= 2, got {params['n_draws']}")
        return load_model(self.model_files(params)[0], params["device"])

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from starbatch.methods.apogeenet.network import prepare_inputs

        out, ok = usable(tasks)
        if not ok:
            return out
        spectra = [tasks[i].spectrum for i in ok]
        x, e = prepare_inputs(
            np.stack([s.flux for s in spectra]),
            np.stack([s.error for s in spectra]),
            np.stack([s.bad for s in spectra]),
            model.cont_mask,
        )
        values, errors = model.predict(x, e, n_draws=tasks[ok[0]].params["n_draws"])
        edge = outside(values, model.label_min, model.label_max)
        for j, i in enumerate(ok):
            row = {"flag": flags.GRID_EDGE if edge[j] else 0}
            for k, name in enumerate(("teff", "logg", "feh")):
                row[name] = float(values[j, k])
                row[name + "_err"] = float(errors[j, k])
            out[i] = row
        return out
