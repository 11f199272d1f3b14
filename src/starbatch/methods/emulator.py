"""The spectral emulator: a cubic polynomial in (Teff, logg, [Fe/H]) predicting
continuum-normalised flux (a Cannon model; see starbatch/resources/emulator/README.md).

Stored as plain arrays in an ``.npz`` (loaded with ``allow_pickle=False``):
``theta`` (npix, nterms), ``s2`` (npix,), ``wavelength`` (npix,, vacuum Angstrom
for the derived file), ``fid`` (3,), ``scale`` (3,), ``terms_json`` (str),
``label_names`` (3,), ``label_min``/``label_max`` (3,) the training range.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABEL_NAMES = ("teff", "logg", "feh")


def design_matrix(x: np.ndarray, terms: list) -> np.ndarray:
    """Rows [1, term_1(x), ...] for scaled labels ``x`` of shape (n, nlabels)."""
    x = np.atleast_2d(x)
    cols = [np.ones(len(x))]
    for term in terms:
        col = np.ones(len(x))
        for index, power in term:
            col = col * x[:, int(index)] ** power
        cols.append(col)
    return np.stack(cols, axis=1)


@dataclass
class Emulator:
    theta: np.ndarray
    s2: np.ndarray
    wavelength: np.ndarray
    fid: np.ndarray
    scale: np.ndarray
    terms: list
    label_min: np.ndarray
    label_max: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> Emulator:
        """Read an emulator file; ValueError naming the file if it is not a readable one."""
        try:
            with np.load(path, allow_pickle=False) as d:
                return cls(
                    theta=np.asarray(d["theta"], dtype=np.float64),
                    s2=np.asarray(d["s2"], dtype=np.float64),
                    wavelength=np.asarray(d["wavelength"], dtype=np.float64),
                    fid=np.asarray(d["fid"], dtype=np.float64),
                    scale=np.asarray(d["scale"], dtype=np.float64),
                    terms=json.loads(str(d["terms_json"])),
                    label_min=np.asarray(d["label_min"], dtype=np.float64),
                    label_max=np.asarray(d["label_max"], dtype=np.float64),
                )
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            # truncated, garbled, pickled or missing arrays (json errors are ValueErrors)
            raise ValueError(f"emulator {path}: not a readable emulator file ({exc})") from exc

    def scaled(self, labels: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(labels) - self.fid) / self.scale

    def flux(self, labels: np.ndarray) -> np.ndarray:
        """Normalised flux for labels (n, 3) -> (n, npix); (3,) -> (npix,)."""
        labels = np.asarray(labels, dtype=np.float64)
        out = design_matrix(self.scaled(labels), self.terms) @ self.theta.T
        return out[0] if labels.ndim == 1 else out
