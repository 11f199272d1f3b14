"""The catalogue: Parquet summaries with units and descriptions in the schema, the
star-by-star comparison table (Parquet and FITS), its interactive page rendered by a
real headless Chromium, and the DuckDB query of docs/results.md run as written."""

import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from starbatch.engine import flags
from starbatch.engine.catalogue import write_parquet
from starbatch.engine.results import read_table, write_fits
from starbatch.report.compare import comparison_table, write_comparison
from starbatch.report.interactive import comparison_page

REPO = Path(__file__).resolve().parents[2]


def test_parquet_keeps_units_descriptions_flags_and_nulls(tmp_path):
    t = Table()
    t["obj"] = ["2M1", "2M2"]
    t["teff"] = [4500.0, np.nan] * u.K
    t["teff"].description = "effective temperature"
    t["logg"] = Table.Column([2.5, 1.0], unit="dex", description="log g")
    t["n_pix"] = Table.MaskedColumn([10, 20], mask=[False, True])
    write_parquet(t, tmp_path / "s.parquet")
    schema = pq.read_schema(tmp_path / "s.parquet")
    assert schema.field("teff").metadata == {
        b"unit": b"K",
        b"description": b"effective temperature",
    }
    assert schema.field("logg").metadata[b"unit"] == b"dex"
    doc = json.loads(schema.metadata[b"starbatch"])
    assert doc["columns"]["teff"] == {"unit": "K", "description": "effective temperature"}
    assert doc["flag_bits"][str(flags.NO_SPECTRUM)].startswith("NO_SPECTRUM")
    frame = pd.read_parquet(tmp_path / "s.parquet")
    assert frame["n_pix"].isna().tolist() == [False, True]
    assert list(frame["obj"]) == ["2M1", "2M2"] and np.isnan(frame["teff"][1])
    assert [p.name for p in tmp_path.iterdir()] == ["s.parquet"]  # atomic: no temp left


def test_a_table_read_back_is_rewritten_without_unit_warnings(tmp_path):
    # A summary merges tables read from FITS, where dex comes back unrecognised.
    t = Table()
    t["teff"] = [4500.0] * u.K
    t["logg"] = Table.Column([2.5], unit=u.dex)
    write_fits(t, tmp_path / "batch.fits")
    again = read_table(tmp_path / "batch.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error", u.UnitsWarning)
        write_fits(again, tmp_path / "summary.fits")
    header = fits.getheader(tmp_path / "summary.fits", 1)
    assert (header["TUNIT1"], header["TUNIT2"]) == ("K", "dex")


def test_parquet_from_a_fits_summary(tmp_path):
    """Tables read back from FITS hold big-endian arrays, which Arrow cannot take as is."""
    t = Table({"teff": [4500.0, 5000.0] * u.K, "flag": np.array([0, 16], np.int32)})
    write_fits(t, tmp_path / "s.fits")
    write_parquet(read_table(tmp_path / "s.fits"), tmp_path / "s.parquet")
    frame = pd.read_parquet(tmp_path / "s.parquet")
    assert list(frame["flag"]) == [0, 16] and list(frame["teff"]) == [4500.0, 5000.0]


def summary(analysis, rows):
    """A per-analysis summary frame as collect writes it (the columns compare reads)."""
    frame = pd.DataFrame(rows)
    frame.insert(0, "analysis", analysis)
    for col in ("teff_err", "logg_err", "feh_err"):
        frame[col] = 10.0
    frame["flag_names"] = [flags.describe(f) for f in frame["flag"]]
    return frame


def star(path, teff, flag=0, batch="b-0000", **keys):
    return {
        "path": path,
        "batch": batch,
        "teff": teff,
        "logg": 2.0,
        "feh": 0.0,
        "flag": flag,
        **keys,
    }


@pytest.fixture
def summaries():
    a = "dr17/apStar-dr17-2M1.fits"
    b = "dr17/apStar-dr17-2M2.fits"
    m = "dr19/spectro/astra/0.6.0/spectra/star/45/67/mwmStar-0.6.0-1234567.fits"
    return [
        summary(
            "gridfit",
            [star(a, 4500, obj="2M1", apstar_row=0), star(b, 5000, obj="2M2", apstar_row=0)],
        ),
        summary(
            "apogeenet",
            [
                star(a, 4900, obj="2M1", apstar_row=0, batch="n-0001"),
                star(b, 5100, obj="2M2", apstar_row=0),
            ],
        ),
        summary("cannon", [star(a, np.nan, flags.READ_ERROR, obj="2M1", apstar_row=0)]),
        summary("gridfit_mwm", [star(m, 6000, sdss_id=1234567, observatory="APO")]),
        summary(
            "apogeenet_mwm", [star(m, 5600, flags.GRID_EDGE, sdss_id=1234567, observatory="APO")]
        ),
        summary("snr", [{"path": a, "batch": "s", "snr_median": 50.0, "flag": 0}]),
    ]


