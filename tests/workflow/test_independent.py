"""The independent evaluation end to end, small: the set made in its own environment by
The Cannon's package on the Doppler models (make independent), run through the workflow's
evaluate_independent rule, and the flags on the stars outside every model."""

import json
import os
import shutil

import numpy as np
import pytest

from smk import REPO, snakemake, tiny_config
from starbatch.engine import flags
from starbatch.offline.independent_evaluation import IN_RANGE, evaluate

INDEPENDENT_PYTHON = REPO / ".venv-independent/bin/python"


@pytest.mark.slow
def test_evaluate_independent_flags_every_star_outside_the_models(tmp_path, monkeypatch):
    if not INDEPENDENT_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv-independent: `make test` builds it (make independent)")
        pytest.skip("run `make independent` first")
    small = {"n": 5, "n_out": 1, "snr": [50, 200], "seed": 11}
    tiny_config(tmp_path, sas_base_dir=str(tmp_path), demo={"enabled": False}, independent=small)
    proc = snakemake(tmp_path, "evaluate_independent")
    # The table, then one JSON line (what the rule prints for a user).
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.startswith('{"headline"')]
    summary = json.loads(lines[-1])
    assert [h["analysis"] for h in summary["headline"]] == ["gridfit", "apogeenet", "cannon"]
    assert "targets met" in (tmp_path / "logs/evaluation/independent.log").read_text()
    monkeypatch.chdir(tmp_path)  # the project's model files (its grid) are relative to it
    results = evaluate(tmp_path / "results/evaluation/independent/set")
    for name, r in results.items():
        inside = np.isin(r["kind"], IN_RANGE)
        assert inside.sum() == 10 and (~inside).sum() == 8
        not_cool = (r["flag"] & flags.NOT_COOL_STAR) != 0
        # Every hot star and every emission-line star: by the model-independent test.
        hydrogen = np.isin(r["kind"], ("hot_cannon", "hot_brackett", "emission"))
        assert not_cool[hydrogen].all(), (name, r["kind"][hydrogen], r["flag"][hydrogen])
        assert not not_cool[inside].any(), (name, r["flag"][inside])
        # A featureless continuum explains no stellar lines: POOR_FIT.
        featureless = r["kind"] == "featureless"
        assert ((r["flag"][featureless] & flags.POOR_FIT) != 0).all(), name
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
