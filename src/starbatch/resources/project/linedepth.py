"""linedepth: the depth of one absorption line in an apStar spectrum.

A user's analysis, kept outside starbatch: list this file under `analysis_modules:` in
the config (or register the class under the entry-point group `starbatch.analyses` of
your own package) and put `linedepth` rows in the table. Tested end to end by
tests/workflow/test_user_analyses.py.
"""

import numpy as np

from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.sdss.products import APSTAR
from starbatch.sdss.spectrum import apstar_wavelength


class LineWindows:
    """Pixel masks of the line and of its two continuum windows on the apStar grid."""

    def __init__(self, line: float, width: float):
        wave = apstar_wavelength()
        offset = np.abs(wave - line)
        self.line = offset <= width
        self.continuum = (offset >= 2 * width) & (offset <= 5 * width)
        if not self.line.any() or not self.continuum.any():
            raise ValueError(f"line {line} A +- {width} A is outside the apStar range")


class LineDepth(Analysis):
    name = "linedepth"
    product = APSTAR  # or APVISIT, or a DataProduct of your own
    parameters = (
        Parameter("wavelength", float, 15770.0, help="vacuum wavelength of the line (A)"),
        Parameter("width", float, 1.5, help="half-width of the line window (A)"),
        Parameter("verbose", bool, False, significant=False),
    )
    columns = (
        Column("depth", "", "1 - min(flux) / continuum in the line window"),
        Column("continuum", "1e-17 erg / (s cm2 Angstrom)", "median flux beside the line"),
    )

    def load(self, params):  # once per batch: the expensive part
        return LineWindows(params["wavelength"], params["width"])

    def analyse(self, model, task):  # once per observation
        s = task.spectrum  # Spectrum: wavelength, flux, error, bad, meta
        line = model.line & ~s.bad
        beside = model.continuum & ~s.bad
        if line.sum() < 3 or beside.sum() < 5:
            raise ValueError("too few good pixels in or beside the line")
        continuum = float(np.median(s.flux[beside]))
        return {"depth": 1.0 - float(s.flux[line].min()) / continuum, "continuum": continuum}
