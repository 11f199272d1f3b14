"""The batch runner's central rules, in process on real apStar files: one bad
observation is a flagged row; many mean the analysis is broken and the batch fails
without writing; an analyse_many that loses track of its tasks fails the batch."""

import numpy as np
import pytest

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.engine.results import read_table
from starbatch.engine.runner import BatchError, run_batch
from starbatch.offline.demo import apstar_relpath
from starbatch.offline.synthetic import make_synthetic_star, write_apstar
from starbatch.sdss.products import APSTAR

N = 10


class Flaky(Analysis):
    """Fails on the first ``fail`` members (by table line)."""

    name = "flaky"
    product = APSTAR
    parameters = (Parameter("fail", int, 0),)
    columns = (Column("snr", "", "median flux/error"),)

    def analyse(self, model, task):
        if task.line <= task.params["fail"]:
            raise RuntimeError(f"cannot fit line {task.line}")
        s = task.spectrum
        return {"snr": float(np.median(s.flux[~s.bad] / s.error[~s.bad]))}


class Miscounting(Flaky):
    name = "miscounting"
    chunk_size = 4

    def analyse_many(self, model, tasks):
        return [{"snr": 1.0}] * (len(tasks) - 1)


@pytest.fixture(scope="module")
def sas(tmp_path_factory, emulator):
    root = tmp_path_factory.mktemp("sas")
    rng = np.random.default_rng(3)
    for i in range(N):
        flux, error, bitmask = make_synthetic_star(emulator, [4800, 2.5, -0.2], 80, rng)
        write_apstar(root / apstar_relpath("F1", f"2M{i:08d}"), flux, error, bitmask, {})
    return root


def plan_of(name: str, fail: int = 0) -> dict:
    members = [
        {
            "line": i + 1,
            "source": "t.csv",
            "path": apstar_relpath("F1", f"2M{i:08d}"),
            "keys": APSTAR.parse_keys({"telescope": "apo25m", "field": "F1", "obj": f"2M{i:08d}"}),
        }
        for i in range(N)
    ]
    params = {"fail": fail, "apstar_row": 0}
    return {
        "batch": f"{name}-00000000-0000",
        "analysis": name,
        "params": params,
        "members": members,
    }


REGISTRY = {cls.name: cls for cls in (Flaky, Miscounting)}


def test_a_few_analysis_errors_give_flagged_rows(sas, tmp_path):
    out = tmp_path / "b.fits"
    stats = run_batch(plan_of("flaky", fail=3), sas, out, REGISTRY, max_failed_fraction=0.5)
    assert stats == {"n": N, "failed": 3, "setup_s": pytest.approx(stats["setup_s"])}
    table = read_table(out)
    assert list(table["line"]) == list(range(1, N + 1))
    bad = np.asarray(table["flag"]) == flags.ANALYSIS_ERROR
    assert list(bad) == [True] * 3 + [False] * (N - 3)
    assert all("RuntimeError: cannot fit line" in e for e in table["error"][:3])
    snr = np.ma.filled(table["snr"], np.nan)  # FITS readers mask the NaN of failed rows
    assert np.isnan(snr[:3]).all() and (snr[3:] > 20).all()


def test_more_errors_than_max_failed_fraction_fail_the_batch_and_write_nothing(sas, tmp_path):
    out = tmp_path / "b.fits"
    with pytest.raises(BatchError, match="raised errors on 6 of 10 observations"):
        run_batch(plan_of("flaky", fail=6), sas, out, REGISTRY, max_failed_fraction=0.5)
    assert list(tmp_path.iterdir()) == []


def test_analyse_many_returning_the_wrong_count_fails_the_batch(sas, tmp_path):
    with pytest.raises(BatchError, match="returned 3 results for 4 tasks"):
        run_batch(plan_of("miscounting"), sas, tmp_path / "b.fits", REGISTRY)
    assert list(tmp_path.iterdir()) == []
