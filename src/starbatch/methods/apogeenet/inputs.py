"""Input preparation of the apogeenet network (the same for training and inference).

Version 2 (weights apogeenet-v2 on). The network must read line depths, not how the flux
was calibrated: v1 fed it flux over a per-chip cubic continuum, and spectra made with
another continuum shape came out biased (at S/N 100, Teff +80 K, logg +0.2 dex) because
what a cubic cannot follow looked like line depth. Steps:

1. Per-chip continuum normalisation with the model's own continuum pixels
   (starbatch.methods.normalise.normalise_many): cubic Legendre, linear in the flux, so
   unbiased at any S/N.
2. Local flattening (``normalise.flatten_locally``): divide by the running mean of the
   continuum pixels (~45 A triangular window) so any continuum variation smoother than
   that (ripples, chip-edge roll-off, another response curve) is gone. A running mean
   over continuum pixels rather than a running median of all pixels: it stays linear in
   the flux (a median moves with the noise level, so labels would drift with S/N), and
   it does not dig into broad lines (Brackett wings of the F stars).
3. Bad pixels (reader's mask, chip gaps, unnormalisable chips) are set to the continuum
   (input 0) and get no noise in the draws: they carry no information.
4. The flux is clipped to [0, 1.5] (an unmasked cosmic ray or dead pixel cannot swamp
   the network), then the input is (flux - 1) * INPUT_SCALE.
5. Errors (for the noise draws only) are clipped at ERROR_CLIP x the spectrum's median
   normalised error, as the original APOGEE Net did.

What the preparation cannot remove (line-spread width, residual radial velocity, noise
level, masked pixels, telluric residuals) the network learns from augmented training
spectra (starbatch.offline.augment).
"""

from __future__ import annotations

import numpy as np

from starbatch.methods.normalise import (
    CONT_DEGREE,
    LOCAL_HALF,
    Prepared,
    flatten_locally,
    normalise_many,
)

INPUT_SCALE = 10.0
ERROR_CLIP = 5.0
PREP_VERSION = 2  # stored in the weights; a file made with another preparation is refused


def stages(flux, error, bad, cont_mask) -> tuple[Prepared, Prepared]:
    """(after step 1, after step 2): per-chip normalised, then locally flattened (n, npix).
    The first is what the goodness of fit compares with the emulator: the flattening
    would hide an artefact as continuum."""
    p = normalise_many(flux, error, bad, cont_mask, degree=CONT_DEGREE)
    return p, flatten_locally(p, cont_mask, LOCAL_HALF)


def normalised(flux, error, bad, cont_mask) -> Prepared:
    """Steps 1-2: continuum-normalised, locally flattened spectra (n, npix)."""
    return stages(flux, error, bad, cont_mask)[1]


def prepare_inputs(flux, error, bad, cont_mask) -> tuple[np.ndarray, np.ndarray]:
    """(x, e) float32 (n, npix): the network input and the clipped input-space error
    (0 at bad pixels). See the module docstring for the steps."""
    return network_inputs(normalised(flux, error, bad, cont_mask))


def network_inputs(p: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """(x, e) from normalised spectra (steps 3-5 of the module docstring)."""
    x = np.where(p.bad, 0.0, (np.clip(p.flux, 0.0, 1.5) - 1.0) * INPUT_SCALE)
    err = np.where(p.bad, np.nan, p.error)
    with np.errstate(all="ignore"):
        med = np.nanmedian(err, axis=1, keepdims=True)
    med = np.where(np.isfinite(med), med, 0.0)
    e = np.where(p.bad, 0.0, np.minimum(np.nan_to_num(err, nan=0.0), ERROR_CLIP * med))
    return x.astype(np.float32), (e * INPUT_SCALE).astype(np.float32)
