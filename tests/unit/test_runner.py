"""The batch runner's central rules, in process on real apStar files: one bad
observation is a flagged row; many mean the analysis is broken and the batch fails
without writing; an analyse_many that loses track of its tasks fails the batch."""

import hashlib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import starbatch
from starbatch.engine import batch_table, flags
from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.journal import journal_path
from starbatch.engine.params import Parameter
from starbatch.engine.results import read_table
from starbatch.engine.runner import BatchError, RunSettings, run_batch
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
    first = root / apstar_relpath("F1", "2M00000000")
    with fits.open(first) as hdul:  # one file with FITS checksums, as SDSS writes them
        hdul.writeto(first, checksum=True, overwrite=True)
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


def written(directory) -> list:
    """What a batch left besides its journal (which a rerun resumes from)."""
    return [p.name for p in directory.iterdir() if not p.name.endswith(".journal")]


def test_a_few_analysis_errors_give_flagged_rows(sas, tmp_path):
    out = tmp_path / "b.fits"
    stats = run_batch(plan_of("flaky", fail=3), sas, out, REGISTRY)
    assert (stats["n"], stats["failed"], stats["resumed"]) == (N, 3, 0)
    table = read_table(out)
    assert list(table["line"]) == list(range(1, N + 1))
    bad = np.asarray(table["flag"]) == flags.ANALYSIS_ERROR
    assert list(bad) == [True] * 3 + [False] * (N - 3)
    assert all("RuntimeError: cannot fit line" in e for e in table["error"][:3])
    snr = np.ma.filled(table["snr"], np.nan)  # FITS readers mask the NaN of failed rows
    assert np.isnan(snr[:3]).all() and (snr[3:] > 20).all()


def test_more_errors_than_max_failed_fraction_fail_the_batch_and_write_nothing(sas, tmp_path):
    out = tmp_path / "b.fits"
    with pytest.raises(BatchError, match="failed on 6 of 10 observations"):
        run_batch(plan_of("flaky", fail=6), sas, out, REGISTRY)
    assert written(tmp_path) == []


def test_analyse_many_returning_the_wrong_count_fails_the_batch(sas, tmp_path):
    with pytest.raises(BatchError, match="returned 3 results for 4 tasks"):
        run_batch(plan_of("miscounting"), sas, tmp_path / "b.fits", REGISTRY)
    assert written(tmp_path) == []


# --- the journal: a killed batch resumes where it stopped ---------------------------------


class Counting(Flaky):
    """Notes which members it analysed in a file (it runs in the batch's worker process);
    sends itself SIGTERM at member ``stop_at``, as SLURM signals every process of a job."""

    name = "counting"
    notes: Path = Path("seen.txt")
    stop_at = 0

    def analyse(self, model, task):
        if task.line == self.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        with open(Counting.notes, "a") as fh:
            fh.write(f"{task.line}\n")
        return super().analyse(model, task)


def seen() -> list[int]:
    return [int(x) for x in Counting.notes.read_text().split()] if Counting.notes.exists() else []


def reset(stop_at: int = 0) -> None:
    Counting.notes.unlink(missing_ok=True)
    Counting.stop_at = stop_at


@pytest.fixture(autouse=True)
def _notes(tmp_path):
    Counting.notes = tmp_path / "seen.txt"


COUNTING = {"counting": Counting}
TIMING = ("time_s", "setup_share_s")


def science_of(path) -> dict:
    table = read_table(path)
    return {c: list(np.ma.filled(table[c], -1)) for c in table.colnames if c not in TIMING}


def run_counting(sas, out, stop_at=0):
    reset(stop_at)
    return run_batch(plan_of("counting"), sas, out, COUNTING, run=RunSettings(journal_every=1))


