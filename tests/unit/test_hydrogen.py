"""NOT_COOL_STAR's model-independent test (starbatch.methods.hydrogen): cool stars of the
whole valid range are not flagged, noise-free or noisy; a hot star's Brackett lines
without metal lines are, and so are hydrogen emission lines; the real DR17 files are not."""

import numpy as np

from starbatch.analyses.labels import VALID_RANGE
from starbatch.methods.gridfit.grid import in_trained_region
from starbatch.methods.hydrogen import brackett_template, hydrogen_lines, not_cool_star
from starbatch.methods.resample import visit_to_apstar
from starbatch.offline.evaluation import REAL_FILES
from starbatch.offline.out_of_model import out_of_model_spectra
from starbatch.offline.synthetic import gap_mask, make_synthetic_star
from starbatch.resources import REAL_SAS
from starbatch.sdss.products import APSTAR, APVISIT
from starbatch.sdss.readers import bad_pixels


def _flagged(flux, error, bad):
    h = hydrogen_lines(flux, error, bad)
    return not_cool_star(h["depth"], h["depth_err"], h["metal_rms"]), h


def _valid_labels(rng, n):
    """Giants and dwarfs over the declared range, 300 K and 0.5 dex beyond it."""
    lo, hi = VALID_RANGE["feh"]
    feh = rng.uniform(lo - 0.5, hi, n)
    giant = rng.random(n) < 0.5
    g_lo, g_hi = VALID_RANGE["giant_teff"]
    d_lo, d_hi = VALID_RANGE["dwarf_teff"]
    teff = np.where(giant, rng.uniform(g_lo, g_hi + 300, n), rng.uniform(d_lo, d_hi + 300, n))
    logg = np.where(giant, 2.5 + (teff - 4650 + 250 * feh) / 500, 4.4 + rng.normal(0, 0.1, n))
    return np.column_stack([teff, np.clip(logg, 0.2, 4.9), feh])


def test_cool_stars_are_not_flagged(emulator):
    rng = np.random.default_rng(5)
    labels = _valid_labels(rng, 400)
    labels = labels[in_trained_region(labels, emulator.label_min, emulator.label_max)]
    flux = emulator.flux(labels)
    bad = np.broadcast_to(gap_mask(), flux.shape)
    flagged, h = _flagged(flux, np.full(flux.shape, 1e-3), bad)
    assert not flagged.any(), labels[flagged]
    assert np.nanmax(h["depth"]) < 0.12
    noisy = [make_synthetic_star(emulator, lab, 50.0, rng) for lab in labels[:60]]
    f, e, m = (np.stack(a) for a in zip(*noisy, strict=True))
    flagged, _ = _flagged(f, e, bad_pixels(f, e, m))
    assert not flagged.any()


def test_hot_star_and_emission_lines_are_flagged(emulator):
    cases = out_of_model_spectra(emulator)
    hot = cases["hot star beyond the grid"]
    flagged, h = _flagged(hot.flux, hot.error, hot.bad)
    assert flagged[0] and h["depth"][0] > 0.3 and h["metal_rms"][0] < 0.002
    # Be-like: the same lines in emission on a flat continuum.
    rng = np.random.default_rng(1)
    flux = 500.0 * (1 + 0.3 * brackett_template()) + rng.normal(0, 2.5, hot.flux.size)
    bad = gap_mask()
    flagged, h = _flagged(np.where(bad, np.nan, flux), np.full(flux.size, 2.5), bad)
    assert flagged[0] and h["depth"][0] < -0.2
    for name in ("giant", "featureless continuum", "strong artefact"):
        s = cases[name]
        assert not _flagged(s.flux, s.error, s.bad)[0][0], name


def test_real_files_are_not_flagged():
    for f in REAL_FILES:
        path = REAL_SAS / f
        s = (
            APSTAR.read(path)
            if path.name.startswith("apStar")
            else visit_to_apstar(APVISIT.read(path))
        )
        flagged, h = _flagged(s.flux, s.error, s.bad)
        assert not flagged[0], (path.name, h)
