"""Make the demo data: synthetic apStar (DR17, DR19) and mwmStar files with known labels
in the SDSS layouts.

CLI: python $SCRIPTS/make_demo.py --root resources/demo/sas --truth resources/demo/truth.csv
     python $SCRIPTS/make_demo.py --table config/observations.csv   (the matching table)
"""

import argparse
import logging
from pathlib import Path

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.atomic import write_atomic
from starbatch.engine.entry import run_entry
from starbatch.methods.emulator import Emulator
from starbatch.resources import EMULATOR, REAL_SAS

log = logging.getLogger("starbatch")


def make(
    root, truth_csv, n_stars, seed, snr, n_sdss5=0, emulator=EMULATOR, real_root=REAL_SAS
) -> None:
    import pandas as pd

    from starbatch.offline.demo import demo_stars, sdss5_stars, write_demo, write_sdss5_demo

    stars = demo_stars(n_stars, seed, snr)
    log.info("writing %d synthetic apStar files under %s", len(stars), root)
    model = Emulator.load(emulator)
    write_demo(Path(root), stars, model, seed, Path(real_root))
    sdss5 = sdss5_stars(n_sdss5, seed, snr)
    if n_sdss5:
        log.info("writing %d SDSS-V files (DR19 apStar, mwmStar) under %s", n_sdss5, root)
        write_sdss5_demo(Path(root), sdss5, model, seed)
    truth = pd.concat([stars.assign(kind="apstar"), sdss5], ignore_index=True)
    write_atomic(truth_csv, lambda tmp: truth.to_csv(tmp, index=False))


def from_snakemake(smk) -> None:
    p = smk.params
    make(
        p.root,
        smk.output.truth,
        p.n_stars,
        p.seed,
        p.snr,
        p.n_sdss5,
        smk.input.emulator,
        smk.input.real,
    )


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="resources/demo/sas")
    ap.add_argument("--truth", default="resources/demo/truth.csv")
    ap.add_argument("--table", help="write the matching observation table here instead")
    ap.add_argument("--n-stars", type=int, default=300)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--snr", type=float, nargs=2, default=[30, 200])
    ap.add_argument("--n-sdss5", type=int, default=12, help="SDSS-V (DR19, mwmStar) stars")
    a = ap.parse_args()
    if a.table:
        from starbatch.offline.project import write_demo_table

        demo = {"n_stars": a.n_stars, "seed": a.seed, "snr": a.snr, "n_sdss5": a.n_sdss5}
        write_demo_table(a.table, demo)
    else:
        make(a.root, a.truth, a.n_stars, a.seed, a.snr, a.n_sdss5)


run_entry(from_snakemake, cli, globals())
