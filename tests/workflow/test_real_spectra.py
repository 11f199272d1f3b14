"""gridfit, apogeenet and cannon on the four real DR17 files (two apStar stacks, two
apVisit spectra): physically plausible labels, directly and through the workflow."""

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits

from smk import snakemake, tiny_config
from starbatch.analyses.registry import BUILTIN
from starbatch.engine import flags
from starbatch.engine.analysis import Task
from starbatch.engine.results import read_table
from starbatch.methods.emulator import Emulator
from starbatch.methods.gridfit.grid import DEMO_GRID
from starbatch.methods.resample import visit_to_apstar
from starbatch.offline.evaluation import agreement, default_params
from starbatch.offline.grids import build_grid
from starbatch.resources import EMULATOR, REAL_SAS
from starbatch.sdss.readers import read_apstar, read_apvisit

SAS = REAL_SAS
REDUX = SAS / "dr17/apogee/spectro/redux"
GIANT = REDUX / "dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits"
DWARF = REDUX / "dr17/stars/apo25m/K04_083+13/apStar-dr17-2M19485057+5005279.fits"
VISIT_HOT = REDUX / "r13/visit/apo25m/N188/5095/55844/apVisit-r13-5095-55844-128.fits"
VISIT_GIANT = REDUX / "r13/visit/apo25m/120-08-RV/9518/57729/apVisit-r13-9518-57729-104.fits"

# Plausible (Teff, logg) boxes: the bulge M giant (RV-fit 3677 K / 0.53), the Kepler-field
# cool dwarf (5226 K / 5.0), the RV-field giant (RV template 4500 K / logg 3) and the hot
# NGC 188-field star (RV template 6500 K / 5, a turn-off / main-sequence F star).
PLAUSIBLE = {
    "2M17335483-2753043": ((3500, 4050), (0.2, 1.6), (-0.6, 0.3)),
    "2M19485057+5005279": ((4800, 5700), (3.8, 5.2), (-0.6, 0.3)),
    "2M00242666+5341178": ((4200, 5100), (1.6, 3.3), (-0.6, 0.3)),
    # S/N 45 and weak lines: [Fe/H] loosely constrained (VHELIO -33 km/s: not an NGC 188
    # member at -42 km/s, so not necessarily solar).
    "2M01183798+8403419": ((5500, 7000), (3.3, 4.8), (-1.2, 0.3)),
}
FIELD_OBJ = {
    "000+02": "2M17335483-2753043",
    "K04_083+13": "2M19485057+5005279",
    "120-08-RV": "2M00242666+5341178",
    "N188": "2M01183798+8403419",
}


@pytest.fixture(scope="module")
def spectra():
    return {
        "2M17335483-2753043": read_apstar(GIANT),
        "2M19485057+5005279": read_apstar(DWARF),
        "2M00242666+5341178": read_apvisit(VISIT_GIANT),
        "2M01183798+8403419": read_apvisit(VISIT_HOT),
    }


@pytest.fixture(scope="module")
def direct(spectra, tmp_path_factory):
    """{(analysis, obj): result} from each analysis's own load/analyse_many."""
    from starbatch.methods.gridfit.grid import save_grid

    grids = tmp_path_factory.mktemp("grids")
    save_grid(grids / "demo.npz", build_grid(Emulator.load(EMULATOR), DEMO_GRID))
    out = {}
    for base in ("gridfit", "apogeenet", "cannon"):
        for suffix, objs in (("", list(spectra)[:2]), ("_visit", list(spectra)[2:])):
            cls = BUILTIN[base + suffix]
            analysis = cls()
            params = default_params(cls)
            if base == "gridfit":
                model = _load_grid(grids / "demo.npz")
            else:
                model = analysis.load(params)
            tasks = [
                Task(line=i, keys={}, params=params, path=GIANT, spectrum=spectra[o])
                for i, o in enumerate(objs)
            ]
            for obj, result in zip(objs, analysis.analyse_many(model, tasks), strict=True):
                out[base, obj] = result
    return out


def _load_grid(path):
    from starbatch.methods.gridfit.grid import load_grid

    return load_grid(path)


@pytest.mark.parametrize("analysis", ["gridfit", "apogeenet", "cannon"])
@pytest.mark.parametrize("obj", list(PLAUSIBLE))
def test_real_spectra_give_plausible_labels(direct, analysis, obj):
    result = direct[analysis, obj]
    assert not isinstance(result, Exception), result
    (t_lo, t_hi), (g_lo, g_hi), (f_lo, f_hi) = PLAUSIBLE[obj]
    assert t_lo < result["teff"] < t_hi, result
    assert g_lo < result["logg"] < g_hi, result
    assert f_lo < result["feh"] < f_hi, result
    assert not result["flag"] & flags.FAILED
    for label in ("teff", "logg", "feh"):
        assert result[label + "_err"] > 0
    print(analysis, obj, {k: round(v, 3) for k, v in result.items() if k != "flag"})


