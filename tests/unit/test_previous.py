"""Previous versions of kept outputs (engine/previous.py): a finished job links each
output to its previous version; a job that did not finish is rolled back, all of its
outputs or none, keeping the earlier files' bytes and modification times."""

import os

from starbatch.engine.previous import keep, previous_path, roll_back


def outputs(tmp_path, text):
    paths = [tmp_path / "summary.fits", tmp_path / "summary.csv"]
    for path in paths:
        path.write_text(f"{text} {path.name}")
    return paths


def test_a_finished_job_is_left_alone(tmp_path):
    paths = outputs(tmp_path, "old")
    keep(paths)
    assert all(os.path.samefile(p, previous_path(p)) for p in paths)
    assert not roll_back(paths)


def test_a_job_that_did_not_finish_is_rolled_back_whole(tmp_path):
    paths = outputs(tmp_path, "old")
    keep(paths)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    paths[0].unlink()  # Snakemake removes outputs before a job and after a failed one
    paths[1].unlink()
    paths[0].write_text("new, and then the disk filled")  # the job got this far
    assert roll_back(paths)
    assert [p.read_text() for p in paths] == ["old summary.fits", "old summary.csv"]
    assert [p.stat().st_mtime_ns for p in paths] == mtimes  # older than what changed since


def test_nothing_to_roll_back_to_on_a_first_run(tmp_path):
    paths = outputs(tmp_path, "new")
    paths[1].unlink()
    assert not roll_back(paths)
    assert paths[0].exists() and not paths[1].exists()
