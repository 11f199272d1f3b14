"""Building gridfit's model grids from the emulator (the build_grid rule)."""

from __future__ import annotations

import numpy as np

from starbatch.methods.emulator import Emulator
from starbatch.methods.gridfit.grid import GridSpec, ModelGrid, in_trained_region


def build_grid(emulator: Emulator, spec: GridSpec, chunk: int = 1024) -> ModelGrid:
    """Evaluate the emulator on the mesh, ``chunk`` nodes at a time, straight into
    the float32 output (so the peak is the output plus one float64 chunk, not 2x)."""
    teff, logg, feh = spec.axes()
    labels = np.stack(np.meshgrid(teff, logg, feh, indexing="ij"), axis=-1).reshape(-1, 3)
    valid = in_trained_region(labels, emulator.label_min, emulator.label_max)
    npix = len(emulator.wavelength)
    flux = np.full((len(labels), npix), np.nan, dtype=np.float32)
    index = np.flatnonzero(valid)
    for start in range(0, len(index), chunk):
        rows = index[start : start + chunk]
        flux[rows] = emulator.flux(labels[rows])
    shape = (len(teff), len(logg), len(feh))
    return ModelGrid(
        teff=teff,
        logg=logg,
        feh=feh,
        flux=flux.reshape(*shape, npix),
        wavelength=np.asarray(emulator.wavelength, dtype=np.float64),
        valid=valid.reshape(shape),
    )
