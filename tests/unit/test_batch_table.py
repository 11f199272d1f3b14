"""The batch table writer (engine.batch_table): astropy.io.fits alone, so a batch job
does not import astropy.table; what it writes reads back as the Table the collection
jobs merge: types (also unsigned and vector columns), units with their FITS names and
"dex" as written, empty strings, zero rows, the header cards."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from starbatch.engine.analysis import Analysis, Column, Declaration, Task
from starbatch.engine.batch_table import Outcome, read_columns, write_batch_table
from starbatch.engine.params import Parameter
from starbatch.engine.results import read_table
from starbatch.sdss.products import APSTAR


class Typed(Analysis):
    name = "typed"
    product = APSTAR
    parameters = (Parameter("level", int, 2), Parameter("mode", str, "fast"))
    columns = (
        Column("speed", "km/s", "a velocity"),
        Column("logg", "dex", "a logarithm"),
        Column("count", "", "a count", dtype="u2"),
        Column("ok", "", "a boolean", dtype="b1"),
        Column("vector", "", "three values", dtype="3f8"),
    )

    def analyse(self, model, task):  # pragma: no cover - the writer is tested alone
        return {}


def outcomes(n):
    out = []
    for i in range(n):
        keys = {k: f"k{i}" for k in APSTAR.key_names}
        params = {p.name: p.default for p in Typed.all_parameters()} | {"level": i}
        task = Task(line=i + 2, keys=keys, params=params, path=Path("x"))
        result = {"speed": 1.5 * i, "logg": 2.0, "count": 40000 + i, "ok": bool(i % 2)}
        result["vector"] = np.arange(3.0) + i
        error = "ValueError: no pixels" if i == 1 else ""
        out.append(Outcome(task, result if i != 1 else {}, 2 * (i == 1), error, 0.5, {"size": 9}))
    return out


@pytest.mark.parametrize("n", [0, 3])
def test_batch_table_reads_back_as_the_table_collection_merges(tmp_path, n):
    path = tmp_path / "b.fits"
    header = {"SBVERS": ("0.2.0", "starbatch version"), "MODFIL1": ("m" * 90, "long")}
    write_batch_table(
        path, {"batch": "typed-0-0000"}, Declaration.of(Typed), outcomes(n), 0.3, header
    )
    t = read_table(path)
    assert t.colnames[:5] == ["analysis", "batch", "source", "line", "path"]
    assert len(t) == n and t.meta["NMEMBER"] == n and t.meta["MODFIL1"] == "m" * 90
    assert t.meta["FLAGBIT1"] == 2 and t.meta["SBVERS"] == "0.2.0"
    units = fits.getheader(path, 1)
    tunit = {units[f"TTYPE{i}"]: units.get(f"TUNIT{i}") for i in range(1, units["TFIELDS"] + 1)}
    assert tunit["speed"] == "km s-1" and tunit["logg"] == "dex" and tunit["time_s"] == "s"
    assert tunit["input_size"] == "byte" and tunit["count"] is None
    if not n:
        return
    assert t["count"].dtype == np.uint16 and list(t["count"]) == [40000, 0, 40002]
    assert t["ok"].dtype == bool and t["vector"].shape == (3, 3)
    assert t["line"].dtype.kind == t["level"].dtype.kind == "i" and t["line"].dtype.itemsize == 8
    assert list(t["error"]) == ["", "ValueError: no pixels", ""]
    speed = np.ma.filled(t["speed"], np.nan)  # NaN reads back masked
    assert np.isnan(speed[1]) and speed[2] == 3.0
    assert list(t["flag_names"]) == ["", "BAD_DATA", ""]


def test_a_batch_job_does_not_import_astropy_table(tmp_path):
    code = (
        "import sys; import starbatch.engine.runner, starbatch.analyses.gridfit; "
        "from starbatch.engine.batch_table import table_hdu; "
        "table_hdu([('a', ['x', 'yy'], ''), ('b', [1.0, 2.0], 'K')]).writeto(sys.argv[1]); "
        "print('astropy.table' in sys.modules, 'asdf' in sys.modules)"
    )
    path = tmp_path / "t.fits"
    cmd = [sys.executable, "-c", code, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout
    assert list(read_table(path)["a"]) == ["x", "yy"] and read_table(path)["b"].unit == "K"


@pytest.mark.parametrize("n", [0, 3])
def test_read_columns_gives_plain_arrays_and_leaves_out_absent_columns(tmp_path, n):
    path = tmp_path / "b.fits"
    write_batch_table(path, {"batch": "typed-0-0000"}, Declaration.of(Typed), outcomes(n), 0.3)
    cols = read_columns(path, ("analysis", "flag", "speed", "teff"))
    assert sorted(cols) == ["analysis", "flag", "speed"]  # no teff column in the table
    assert [len(c) for c in cols.values()] == [n] * 3
    if n:
        assert cols["analysis"].dtype.kind == "U" and cols["flag"].dtype.kind == "i"
        assert list(cols["analysis"]) == ["typed"] * 3 and list(cols["flag"]) == [0, 2, 0]
        assert np.isnan(cols["speed"][1]) and cols["speed"][2] == 3.0