# A target not met (see the real-spectra table of docs/analyses.md): apogeenet-v2 puts the bulge M
# giant at logg ~1.1 (DR17 RV fit 0.53; gridfit and cannon 0.56). Strict: it fails loudly
# once a model meets it.
NOT_MET = {("apogeenet", "2M17335483-2753043"): "apogeenet-v2: M giant logg ~1.1 vs 0.53"}


@pytest.mark.parametrize("analysis", ["gridfit", "apogeenet", "cannon"])
@pytest.mark.parametrize("obj", list(PLAUSIBLE))
def test_real_spectra_agree_with_their_header_labels(direct, spectra, analysis, obj, request):
    """Within 300 K / 0.5 dex of the apStar RV_TEFF / RV_LOGG (the DR17 RV-template fit),
    550 K / 1 dex of the apVisit template grid point, giants stay giants, dwarfs dwarfs;
    and a good fit of these real stars is not POOR_FIT."""
    if (analysis, obj) in NOT_MET:
        request.applymarker(pytest.mark.xfail(reason=NOT_MET[analysis, obj], strict=True))
    result, meta = direct[analysis, obj], spectra[obj].meta
    row = {**result, "kind": meta["kind"]}
    row.update({f"ref_{k}": meta[f"rv_{k}"] for k in ("teff", "logg", "feh")})
    ok, why = agreement(row)
    assert ok, why
    assert not result["flag"] & flags.POOR_FIT, (result["fit_chi2"], result["line_snr"])


@pytest.mark.parametrize("obj", list(PLAUSIBLE))
def test_apogeenet_flags_the_real_star_it_gets_wrong(direct, obj):
    """OFF_BEST_FIT on the one real result that misses its header labels (the emulator
    fits the M giant markedly better at other labels), on none of the three that agree."""
    result = direct["apogeenet", obj]
    wrong = ("apogeenet", obj) in NOT_MET
    assert bool(result["flag"] & flags.OFF_BEST_FIT) == wrong, result["chi2_excess"]


def test_visit_rest_frame_shift_uses_vrad(spectra):
    """Cross-correlating the resampled visit with a model spectrum peaks at 0 km/s when
    shifted by VRAD; the opposite sign would leave it at 2 x VRAD."""
    emulator = Emulator.load(EMULATOR)
    visit = spectra["2M00242666+5341178"]
    template = emulator.flux([4600.0, 2.4, 0.0])
    lags = np.arange(-30, 31)  # apStar pixels: 1 pixel = 4.14 km/s

    def peak(spectrum):
        good = ~spectrum.bad
        f = np.where(good, spectrum.flux / np.median(spectrum.flux[good]) - 1, 0)
        t = template - 1
        cc = [np.sum(np.roll(f, k) * t * good) for k in lags]
        return lags[int(np.argmax(cc))] * 4.1447

    assert abs(peak(visit_to_apstar(visit))) < 5
    assert abs(peak(visit_to_apstar(visit, vrad=-visit.meta["vrad"]))) > 100


def test_workflow_runs_on_real_stacks_and_visits(tmp_path):
    """Wiring through the real Snakemake workflow, in one table: apogeenet on the two
    stacks (torch in a batch job, committed weights found from a temporary working
    directory), cannon_visit on the two visits (the apVisit product, resampling). Every
    analysis/file pair is checked for plausibility directly above."""
    tiny_config(tmp_path, sas_base_dir=str(SAS), demo={"enabled": False})
    rows = [
        {"analysis": "apogeenet", "telescope": "apo25m", "field": f, "obj": o}
        for f, o in (("000+02", "2M17335483-2753043"), ("K04_083+13", "2M19485057+5005279"))
    ]
    rows += [
        {
            "analysis": "cannon_visit",
            "apred": "r13",
            "telescope": "apo25m",
            "field": f,
            "plate": p,
            "mjd": m,
            "fiber": fib,
        }
        for f, p, m, fib in (
            ("N188", "5095", "55844", "128"),
            ("120-08-RV", "9518", "57729", "104"),
        )
    ]
    pd.DataFrame(rows).fillna("").to_csv(tmp_path / "config/observations.csv", index=False)
    snakemake(tmp_path, "results/summary.csv")
    summary = read_table(tmp_path / "results/summary.fits").to_pandas()
    assert sorted(summary["analysis"]) == ["apogeenet"] * 2 + ["cannon_visit"] * 2
    assert not (summary["flag"] & flags.FAILED).any(), summary[["analysis", "field", "error"]]
    for _, row in summary.iterrows():
        (t_lo, t_hi), (g_lo, g_hi), _ = PLAUSIBLE[FIELD_OBJ[row["field"]]]
        assert t_lo < row["teff"] < t_hi and g_lo < row["logg"] < g_hi, row.to_dict()
    # The header's versions are the worker's, which imported torch (its supervisor not).
    (apogeenet,) = (tmp_path / "results/batches").glob("apogeenet-*.fits")
    assert fits.getheader(apogeenet, 1)["TORCHVER"] == torch.__version__
