"""A regular (Teff, logg, [Fe/H]) grid of model spectra held in memory (for gridfit):
its specification, its file format, and the emulator's trained region.

The grid is the emulator evaluated once on a mesh (starbatch.offline.grids), so a batch
pays for the models once and every fit is then matrix products against ``flux``.

Nodes where the emulator is not trained are stored as NaN and marked ``valid=False``;
gridfit skips them. The emulator is a cubic polynomial: inside its training set it
interpolates, outside it extrapolates wildly (flux < 0 or > 1.3 for hot giants). Its
training set (Doppler's cool-star Cannon) fills the box Teff 3500-8000 K, logg 0-5,
[Fe/H] -2.5..+0.5 except the hot giants: above 5500 K it has only logg >= 3.5 (and two
logg 2.5-3 rows at 8000 K, too thin to trust). Cool dwarfs *are* trained. So a node is
valid when it is inside the emulator's label box and not (Teff > 5500 K and logg < 3.5).
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from starbatch.engine.atomic import atomic_path

AXES = ("teff", "logg", "feh")
# The hot-giant hole in the emulator's training set (see module docstring).
HOT_GIANT_TEFF = 5500.0
HOT_GIANT_LOGG = 3.5


@dataclass(frozen=True)
class GridSpec:
    """Each axis is (start, stop, step), stop inclusive."""

    teff: tuple[float, float, float]
    logg: tuple[float, float, float]
    feh: tuple[float, float, float]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(_axis(name, *getattr(self, name)) for name in AXES)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(a) for a in self.axes())

    def nbytes(self, npix: int) -> int:
        """Size of the float32 flux array, to check a grid fits in memory before building."""
        return int(np.prod(self.shape)) * npix * 4


# Loads in well under a second (~93 MB on the 8575-pixel apStar grid).
DEMO_GRID = GridSpec(teff=(3500, 8000, 250), logg=(0, 5, 0.5), feh=(-2.5, 0.5, 0.25))


def _axis(name: str, start: float, stop: float, step: float) -> np.ndarray:
    if not step > 0:
        raise ValueError(f"grid axis {name}: step must be > 0, got {step}")
    steps = (stop - start) / step
    n = int(round(steps))
    if n < 1 or abs(steps - n) > 1e-6:
        raise ValueError(
            f"grid axis {name}: ({start}, {stop}, {step}) must span a whole number (>= 1) of steps"
        )
    # Round so 0.1-type steps give exact-looking nodes (and equal axes compare equal).
    return np.round(start + step * np.arange(n + 1), 9)


@dataclass
class ModelGrid:
    teff: np.ndarray
    logg: np.ndarray
    feh: np.ndarray
    flux: np.ndarray  # float32 (nteff, nlogg, nfeh, npix); NaN at invalid nodes
    wavelength: np.ndarray  # (npix,) vacuum Angstrom
    valid: np.ndarray  # bool (nteff, nlogg, nfeh): node inside the trained region

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (self.teff, self.logg, self.feh)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.flux.shape[:3]

    def labels(self) -> np.ndarray:
        """(nteff, nlogg, nfeh, 3) labels of every node."""
        return np.stack(np.meshgrid(*self.axes, indexing="ij"), axis=-1)


def in_trained_region(labels: np.ndarray, label_min, label_max) -> np.ndarray:
    """True where (..., 3) labels are inside the emulator's training coverage."""
    labels = np.asarray(labels, dtype=float)
    eps = 1e-9  # grid nodes computed by arange must not fall off the box by rounding
    inside = np.all(
        (labels >= np.asarray(label_min) - eps) & (labels <= np.asarray(label_max) + eps), axis=-1
    )
    hot_giant = (labels[..., 0] > HOT_GIANT_TEFF) & (labels[..., 1] < HOT_GIANT_LOGG)
    return inside & ~hot_giant


# An extra field (id, length, zeros) that pads the flux member's local header, so that
# its data starts on a 64-byte boundary of the file and maps as an aligned array.
_PAD_ID = 0x5342
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra fields
_ZIP64_EXTRA = 20  # what force_zip64 appends to the extra field


