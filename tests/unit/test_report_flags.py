"""The per-analysis flag summary of the report (starbatch.report.flag_counts)."""

import pandas as pd
from astropy.table import Table

from starbatch.engine import flags
from starbatch.report.flag_counts import flag_counts, write_flag_summary


def _table():
    return Table(
        {
            "analysis": ["gridfit", "gridfit", "gridfit", "cannon", "snr"],
            "flag": [
                0,
                flags.POOR_FIT,
                flags.POOR_FIT | flags.GRID_EDGE,
                flags.READ_ERROR,
                flags.LOW_SNR,
            ],
        }
    )


def test_flag_counts_per_analysis_and_bit():
    rows = {r["analysis"]: r for r in flag_counts(_table())}
    assert rows["gridfit"]["n"] == 3 and rows["gridfit"]["clean"] == 1
    assert rows["gridfit"]["POOR_FIT"] == 2 and rows["gridfit"]["GRID_EDGE"] == 1
    assert rows["cannon"]["READ_ERROR"] == 1 and rows["cannon"]["POOR_FIT"] == 0
    assert rows["snr"]["LOW_SNR"] == 1


def test_flag_summary_writes_table_and_plot(tmp_path):
    summary = tmp_path / "summary.fits"
    _table().write(summary)
    write_flag_summary(summary, tmp_path / "flags.tsv", tmp_path / "flags.png")
    frame = pd.read_csv(tmp_path / "flags.tsv", sep="\t")
    assert list(frame["analysis"]) == ["cannon", "gridfit", "snr"]
    assert frame.set_index("analysis").loc["gridfit", "POOR_FIT"] == 2
    assert (tmp_path / "flags.png").read_bytes()[:4] == b"\x89PNG"