def test_comparison_has_one_row_per_observation_side_by_side(summaries):
    out = comparison_table(summaries).set_index("star")
    assert sorted(out.index) == ["2M1", "2M2", "sdss_id 1234567"]
    assert out.loc["2M1", "gridfit_teff"] == 4500 and out.loc["2M1", "apogeenet_teff"] == 4900
    assert out.loc["2M1", "gridfit_minus_apogeenet_teff"] == -400
    assert out.loc["2M1", "apogeenet_batch"] == "n-0001"
    assert out.loc["2M1", "cannon_flag"] == flags.READ_ERROR and out.loc["2M2", "cannon_flag"] == -1
    assert out.loc["2M1", "flag_names"] == "READ_ERROR"
    assert out.loc["sdss_id 1234567", "product"] == "mwm"
    assert out.loc["sdss_id 1234567", "gridfit_minus_apogeenet_teff"] == 400
    assert out.loc["sdss_id 1234567", "flag"] == flags.GRID_EDGE
    assert list(out["n_analyses"]) == [3, 2, 2]
    assert not any(c.startswith("snr") for c in out.columns)


def _write_summaries(root: Path, frames) -> list[Path]:
    paths = []
    for frame in frames:
        path = root / f"results/{frame['analysis'][0]}/summary.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
        paths.append(path)
    return paths


def test_comparison_files_carry_units(tmp_path, summaries):
    paths = _write_summaries(tmp_path, summaries)
    write_comparison(paths, tmp_path / "c.parquet", tmp_path / "c.fits")
    field = pq.read_schema(tmp_path / "c.parquet").field("gridfit_minus_cannon_teff")
    assert field.metadata[b"unit"] == b"K"
    assert b"gridfit_teff - cannon_teff" in field.metadata[b"description"]
    with fits.open(tmp_path / "c.fits") as hdul:
        names = hdul[1].columns.names
        unit = hdul[1].header[f"TUNIT{names.index('apogeenet_logg') + 1}"]
        assert unit == "dex" and len(hdul[1].data) == 3


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    return path


def test_interactive_page_renders_every_point_in_chromium(tmp_path):
    n = 25
    rng = np.random.default_rng(1)
    teff = rng.uniform(4000, 6000, n)
    frames = [
        summary(
            name,
            [
                star(
                    f"f{i}.fits",
                    t + off,
                    batch=f"{name}-b-000{i % 3}",
                    obj=f"2M{i:03d}",
                    apstar_row=0,
                    flag=flags.POOR_FIT if i == 0 else 0,
                )
                for i, t in enumerate(teff)
            ],
        )
        for name, off in (("gridfit", 0), ("apogeenet", 150), ("cannon", -80))
    ]
    paths = _write_summaries(tmp_path, frames)
    write_comparison(paths, tmp_path / "c.parquet", tmp_path / "c.fits")
    page = tmp_path / "compare.html"
    comparison_page(tmp_path / "c.parquet", page)
    html = page.read_text()
    assert "2M000" in html and "gridfit-b-0000" in html and "POOR_FIT" in html  # hover text
    assert "<script" in html and "cdn" not in html.split("<body>")[1][:2000].lower()
    dom = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    # plotly draws each marker as an SVG <path class="point">: Teff's two analyses against
    # gridfit and their differences, four traces of n points; the other labels' wait for
    # their buttons.
    assert len(re.findall(r'class="point"', dom)) == 4 * n, dom[-2000:]
    assert 'class="main-svg"' in dom and "apogeenet" in dom and "cannon" in dom
    assert all(f">{label}<" in dom for label in ("Teff", "log g", "[Fe/H]"))  # the buttons
    assert "analysis - gridfit (K)" in dom


def readme_query() -> str:
    text = (REPO / "docs/results.md").read_text()
    match = re.search(r"<!-- duckdb-query -->\s*```sql\n(.*?)```", text, re.S)
    assert match, "docs/results.md has no ```sql block after <!-- duckdb-query -->"
    return match.group(1)


def test_the_readme_duckdb_query_runs_as_written(tmp_path, summaries, monkeypatch):
    """The query from docs/results.md, on the files the workflow writes (same names)."""
    paths = _write_summaries(tmp_path, summaries)
    (tmp_path / "results/compare").mkdir(parents=True)
    write_comparison(paths, tmp_path / "results/compare/labels.parquet", tmp_path / "c.fits")
    monkeypatch.chdir(tmp_path)
    rows = duckdb.sql(readme_query()).fetchall()
    # gridfit vs apogeenet: 2M1 -400 K and the mwmStar +400 K disagree by > 300 K.
    assert sorted(r[0] for r in rows) == ["2M1", "sdss_id 1234567"]
