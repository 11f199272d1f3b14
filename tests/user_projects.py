"""Projects of a user's own analysis on links to a real DR17 apStar file (one star
under many names), for the resume, fault and cluster tests; and the slow project: N
members in one batch, analysed by an analysis that notes every member it analyses (in
analysed.txt)."""

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


def real_star(sas: Path, obj: str) -> Path:
    """A link to the real file as star ``obj`` of field F0 under ``sas``; its path."""
    path = sas / APSTAR.relative_path(
        APSTAR.parse_keys({"telescope": "apo25m", "field": "F0", "obj": obj})
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_symlink():
        path.symlink_to(REAL_FILE)
    return path


def user_project(
    workdir: Path, module: str, source: str, header: str, rows: list[str], sas: Path, **config
) -> Path:
    """A project in ``workdir``: the analysis module ``module`` (``source``), the table
    (``header`` and ``rows``) and a config without the demo (``config`` overrides)."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    sas.mkdir(parents=True, exist_ok=True)
    (workdir / module).write_text(source)
    (workdir / "config/observations.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    defaults = {
        "observations": "config/observations.csv",
        "sas_base_dir": str(sas),
        "max_batch_size": 1000,
        "max_failed_fraction": 0.5,
        "progress_seconds": 1,
        "analysis_modules": [module],
        "demo": {"enabled": False},
    }
    write_config(workdir, {**defaults, **config})
    return workdir


def make_project(
    workdir: Path, n: int = N, missing: int = 0, device: str = "cpu", pause: float = 0.04, **config
) -> Path:
    """n members linked to the real file; the last ``missing`` have no file."""
    sas = workdir / "sas"
    for obj in objs(n - missing):
        real_star(sas, obj)
    rows = [f"slow,apo25m,F0,{obj},{device},{pause}" for obj in objs(n)]
    header = "analysis,telescope,field,obj,device,pause"
    return user_project(workdir, "slow.py", SLOW, header, rows, sas, journal_every=10, **config)


def analysed(workdir: Path) -> list[int]:
    """The table lines the slow analysis analysed, in order (analysed.txt)."""
    try:
        return [int(x) for x in (workdir / "analysed.txt").read_text().split()]
    except FileNotFoundError:
        return []
