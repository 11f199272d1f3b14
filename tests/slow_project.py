"""A slow project for the fault and cluster tests: N members in one batch, each a link
to a real DR17 apStar file, analysed by a user's slow analysis that notes every member
it analyses (in analysed.txt)."""

from __future__ import annotations

from pathlib import Path

from starbatch.offline.workflow import write_config
from starbatch.resources import REAL_SAS
from starbatch.sdss.products import APSTAR

N = 160
REAL = REAL_SAS / "dr17/apogee/spectro/redux/dr17/stars/apo25m"
REAL_FILE = REAL / "000+02/apStar-dr17-2M17335483-2753043.fits"
SLOW = """
import time

import numpy as np

from starbatch.engine.analysis import Analysis, Column
from starbatch.engine.params import Parameter
from starbatch.sdss.products import APSTAR


class Slow(Analysis):
    name = "slow"
    product = APSTAR
    parameters = (
        Parameter("pause", float, 0.04),
        Parameter("device", str, "cpu", significant=False),
    )
    columns = (Column("snr", "", "median flux / error"),)

    def analyse(self, model, task):
        time.sleep(task.params["pause"])
        with open("analysed.txt", "a") as fh:
            fh.write(f"{task.line}\\n")
        s = task.spectrum
        return {"snr": float(np.median(s.flux[~s.bad] / s.error[~s.bad]))}
"""


def objs(n: int) -> list[str]:
    return [f"2M{i:08d}+0000000" for i in range(n)]


def make_project(
    workdir: Path, n: int = N, missing: int = 0, device: str = "cpu", pause: float = 0.04, **config
) -> Path:
    """n members linked to the real file; the last ``missing`` have no file."""
    sas = workdir / "sas"
    sas.mkdir(exist_ok=True)
    for obj in objs(n - missing):
        keys = APSTAR.parse_keys({"telescope": "apo25m", "field": "F0", "obj": obj})
        path = sas / APSTAR.relative_path(keys)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.symlink_to(REAL_FILE)
    (workdir / "slow.py").write_text(SLOW)
    rows = [f"slow,apo25m,F0,{obj},{device},{pause}" for obj in objs(n)]
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config/observations.csv").write_text(
        "analysis,telescope,field,obj,device,pause\n" + "\n".join(rows) + "\n"
    )
    write_config(
        workdir,
        {
            "observations": "config/observations.csv",
            "sas_base_dir": str(sas),
            "max_batch_size": 1000,
            "max_failed_fraction": 0.5,
            "progress_seconds": 1,
            "journal_every": 10,
            "analysis_modules": ["slow.py"],
            "demo": {"enabled": False},
            **config,
        },
    )
    return workdir


def analysed(workdir: Path) -> list[int]:
    try:
        return [int(x) for x in (workdir / "analysed.txt").read_text().split()]
    except FileNotFoundError:
        return []
