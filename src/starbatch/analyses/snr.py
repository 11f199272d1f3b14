"""snr: a cheap per-spectrum summary (median S/N, good-pixel count). No set-up
to speak of: useful for checking a table and for measuring workflow overhead."""

from __future__ import annotations

import numpy as np

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Column, Task
from starbatch.engine.params import Parameter
from starbatch.sdss.products import APSTAR


class SnrEstimate(Analysis):
    name = "snr"
    product = APSTAR
    parameters = (
        Parameter("min_snr", float, 10.0, help="below this median S/N the row is flagged LOW_SNR"),
    )
    # ~0.05 s per star, ~100 MB on the demo; generous margins.
    resources = {"mem_mb": 1000, "runtime_setup_s": 30, "runtime_per_obs_s": 0.2}
    columns = (
        Column("snr_median", "", "median flux/error over good pixels"),
        Column("flux_median", "1e-17 erg / (s cm2 Angstrom)", "median flux over good pixels"),
        Column("n_good", "", "number of usable pixels", "i8"),
    )

    def analyse(self, model, task: Task) -> dict:
        s = task.spectrum
        good = ~s.bad
        if not good.any():
            raise ValueError("no usable pixels")
        snr = float(np.median(s.flux[good] / s.error[good]))
        return {
            "snr_median": snr,
            "flux_median": float(np.median(s.flux[good])),
            "n_good": int(good.sum()),
            "flag": flags.LOW_SNR if snr < task.params["min_snr"] else 0,
        }