def test_sigterm_keeps_finished_members_and_the_rerun_skips_them(sas, tmp_path, caplog):
    reference = tmp_path / "reference.fits"
    run_counting(sas, reference)
    out = tmp_path / "b.fits"
    with pytest.raises(SystemExit) as stop:
        run_counting(sas, out, stop_at=6)
    assert stop.value.code == 143 and not out.exists()
    assert seen() == [1, 2, 3, 4, 5]
    journal = journal_path(out)
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [e["i"] for e in entries if "i" in e] == [0, 1, 2, 3, 4]
    # The member in hand when the signal came, then cleared: it was not at fault.
    assert entries[-2:] == [{"in_hand": [5]}, {"in_hand": []}]

    caplog.set_level("INFO", "starbatch")
    stats = run_counting(sas, out)
    assert "resumed: 5 of 10 members already done" in caplog.text
    assert "each is analysed alone" not in caplog.text
    assert seen() == [6, 7, 8, 9, 10] and stats["resumed"] == 5
    assert science_of(out) == science_of(reference)
    assert not journal.exists()


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda text: "garbage\n" + text, "not a starbatch journal"),
        (lambda text: text.replace('"plan": "', '"plan": "x'), "written for another plan"),
        (lambda text: "", "not a starbatch journal"),
        (lambda text: "\x00\x01\x02", "not a starbatch journal"),
    ],
    ids=["foreign", "other_plan", "empty", "binary"],
)
def test_a_journal_that_is_not_this_batchs_is_ignored(sas, tmp_path, caplog, damage, why):
    out = tmp_path / "b.fits"
    with pytest.raises(SystemExit):
        run_counting(sas, out, stop_at=4)
    journal = journal_path(out)
    journal.write_text(damage(journal.read_text()))
    caplog.set_level("INFO", "starbatch")
    run_counting(sas, out)
    assert why in caplog.text and "resumed" not in caplog.text
    assert seen() == list(range(1, N + 1))  # nothing trusted: all redone


def test_a_journal_cut_short_by_a_kill_keeps_its_whole_lines(sas, tmp_path, caplog):
    out = tmp_path / "b.fits"
    with pytest.raises(SystemExit):
        run_counting(sas, out, stop_at=5)
    journal = journal_path(out)
    lines = journal.read_text().splitlines()
    while "i" not in json.loads(lines[-1]):
        lines.pop()  # the notes of what was in hand: a kill would come before them
    text = "\n".join(lines) + "\n"
    journal.write_text(text[: len(text) - 20])  # the last record half written
    caplog.set_level("INFO", "starbatch")
    run_counting(sas, out)
    assert "cut short; dropped" in caplog.text and "resumed: 3 of 10" in caplog.text
    assert seen() == [4, 5, 6, 7, 8, 9, 10]


def test_members_of_another_plan_are_never_mixed_in(sas, tmp_path, caplog):
    """The table grew: the batch's members changed, its old journal is not trusted."""
    out = tmp_path / "b.fits"
    with pytest.raises(SystemExit):
        run_counting(sas, out, stop_at=5)
    grown = plan_of("counting")
    grown["members"] = grown["members"][::-1]
    caplog.set_level("INFO", "starbatch")
    reset(0)
    run_batch(grown, sas, out, COUNTING)
    assert "written for another plan" in caplog.text
    assert sorted(seen()) == list(range(1, N + 1))


def test_sigterm_during_the_final_write_loses_nothing(sas, tmp_path, monkeypatch):
    out = tmp_path / "b.fits"
    original = batch_table.write_atomic

    def interrupted_write(path, write):
        original(path.with_name("partial.fits"), write)  # got this far, then the signal
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(batch_table, "write_atomic", interrupted_write)
    with pytest.raises(SystemExit):
        run_counting(sas, out)
    monkeypatch.setattr(batch_table, "write_atomic", original)
    assert not out.exists() and len(seen()) == N
    run_counting(sas, out)
    assert seen() == [] and len(read_table(out)) == N


def test_provenance_in_the_header_and_in_every_row(sas, tmp_path):
    out = tmp_path / "b.fits"
    run_counting(sas, out)
    header = fits.getheader(out, 1)
    assert header["SBVERS"] == starbatch.__version__ and header["ANALYSIS"] == "counting"
    assert len(header["PARHASH"]) == 64 and header["DATE-BEG"] <= header["DATE-END"]
    assert header["PYVERS"] and header["NPVERS"] == np.__version__ and header["HOST"]
    assert header["READ_S"] > 0 and header["ANAL_S"] >= 0  # the shares of the batch's time
    table = read_table(out)
    first = sas / table["path"][0]
    assert table["input_size"][0] == first.stat().st_size
    assert table["input_size"].dtype.kind == "i" and table["input_size"].unit == "byte"
    assert table["input_mtime_ns"][0] == first.stat().st_mtime_ns
    assert table["input_checksum"][0] == fits.getheader(first)["CHECKSUM"]
    assert table["input_datasum"][0] == fits.getheader(first)["DATASUM"]
    assert table["input_checksum"][1] == ""  # the others have none
    assert set(table["analysis_version"]) == {"1"}


