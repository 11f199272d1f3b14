"""An evaluation set made without the project's code: apStar files whose spectra come from
the published Doppler Cannon models (the `thedoppler` wheel's cool-star and hot-dwarf
models), evaluated by The Cannon's own package (`annieslasso`, module `thecannon`), then
observed with a line-spread function, continuum, bad-pixel and noise model written here
and nowhere else. The labels are drawn uniformly over the range the label analyses
declare (starbatch.analyses.labels.VALID_RANGE, passed in as numbers), not from their
training prior; stars outside every model (hot stars, a featureless continuum, hydrogen
emission) are made without any emulator.

Deliberately standalone: it imports numpy, astropy and thecannon only (never starbatch),
so it runs in its own environment (requirements-independent.txt, `make independent`;
workflow/envs/independent.yaml) and shares no code with the training sets it checks.
thecannon reads the Doppler model files with pickle: trusted data from a PyPI wheel, read
only here, at data-generation time.

    python src/starbatch/offline/independent.py OUT_DIR --n 100 --snr 50 100 200 \
        --seed 9100 --range '{"giant_teff": [3800, 5200], ...}'

writes OUT_DIR/sas/dr17/apogee/spectro/redux/dr17/stars/apo25m/<field>/apStar-dr17-<obj>.fits,
OUT_DIR/truth.csv (one row per file: obj, field, kind, labels, S/N, the observing
settings) and OUT_DIR/observations.csv (a table the workflow runs as it is)."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
from pathlib import Path

import numpy as np

C_KMS = 299792.458
# The apStar grid (SDSS DR17 datamodel): vacuum, log-linear.
CRVAL1, CDELT1, NPIX = 4.179, 6e-6, 8575
# Detector coverage (vacuum A) of the three APOGEE chips in the rest frame; the rest is
# the chip gaps and ends, which apStar files fill with flux 0 and a huge error.
CHIP_COVERAGE = ((15145.0, 15808.0), (15858.0, 16433.0), (16474.0, 16955.0))
# APOGEE_PIXMASK bits (SDSS datamodel).
BADPIX, CRPIX, SATPIX, PERSIST_LOW, SIG_SKYLINE, SIG_TELLURIC = 0, 1, 2, 11, 12, 13
# The hydrogen Brackett series n -> 4 in the APOGEE band (vacuum A), n = 11..20. Restated,
# not imported from starbatch.methods.hydrogen: this file shares no code with what it checks.
BRACKETT = {
    11: 16811.1,
    12: 16411.7,
    13: 16113.7,
    14: 15884.9,
    15: 15704.9,
    16: 15560.7,
    17: 15443.1,
    18: 15345.0,
    19: 15264.7,
    20: 15196.0,
}
MODELS = {
    "cool": "cannongrid_3000_18000_coolstars_norm_cubic_model.pkl",
    "hot": "cannongrid_3000_18000_hotdwarfs_norm_cubic_model.pkl",
}
KINDS = ("giant", "dwarf", "hot_cannon", "hot_brackett", "featureless", "emission")
OUT_OF_RANGE = KINDS[2:]


def apstar_wavelength() -> np.ndarray:
    return 10.0 ** (CRVAL1 + CDELT1 * np.arange(NPIX))


def air_to_vacuum(air: np.ndarray) -> np.ndarray:
    """Morton (2000, ApJS 130, 403) refractive index of standard air, via the vacuum
    wavenumber of the air wavelength (adequate to a few mA here)."""
    s2 = (1e4 / np.asarray(air, dtype=np.float64)) ** 2
    n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)
    return air * n


def load_cannon(kind: str):
    """A Doppler Cannon model read by thecannon, from the installed thedoppler wheel's data
    directory (the doppler package itself is never imported: it pulls in plotting and MCMC
    packages this does not need)."""
    import thecannon

    spec = importlib.util.find_spec("doppler")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("thedoppler is not installed in this environment (make independent)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / MODELS[kind]
    return thecannon.CannonModel.read(str(path))


class Instrument:
    """Line-spread function and pixel integration onto the apStar grid, per star.

    The LSF is a Gauss-Hermite profile (h4 > 0: a peakier core and stronger wings than a
    Gaussian, as APOGEE's measured LSFs) whose resolving power changes linearly across the
    band (fibres differ; here R_blue..R_red drawn per star), integrated over each apStar
    pixel's width (5 sub-positions), then sampled from the model's native 0.1 A grid."""

    def __init__(self, model_vac: np.ndarray, r_blue: float, r_red: float, h4: float):
        wave = apstar_wavelength()
        self.wave = wave
        x = (wave - wave[0]) / (wave[-1] - wave[0])
        sigma = wave / (r_blue + (r_red - r_blue) * x) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        step = np.median(np.diff(model_vac))
        half = int(np.ceil(6.0 * sigma.max() / step)) + 2
        start = np.searchsorted(model_vac, wave) - half
        self.index = start[:, None] + np.arange(2 * half + 1)[None, :]
        self.index = np.clip(self.index, 0, len(model_vac) - 1)
        offset = model_vac[self.index] - wave[:, None]
        width = wave * np.log(10.0) * CDELT1  # pixel width (A)
        weight = np.zeros_like(offset)
        for sub in np.linspace(-0.4, 0.4, 5):
            y = (offset - sub * width[:, None]) / sigma[:, None]
            hermite4 = (4 * y**4 - 12 * y**2 + 3) / np.sqrt(24.0)
            weight += np.exp(-0.5 * y**2) * (1 + h4 * hermite4)
        weight = np.clip(weight, 0.0, None)
        self.weight = weight / weight.sum(axis=1, keepdims=True)

    def observe(self, native_flux: np.ndarray, rv_kms: float = 0.0) -> np.ndarray:
        """Model flux on the native grid -> apStar pixels; ``rv_kms`` a residual shift."""
        flux = np.sum(self.weight * native_flux[self.index], axis=1)
        if rv_kms:
            shifted = self.wave * (1.0 - rv_kms / C_KMS)
            flux = np.interp(shifted, self.wave, flux)
        return flux


def continuum(teff: float, rng: np.random.Generator) -> np.ndarray:
    """Flux-calibrated continuum (1e-17 erg/s/cm^2/A): a Rayleigh-Jeans-to-Wien slope at
    ``teff`` with interstellar reddening, times a residual instrument response (each chip
    its own gain and a roll-off towards its ends) that flux calibration left."""
    wave = apstar_wavelength()
    hc_k = 1.438777e8  # A K
    slope = wave**-5 / np.expm1(hc_k / (wave * teff))
    a_h = rng.uniform(0.0, 1.5)  # H-band extinction (mag), A_lambda ~ lambda^-1.75
    slope = slope * 10 ** (-0.4 * a_h * (wave / 16500.0) ** -1.75)
    response = np.ones(NPIX)
    for lo, hi in CHIP_COVERAGE:
        inside = (wave >= lo - 30) & (wave <= hi + 30)
        u = (wave[inside] - 0.5 * (lo + hi)) / (0.5 * (hi - lo))
        roll = 1.0 - rng.uniform(0.02, 0.08) * u**4 + rng.uniform(-0.02, 0.02) * u
        response[inside] = rng.uniform(0.85, 1.15) * roll
    shape = slope * response
    return shape / np.median(shape) * 10 ** rng.uniform(1.5, 3.5)


def observe_star(norm_flux: np.ndarray, teff: float, snr: float, rng: np.random.Generator):
    """(flux, error, bitmask) of one apStar stack: continuum x spectrum, photon noise plus
    read noise scaled to a median S/N of ``snr`` over covered pixels, some cosmic rays
    and bad pixels (flagged, with garbage values), sky-line pixels flagged with inflated
    errors, warning bits, and the chip gaps and ends as flux 0 / error 1e10 (as the real
    stacks' visit rows)."""
    wave = apstar_wavelength()
    cont = continuum(teff, rng)
    signal = norm_flux * cont
    covered = np.zeros(NPIX, dtype=bool)
    shift = rng.integers(-4, 5)  # the gaps move a little with each star's RV
    for lo, hi in CHIP_COVERAGE:
        covered |= (wave >= lo) & (wave <= hi)
    covered = np.roll(covered, shift)
    # Counts per pixel: gain g so that the median S/N of the covered pixels is snr.
    read = 0.15  # read noise, as a fraction of the median continuum counts' sqrt
    med = np.median(signal[covered])
    gain = snr**2 * (1 + read**2) / med
    counts = np.clip(signal, 0.0, None) * gain
    sigma = np.sqrt(counts + (read**2) * med * gain) / gain
    flux = signal + rng.normal(0.0, 1.0, NPIX) * sigma
    error = sigma.copy()
    bitmask = np.zeros(NPIX, dtype=np.int64)
    idx = np.flatnonzero(covered)
    sky = rng.choice(idx, size=int(0.02 * idx.size), replace=False)
    bitmask[sky] |= 1 << SIG_SKYLINE
    error[sky] *= 3.0
    flux[sky] += rng.normal(0.0, 2.0, sky.size) * sigma[sky]
    warn = rng.choice(idx, size=int(0.04 * idx.size), replace=False)
    bitmask[warn] |= 1 << rng.choice([PERSIST_LOW, SIG_TELLURIC], size=warn.size)
    bad = rng.choice(idx, size=int(rng.uniform(0.002, 0.01) * idx.size), replace=False)
    bitmask[bad] |= 1 << rng.choice([BADPIX, CRPIX, SATPIX], size=bad.size)
    flux[bad] = cont[bad] * rng.uniform(0.0, 8.0, bad.size)
    flux[~covered], error[~covered] = 0.0, 1e10
    return flux, error, bitmask


def brackett_profile(wave: np.ndarray, depth11: float, width11: float) -> np.ndarray:
    """Normalised flux of a star with only hydrogen lines: each Brackett line n -> 4 a
    Voigt-like (Lorentzian core + Gaussian) absorption of depth and width falling towards
    the series limit, as in A and B stars (depth ~ n^-1.5, width ~ n^1, blended near the
    limit); depth11 < 0 gives emission lines."""
    tau = np.zeros_like(wave)
    for n, centre in BRACKETT.items():
        depth = depth11 * (11.0 / n) ** 1.5
        width = width11 * (n / 11.0)
        x = (wave - centre) / width
        tau += depth * (0.7 / (1 + x**2) + 0.3 * np.exp(-0.5 * (x / 0.6) ** 2))
    return 1.0 - tau


def giant_logg(teff: np.ndarray, feh: np.ndarray) -> np.ndarray:
    """A red-giant branch: logg 2.45 at 4700 K and solar metallicity, 0.0021 dex per K,
    metal-poor branches hotter by 230 K per dex (an eyeball fit of PARSEC 3 Gyr
    isochrones)."""
    return 2.45 + 0.0021 * (teff - 4700.0 + 230.0 * feh)


def dwarf_logg(teff: np.ndarray) -> np.ndarray:
    """Main sequence: logg 4.6 at 4500 K falling to 4.2 at 6500 K."""
    return 4.6 - 0.4 * (teff - 4500.0) / 2000.0


# The metal-poor giant branch ends hotter than the solar one: no giant is drawn whose
# branch logg would be below this (its tip), e.g. none cooler than ~4100 K at [Fe/H] -2.
GIANT_TIP_LOGG = 0.3


def draw_in_range(kind: str, n: int, valid: dict, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) labels uniform in Teff and [Fe/H] over the declared range of ``kind`` where
    such stars exist; logg on the giant branch or main sequence with a uniform +-0.3 /
    +-0.15 dex spread."""
    out = np.empty((0, 3))
    while len(out) < n:
        teff = rng.uniform(*valid[f"{kind}_teff"], n)
        feh = rng.uniform(*valid["feh"], n)
        if kind == "giant":
            branch = giant_logg(teff, feh)
            keep = branch >= GIANT_TIP_LOGG
            logg = branch + rng.uniform(-0.3, 0.3, n)
        else:
            keep = np.ones(n, dtype=bool)
            logg = dwarf_logg(teff) + rng.uniform(-0.15, 0.15, n)
        out = np.vstack([out, np.column_stack([teff, logg, feh])[keep]])
    return out[:n]


def native_vacuum(model) -> np.ndarray:
    return air_to_vacuum(np.asarray(model.dispersion, dtype=np.float64))


def write_apstar(path: Path, flux, error, bitmask, header: dict) -> None:
    """The DR17 apStar layout: HDU0 header (with the wavelength cards), HDU1..7 flux,
    error, bitmask, sky, sky error, telluric, telluric error as (2, 8575) rows (the two
    stacks: identical for a one-visit star)."""
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    h = primary.header
    for key, value in {
        "CRVAL1": CRVAL1,
        "CDELT1": CDELT1,
        "CRPIX1": 1,
        "CTYPE1": "LOG-LINEAR",
        "DC-FLAG": 1,
        "NWAVE": NPIX,
        "NVISITS": 1,
        **header,
    }.items():
        h[key] = value
    rows = [np.vstack([a, a]) for a in (flux, error, bitmask)]
    zeros = np.zeros_like(rows[0], dtype=np.float32)
    hdus = [primary]
    for data in (*rows, zeros, zeros, zeros, zeros):
        hdu = fits.ImageHDU(data.astype(np.int32 if data.dtype.kind == "i" else np.float32))
        hdu.header["CRVAL1"], hdu.header["CDELT1"] = CRVAL1, CDELT1
        hdus.append(hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name)
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    tmp.rename(path)


def make_set(out: Path, n: int, snrs, seed: int, valid: dict, n_out: int = 2) -> list[dict]:
    """Write the set; returns the truth rows. Per S/N: ``n`` in-range stars (60% giants,
    40% dwarfs) and ``n_out`` of each out-of-range kind."""
    rng = np.random.default_rng(seed)
    cool, hot = load_cannon("cool"), load_cannon("hot")
    vac = {"cool": native_vacuum(cool), "hot": native_vacuum(hot)}
    wave = apstar_wavelength()
    rows = []
    field = "INDEP"
    for snr in snrs:
        n_giant = int(round(0.6 * n))
        labels = {
            "giant": draw_in_range("giant", n_giant, valid, rng),
            "dwarf": draw_in_range("dwarf", n - n_giant, valid, rng),
            # Hot dwarfs and subgiants inside the hot model's training range.
            "hot_cannon": np.column_stack(
                [
                    rng.uniform(10000, 16000, n_out),
                    rng.uniform(3.5, 4.5, n_out),
                    rng.uniform(-0.5, 0.3, n_out),
                ]
            ),
            "hot_brackett": np.column_stack(
                [rng.uniform(10000, 16000, n_out), np.full(n_out, 4.0), np.zeros(n_out)]
            ),
            "featureless": np.full((n_out, 3), np.nan),
            "emission": np.full((n_out, 3), np.nan),
        }
        for kind in KINDS:
            for lab in labels[kind]:
                settings = {
                    "r_blue": rng.uniform(21000, 24500),
                    "r_red": rng.uniform(21000, 24500),
                    "h4": rng.uniform(0.0, 0.08),
                    "rv": rng.normal(0.0, 0.3),
                }
                if kind in ("giant", "dwarf", "hot_cannon"):
                    model = cool if kind != "hot_cannon" else hot
                    native = np.asarray(model(lab), dtype=np.float64).ravel()
                    lsf = {k: settings[k] for k in ("r_blue", "r_red", "h4")}
                    inst = Instrument(vac["cool" if kind != "hot_cannon" else "hot"], **lsf)
                    norm = inst.observe(native, settings["rv"])
                    teff = lab[0]
                elif kind == "hot_brackett":
                    t = lab[0]
                    # Br11 ~22% deep and ~9 A wide at 10,000 K, weaker and narrower hotter.
                    depth = 0.22 - 0.08 * (t - 10000) / 6000 + rng.normal(0, 0.01)
                    width = 9.0 - 3.0 * (t - 10000) / 6000
                    norm = brackett_profile(wave, depth, width)
                    teff = t
                elif kind == "featureless":
                    norm, teff = np.ones(NPIX), rng.uniform(4000, 12000)
                else:  # a Be-like star: Brackett lines in emission, 20-50% above continuum
                    norm = brackett_profile(wave, -rng.uniform(0.2, 0.5), rng.uniform(3, 6))
                    teff = rng.uniform(12000, 20000)
                flux, error, mask = observe_star(norm, teff, snr, rng)
                obj = f"2M{len(rows):08d}+{int(snr):03d}{KINDS.index(kind)}000"
                path = (
                    out
                    / "sas/dr17/apogee/spectro/redux/dr17/stars/apo25m"
                    / field
                    / f"apStar-dr17-{obj}.fits"
                )
                header = {"OBJID": obj, "FIELD": field, "SNR": float(snr), "TELESCOP": "apo25m"}
                write_apstar(path, flux, error, mask, header)
                rows.append(
                    {
                        "obj": obj,
                        "field": field,
                        "kind": kind,
                        "teff": lab[0],
                        "logg": lab[1],
                        "feh": lab[2],
                        "snr": float(snr),
                        **{k: round(float(v), 4) for k, v in settings.items()},
                    }
                )
    return rows


def write_tables(out: Path, rows: list[dict]) -> None:
    with open(out / "truth.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "observations.csv", "w", newline="") as fh:
        fh.write("analysis,telescope,field,obj\n")
        for analysis in ("gridfit", "apogeenet", "cannon"):
            for r in rows:
                fh.write(f"{analysis},apo25m,{r['field']},{r['obj']}\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=100, help="in-range stars per S/N")
    ap.add_argument("--n-out", type=int, default=2, help="stars of each out-of-range kind per S/N")
    ap.add_argument("--snr", type=float, nargs="+", default=[50.0, 100.0, 200.0])
    ap.add_argument("--seed", type=int, default=9100)
    ap.add_argument("--range", required=True, help="the declared valid range (JSON)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = make_set(a.out, a.n, a.snr, a.seed, json.loads(a.range), a.n_out)
    write_tables(a.out, rows)
    print(f"{len(rows)} apStar files in {a.out}")


if __name__ == "__main__":
    main()
