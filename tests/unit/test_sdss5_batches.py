"""SDSS-V batches end to end in process: the demo's DR19 apStar and mwmStar files
through the batch runner with the shipped Cannon (cannon_dr19, cannon_mwm), recovering
the known labels; a BOSS-only star and an apStar file standing where an mwmStar should
be give flagged rows naming the file and the reason, and the rest of the batch is fine."""

import shutil

import numpy as np
import pytest

from starbatch.analyses.registry import BUILTIN
from starbatch.engine import flags
from starbatch.engine.results import read_table
from starbatch.engine.runner import run_batch
from starbatch.offline.demo import (
    BOSS_ONLY_SDSS_ID,
    sdss5_relpath,
    sdss5_stars,
    sdss5_table,
    write_sdss5_demo,
)
from starbatch.sdss.products import MWMSTAR

FAKE_SDSS_ID = 5  # an apStar file copied to this mwmStar's path


@pytest.fixture(scope="module")
def sas(tmp_path_factory, emulator):
    root = tmp_path_factory.mktemp("sas")
    stars = sdss5_stars(4, seed=3, snr_range=(80, 120))
    write_sdss5_demo(root, stars, emulator, seed=3)
    fake = root / MWMSTAR.relative_path(MWMSTAR.parse_keys({"sdss_id": FAKE_SDSS_ID}))
    fake.parent.mkdir(parents=True)
    shutil.copy(root / sdss5_relpath(next(stars[stars.kind == "dr19"].itertuples())), fake)
    return root, stars


def plan(analysis: str, rows: list[dict], params: dict) -> dict:
    product = BUILTIN[analysis].product
    members = []
    for line, raw in enumerate(rows, start=1):
        keys = product.parse_keys(raw)
        members.append({"line": line, "keys": keys, "path": product.relative_path(keys)})
    return {
        "batch": f"{analysis}-00000000-0000",
        "analysis": analysis,
        "params": params,
        "members": members,
    }


def keys_of(row) -> dict:
    return {k: v for k, v in row.items() if k != "analysis" and v == v and v is not None}


def test_dr19_and_mwm_batches_recover_labels_and_flag_wrong_kinds(sas, tmp_path):
    root, stars = sas
    table = sdss5_table(stars, analyses=("cannon",))
    dr19 = [keys_of(r) for r in table.to_dict("records") if r["analysis"] == "cannon_dr19"]
    mwm_apo = [
        {"sdss_id": s.sdss_id}
        for s in stars.itertuples()
        if s.kind == "mwm" and s.telescope == "apo25m"
    ] + [{"sdss_id": BOSS_ONLY_SDSS_ID}, {"sdss_id": FAKE_SDSS_ID}]
    cannon = {p.name: p.default for p in BUILTIN["cannon"].parameters}
    runs = {
        "dr19": plan("cannon_dr19", dr19, {**cannon, "apstar_row": 0}),
        "apo": plan("cannon_mwm", mwm_apo, {**cannon, "observatory": "APO"}),
        "lco": plan(
            "cannon_mwm",
            [
                {"sdss_id": s.sdss_id}
                for s in stars.itertuples()
                if s.kind == "mwm" and s.telescope == "lco25m"
            ],
            {**cannon, "observatory": "LCO"},
        ),
    }
    results = {}
    for name, p in runs.items():
        run_batch(p, root, tmp_path / f"{name}.fits", BUILTIN)
        results[name] = read_table(tmp_path / f"{name}.fits").to_pandas()
    good = [results["dr19"], results["apo"].iloc[:1], results["lco"]]
    recovered = 0
    for frame in good:
        for row in frame.itertuples():
            assert row.flag & flags.FAILED == 0, row.error
            key = "obj" if "obj" in frame else "sdss_id"
            truth = stars[stars[key] == getattr(row, key)].iloc[0]
            assert abs(row.teff - truth.teff) < 150, (row.teff, truth.teff)
            recovered += 1
    assert recovered == 4
    boss_only, fake = results["apo"].iloc[1], results["apo"].iloc[2]
    assert boss_only.flag == flags.NO_SPECTRUM and boss_only.flag_names == "NO_SPECTRUM"
    assert f"mwmStar-0.6.0-{BOSS_ONLY_SDSS_ID}.fits" in boss_only.error
    assert "BOSS-only star" in boss_only.error and np.isnan(boss_only.teff)
    assert fake.flag == flags.READ_ERROR
    assert f"mwmStar-0.6.0-{FAKE_SDSS_ID}.fits: not an mwmStar file" in fake.error
    assert "looks like an apStar" in fake.error