def save_grid(path: str | Path, grid: ModelGrid) -> None:
    """An uncompressed .npz (np.load reads it), flux first and 64-byte aligned so that
    load_grid can memory-map it; written atomically, so a reader (or a killed job)
    never sees half a grid."""
    arrays = {
        "flux": np.asarray(grid.flux, dtype=np.float32),
        "teff": grid.teff,
        "logg": grid.logg,
        "feh": grid.feh,
        "wavelength": grid.wavelength,
        "valid": grid.valid,
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            fixed = zf.fp.tell() + _LOCAL_HEADER + len(info.filename) + _ZIP64_EXTRA + 4
            pad = -fixed % 64  # the .npy header itself is padded to a multiple of 64
            info.extra = struct.pack("<HH", _PAD_ID, pad) + bytes(pad)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def _memmap_member(path: str | Path, name: str) -> np.ndarray | None:
    """The array ``name`` of an uncompressed .npz, memory-mapped in place (None if it is
    compressed). save_grid stores without compression, so concurrent batch jobs on one
    node share one copy of the grid in the page cache rather than each reading its own."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the zip local file header; its name and extra lengths at 26
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order=order)


def load_grid(path: str | Path) -> ModelGrid:
    """Read a grid written by save_grid (flux memory-mapped); ValueError naming the file
    if it is not one."""
    keys = ("teff", "logg", "feh", "flux", "wavelength", "valid")
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [k for k in keys if k not in d.files]
            if missing:
                raise ValueError(f"model grid {path}: missing arrays {missing}")
            arrays = {k: d[k] for k in keys if k != "flux"}
            flux = _memmap_member(path, "flux")
            arrays["flux"] = d["flux"] if flux is None else flux
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"model grid {path}: not a readable grid file ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        # truncated or garbled: BadZipFile, EOFError or a zlib/IO error, depending where
        raise ValueError(f"model grid {path}: not a readable grid file ({exc})") from exc
    grid = ModelGrid(
        teff=np.asarray(arrays["teff"], dtype=np.float64),
        logg=np.asarray(arrays["logg"], dtype=np.float64),
        feh=np.asarray(arrays["feh"], dtype=np.float64),
        flux=arrays["flux"],
        wavelength=np.asarray(arrays["wavelength"], dtype=np.float64),
        valid=arrays["valid"],
    )
    _check(grid, path)
    return grid


def _check(grid: ModelGrid, path) -> None:
    def bad(why: str) -> ValueError:
        return ValueError(f"model grid {path}: {why}")

    for name, axis in zip(AXES, grid.axes, strict=True):
        if axis.ndim != 1 or len(axis) < 2 or not np.all(np.diff(axis) > 0):
            raise bad(f"axis {name} must be 1-D, increasing, with >= 2 nodes")
        if not np.allclose(np.diff(axis), axis[1] - axis[0], rtol=1e-6, atol=1e-9):
            raise bad(f"axis {name} is not evenly spaced")
    shape = tuple(len(a) for a in grid.axes)
    npix = len(grid.wavelength)
    if grid.flux.shape != (*shape, npix):
        raise bad(f"flux has shape {grid.flux.shape}, expected {(*shape, npix)} from the axes")
    if grid.flux.dtype != np.float32:
        raise bad(f"flux must be float32, got {grid.flux.dtype}")
    if grid.valid.shape != shape or grid.valid.dtype != bool:
        raise bad(f"valid must be a bool array of shape {shape}")
    if not grid.valid.any():
        raise bad("no valid node")
    # Invalid nodes are NaN by design; a NaN at a valid node means a damaged file.
    # Slice by slice: a boolean index of the whole flux would copy a large grid.
    for i in range(shape[0]):
        if not np.isfinite(grid.flux[i][grid.valid[i]]).all():
            raise bad(f"non-finite flux at a node marked valid (teff={grid.teff[i]:g})")
