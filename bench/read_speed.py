"""Reading one spectrum file from the page cache, ms per file, for every SDSS product
starbatch reads: the whole file as bytes (the I/O floor), fitsio (cfitsio) and
astropy.io.fits reading the three arrays (flux, error, mask of the row), and starbatch's
own reader (``product.read``, as the batch runner calls it: arrays, masks, metadata).
Median over passes; the target is 0.4 ms per file.

    .venv/bin/python bench/read_speed.py [--files 20] [--passes 9] [--workdir DIR] [--keep]

Files are made in a temporary directory by the offline tooling (synthetic DR17/DR19
apStar, mwmStar, mwmVisit); no synthetic apVisit writer exists, so the apVisit rows read
copies of a real DR17 apVisit (renamed and marked SURVEY='sdss-v' for DR19, as
tests/unit/test_readers_sdss5.py does), and one extra row reads the real DR17 apStar, whose
header is 7x a synthetic one's. fitsio comes from bench/requirements.txt.

The last line printed is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from _common import machine, print_table, scratch
from astropy.io import fits

from starbatch.resources import REAL_SAS
from starbatch.sdss.products import PRODUCTS

TARGET_MS = 0.4
REAL = REAL_SAS / "dr17/apogee/spectro/redux"
REAL_APSTAR = REAL / "dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits"
REAL_APVISIT = REAL / "r13/visit/apo25m/N188/5095/55844/apVisit-r13-5095-55844-128.fits"
SOURCE = {"SDSS_ID": 1234567, "HEALPIX": 7769, "APOGEEID": "2M00400000+2000000", "RA": 10.0}


def make_files(workdir: Path, n: int) -> dict[str, tuple[str, list[Path], dict]]:
    """label -> (product name, n files, read parameters)."""
    from starbatch.methods.emulator import Emulator
    from starbatch.offline.synthetic import make_synthetic_star, write_apstar
    from starbatch.offline.synthetic_sdss5 import spectrum_row, write_apstar_dr19, write_mwm
    from starbatch.resources import EMULATOR

    star = make_synthetic_star(
        Emulator.load(EMULATOR), [4600, 2.4, -0.2], 80, np.random.default_rng(1)
    )
    row = {"sdss_id": 1234567, "obj": "2M00400000+2000000", "snr": 80.0, "telescope": "apo25m"}
    visits = [spectrum_row(*star, **row, mjd=59800 + i, plate="100", fiber=5) for i in range(3)]
    meta = {"FIELD": "000+02", "OBJID": "2M00400000+2000000", "SNR": 80.0}
    first = {
        "apStar DR17": ("ApStarFile", "apStar-dr17-2M00400000+2000000.fits", {}),
        "apStar DR17 (real)": ("ApStarFile", REAL_APSTAR.name, {}),
        "apVisit DR17 (real)": ("ApVisitFile", REAL_APVISIT.name, {}),
        "apStar DR19": ("ApStarFileDR19", "apStar-1.4-apo25m-2M00400000+2000000.fits", {}),
        "apVisit DR19 (real)": ("ApVisitFileDR19", "apVisit-1.4-apo25m-5095-55844-128.fits", {}),
        "mwmStar": ("MwmStarFile", "mwmStar-0.6.0-1234567.fits", {}),
        "mwmVisit": ("MwmVisitFile", "mwmVisit-0.6.0-1234567.fits", {"mwm_row": 1}),
    }
    paths = {label: workdir / name for label, (_, name, _) in first.items()}
    write_apstar(paths["apStar DR17"], *star, meta)
    shutil.copy(REAL_APSTAR, paths["apStar DR17 (real)"])
    shutil.copy(REAL_APVISIT, paths["apVisit DR17 (real)"])
    stacked = (np.stack([a, a, a]) for a in star)  # two stacks and one visit
    write_apstar_dr19(paths["apStar DR19"], *stacked, {**meta, "APRED": "1.4", "HEALPIX": 7769})
    shutil.copy(REAL_APVISIT, paths["apVisit DR19 (real)"])
    with fits.open(paths["apVisit DR19 (real)"], mode="update") as hdul:
        hdul[0].header["SURVEY"] = "sdss-v"
    co_add = spectrum_row(*star, **row, min_mjd=59800, max_mjd=59802)
    write_mwm(paths["mwmStar"], "mwmStar", SOURCE, {("APOGEE", "APO"): [co_add]})
    write_mwm(paths["mwmVisit"], "mwmVisit", SOURCE, {("APOGEE", "APO"): visits})
    files = {}
    for label, (product, _, params) in first.items():
        copies = [paths[label]]
        for i in range(1, n):  # distinct files of the same bytes
            copies.append(workdir / f"{i:03d}" / paths[label].name)
            copies[-1].parent.mkdir(exist_ok=True)
            shutil.copy(paths[label], copies[-1])
        files[label] = (product, copies, params)
    return files


def three_arrays(product: str, params: dict) -> tuple:
    """(fitsio reader, astropy reader) of the flux, error and mask of the row a product
    reader uses: HDU1-3 images, or three columns of one row of the mwm APOGEE table."""
    if product.startswith("Mwm"):
        row, columns = params.get("mwm_row", 0), ["flux", "ivar", "pixel_flags"]

        def with_fitsio(path):
            import fitsio

            with fitsio.FITS(str(path)) as f:
                return f[3].read(columns=columns, rows=[row])

        def with_astropy(path):
            with fits.open(path, memmap=False) as hdul:
                record = hdul[3].data[row]
                return [np.asarray(record[c]) for c in columns]

        return with_fitsio, with_astropy

    def with_fitsio(path):
        import fitsio

        with fitsio.FITS(str(path)) as f:
            return [f[i].read() for i in (1, 2, 3)]

    def with_astropy(path):
        with fits.open(path, memmap=False) as hdul:
            return [np.asarray(hdul[i].data) for i in (1, 2, 3)]

    return with_fitsio, with_astropy


def ms_per_file(read, paths: list[Path], passes: int) -> tuple[float, float]:
    """(CPU, wall) ms to read one file: medians over ``passes`` of the mean over the
    files. From the page cache a read is all CPU work (user + system), so on an idle
    machine the two agree; on a shared one, wall time also counts waiting for a core."""
    read(paths[0])  # imports, caches
    cpu, wall = [], []
    for _ in range(passes):
        c0, w0 = time.process_time(), time.perf_counter()
        for path in paths:
            read(path)
        cpu.append((time.process_time() - c0) / len(paths) * 1e3)
        wall.append((time.perf_counter() - w0) / len(paths) * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20, help="files per product")
    ap.add_argument("--passes", type=int, default=9)
    ap.add_argument("--workdir", type=Path, help="default: a temporary directory")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    try:
        import fitsio  # noqa: F401
    except ImportError:
        raise SystemExit("no fitsio: .venv/bin/pip install -r bench/requirements.txt") from None

    with scratch(a.workdir, a.keep, "starbatch-read-") as workdir:
        print(f"machine: {machine()}")
        files = make_files(workdir, a.files)
        for _, paths, _ in files.values():
            for path in paths:
                path.read_bytes()  # into the page cache
        rows, figures = [], {}
        for label, (product, paths, params) in files.items():
            with_fitsio, with_astropy = three_arrays(product, params)
            read = partial(PRODUCTS[product].read, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # astropy's notes on the real files' cards
                measured = {
                    "bytes": ms_per_file(lambda p: p.read_bytes(), paths, a.passes),
                    "fitsio": ms_per_file(with_fitsio, paths, a.passes),
                    "astropy": ms_per_file(with_astropy, paths, a.passes),
                    "starbatch": ms_per_file(read, paths, a.passes),
                }
            ms = {k: cpu for k, (cpu, _) in measured.items()}
            size_kb = paths[0].stat().st_size / 1e3
            ratio = ms["starbatch"] / ms["bytes"]
            meets = ms["starbatch"] <= TARGET_MS
            rows.append(
                [label, f"{size_kb:.0f}"]
                + [f"{ms[k]:.3f}" for k in ("bytes", "fitsio", "astropy", "starbatch")]
                + [f"{ratio:.1f}x", "yes" if meets else "NO"]
            )
            figures[label] = {
                "product": product,
                "kb": round(size_kb),
                **{f"{k}_ms": round(v, 4) for k, v in ms.items()},
                "starbatch_wall_ms": round(measured["starbatch"][1], 4),
                "starbatch/bytes": round(ratio, 2),
                "starbatch/astropy": round(ms["starbatch"] / ms["astropy"], 3),
                "meets_target": meets,
            }
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\nCPU ms per file, median of {a.passes} passes over {a.files} files each")
        print(f"(load average at the end: {load} on {os.cpu_count()} cores)\n")
        header = ["file", "kB", "bytes (floor)", "fitsio 3 arrays", "astropy 3 arrays"]
        header += ["starbatch read", "starbatch/floor", f"<= {TARGET_MS} ms"]
        print_table(rows, header)
        summary = {"benchmark": "read_speed", "target_ms": TARGET_MS, "load_average": load}
        print(json.dumps({**summary, "files": figures}))


if __name__ == "__main__":
    main()
