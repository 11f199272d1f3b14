"""The in-memory spectrum every reader returns and every analysis consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The apStar log-linear wavelength grid (vacuum Angstrom): 10**(CRVAL1 + CDELT1 * i).
APSTAR_CRVAL1 = 4.179
APSTAR_CDELT1 = 6e-6
APSTAR_NPIX = 8575


def apstar_wavelength(
    crval1: float = APSTAR_CRVAL1, cdelt1: float = APSTAR_CDELT1, npix: int = APSTAR_NPIX
) -> np.ndarray:
    return 10.0 ** (crval1 + cdelt1 * np.arange(npix))


@dataclass
class Spectrum:
    """One 1-D spectrum. ``bad`` marks pixels no analysis may use (masked, NaN,
    zero or non-finite error); ``error`` is 1-sigma and is ``inf`` where bad."""

    wavelength: np.ndarray  # vacuum Angstrom
    flux: np.ndarray
    error: np.ndarray
    bad: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def ivar(self) -> np.ndarray:
        ivar = np.zeros_like(self.flux)
        good = ~self.bad
        ivar[good] = 1.0 / self.error[good] ** 2
        return ivar

    @property
    def n_good(self) -> int:
        return int((~self.bad).sum())