class ModelledCounting(Counting):
    name = "modelled_counting"
    model = None

    @classmethod
    def model_files(cls, params):
        return [str(cls.model)]


def test_a_model_file_replaced_after_the_kill_redoes_every_member(sas, tmp_path, caplog):
    ModelledCounting.model = tmp_path / "model.bin"
    ModelledCounting.model.write_bytes(b"v1")
    registry = {"modelled_counting": ModelledCounting}
    out, plan = tmp_path / "b.fits", plan_of("modelled_counting")
    reset(5)
    with pytest.raises(SystemExit):
        run_batch(plan, sas, out, registry, run=RunSettings(journal_every=1))
    ModelledCounting.model.write_bytes(b"v2")
    caplog.set_level("INFO", "starbatch")
    reset(0)
    run_batch(plan, sas, out, registry, run=RunSettings(journal_every=1))
    assert "a model file changed" in caplog.text and seen() == list(range(1, N + 1))
    assert read_table(out)["model_sha256"][0] == hashlib.sha256(b"v2").hexdigest()


class SwappingModel(ModelledCounting):
    """On line 3 it replaces its model file and crashes, so that the next worker
    would load another model than the one the first members were analysed with."""

    name = "swapping_model"

    def analyse(self, model, task):
        if task.line == 3:
            self.model.write_bytes(b"v2")
            os._exit(3)
        return super().analyse(model, task)


def test_a_model_file_replaced_while_the_batch_runs_fails_it(sas, tmp_path):
    SwappingModel.model = tmp_path / "model.bin"
    SwappingModel.model.write_bytes(b"v1")
    out = tmp_path / "b.fits"
    with pytest.raises(BatchError, match="swapping_model changed while batch"):
        run_batch(plan_of("swapping_model"), sas, out, {"swapping_model": SwappingModel})
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


class FailingLoad(Flaky):
    name = "failing_load"

    def load(self, params):
        return load_weights(params)


def load_weights(params):
    raise ValueError("weights.pt: not a state dict")


def test_a_failed_set_up_names_its_cause_and_logs_where_it_was_raised(sas, tmp_path, caplog):
    caplog.set_level("DEBUG", "starbatch")
    with pytest.raises(BatchError, match="set-up of failing_load failed.*not a state dict"):
        run_batch(plan_of("failing_load"), sas, tmp_path / "b.fits", {"failing_load": FailingLoad})
    assert "Traceback" in caplog.text and "in load_weights" in caplog.text


class BrokenMany(Flaky):
    name = "broken_many"
    chunk_size = 4

    def analyse_many(self, model, tasks):
        raise KeyError("weights_layer3")


def test_an_error_outside_any_observation_fails_the_batch_with_its_traceback(sas, tmp_path, caplog):
    caplog.set_level("INFO", "starbatch")
    with pytest.raises(BatchError, match="broken_many raised KeyError outside any one"):
        run_batch(plan_of("broken_many"), sas, tmp_path / "b.fits", {"broken_many": BrokenMany})
    assert "Traceback" in caplog.text and "in analyse_many" in caplog.text


def test_an_input_file_replaced_after_the_kill_is_read_again(sas, tmp_path, caplog):
    out = tmp_path / "b.fits"
    with pytest.raises(SystemExit):
        run_counting(sas, out, stop_at=6)
    replaced = sas / apstar_relpath("F1", "2M00000002")  # line 3
    os.utime(replaced, ns=(replaced.stat().st_atime_ns, replaced.stat().st_mtime_ns + 1))
    caplog.set_level("INFO", "starbatch")
    run_counting(sas, out)
    assert "resumed: 4 of 10" in caplog.text
    assert seen() == [3, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    "chunk_size, per_obs_s, expected",
    [(1, 0.0005, 256), (1, 0.05, 10), (1, 10.0, 1), (64, 0.05, 64), (32, 0.001, 256), (5, 0.1, 5)],
)
def test_cheap_members_go_to_the_worker_in_chunks_expensive_ones_alone(
    chunk_size, per_obs_s, expected
):
    from starbatch.engine.limits import chunk_members

    assert chunk_members(chunk_size, per_obs_s) == expected
