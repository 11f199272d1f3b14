import numpy as np
import pytest

from starbatch.methods.gridfit.grid import (
    DEMO_GRID,
    GridSpec,
    in_trained_region,
    load_grid,
    save_grid,
)
from starbatch.offline.grids import build_grid

# Small, and crossing the hot-giant hole (Teff > 5500 K, logg < 3.5) so invalid nodes occur.
SPEC = GridSpec(teff=(5000, 6000, 500), logg=(2.5, 4.5, 1.0), feh=(-1.0, 0.0, 0.5))


@pytest.fixture(scope="module")
def grid(emulator):
    return build_grid(emulator, SPEC)


def test_axes_inclusive_and_validated():
    teff, logg, feh = DEMO_GRID.axes()
    assert (teff[0], teff[-1], len(teff)) == (3500, 8000, 19)
    assert (logg[0], logg[-1], len(logg)) == (0, 5, 11)
    assert (feh[0], feh[-1], len(feh)) == (-2.5, 0.5, 13)
    assert GridSpec((0, 1, 0.1), (0, 1, 0.5), (0, 1, 1)).axes()[0][3] == 0.3  # rounded
    assert DEMO_GRID.nbytes(8575) == 19 * 11 * 13 * 8575 * 4
    with pytest.raises(ValueError, match="teff.*whole number"):
        GridSpec((3500, 4000, 300), (0, 1, 1), (0, 1, 1)).axes()
    with pytest.raises(ValueError, match="step must be > 0"):
        GridSpec((3500, 4000, 250), (0, 1, 0), (0, 1, 1)).axes()


def test_trained_region():
    lo, hi = np.array([3500, 0, -2.5]), np.array([8000, 5, 0.5])
    labels = np.array(
        [[4500, 2.5, 0], [3500, 5, 0.5], [6000, 2, 0], [6000, 3.5, 0], [5500, 1, 0], [3400, 2, 0]]
    )
    assert in_trained_region(labels, lo, hi).tolist() == [True, True, False, True, True, False]


def test_build_matches_emulator_and_marks_untrained_nodes(emulator, grid):
    assert grid.flux.shape == (3, 3, 3, len(emulator.wavelength))
    assert grid.flux.dtype == np.float32
    # Teff 6000 with logg 2.5 is a hot giant: untrained, stored as NaN.
    assert grid.valid.sum() == 27 - 3
    assert not grid.valid[2, 0].any() and np.isnan(grid.flux[2, 0]).all()
    labels = grid.labels()[grid.valid]
    expected = emulator.flux(labels).astype(np.float32)
    np.testing.assert_allclose(grid.flux[grid.valid], expected, rtol=0, atol=1e-6)
    # Chunking is an implementation detail: a chunk smaller than the grid gives the same flux.
    np.testing.assert_array_equal(build_grid(emulator, SPEC, chunk=5).flux, grid.flux)


def test_save_load_round_trip(tmp_path, grid):
    path = tmp_path / "sub" / "g.npz"
    save_grid(path, grid)
    assert [p.name for p in path.parent.iterdir()] == ["g.npz"]  # no temp file left
    back = load_grid(path)
    for name in ("teff", "logg", "feh", "wavelength", "valid"):
        np.testing.assert_array_equal(getattr(back, name), getattr(grid, name))
    np.testing.assert_array_equal(back.flux, grid.flux)  # NaNs compare equal here
    # Memory-mapped from the file, not read into the process: batch jobs share it.
    assert isinstance(back.flux, np.memmap) and str(back.flux.filename) == str(path.resolve())
    assert back.flux.offset % 64 == 0  # aligned: no slow unaligned copies


def test_a_compressed_grid_still_loads(tmp_path, grid):
    path = tmp_path / "c.npz"
    arrays = {k: getattr(grid, k) for k in ("teff", "logg", "feh", "flux", "wavelength", "valid")}
    np.savez_compressed(path, **arrays)
    back = load_grid(path)
    assert not isinstance(back.flux, np.memmap)
    np.testing.assert_array_equal(back.flux, grid.flux)


def _rewrite(path, grid, **override):
    arrays = dict(
        teff=grid.teff,
        logg=grid.logg,
        feh=grid.feh,
        flux=grid.flux,
        wavelength=grid.wavelength,
        valid=grid.valid,
    )
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)


def test_truncated_file_is_a_clear_error(tmp_path, grid):
    path = tmp_path / "g.npz"
    save_grid(path, grid)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"model grid {path}.*not a readable"):
        load_grid(path)
    text = tmp_path / "t.npz"
    text.write_text("not a grid")
    with pytest.raises(ValueError, match=f"model grid {text}"):
        load_grid(text)


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(valid=None), r"missing arrays \['valid'\]"),
        (dict(teff=np.array([5000.0, 5500.0])), "flux has shape"),
        (dict(logg=np.array([2.5, 3.5, 3.0])), "axis logg must be"),
        (dict(feh=np.array([-1.0, -0.9, 0.0])), "axis feh is not evenly spaced"),
        (dict(valid=np.ones((3, 3, 3), bool)), "non-finite flux at a node marked valid"),
        (dict(valid=np.ones((3, 3), bool)), "valid must be a bool array"),
    ],
)
def test_damaged_content_is_a_clear_error(tmp_path, grid, override, message):
    path = tmp_path / "g.npz"
    _rewrite(path, grid, **override)
    with pytest.raises(ValueError, match=f"model grid {path}: {message}"):
        load_grid(path)


def test_float64_flux_rejected(tmp_path, grid):
    path = tmp_path / "g.npz"
    _rewrite(path, grid, flux=grid.flux.astype(np.float64))
    with pytest.raises(ValueError, match="flux must be float32"):
        load_grid(path)
