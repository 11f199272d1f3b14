"""The batching benchmark's luigi side: Astra's engine scheduling the same gridfit
tasks. One luigi task per observation; the observation parameters are batchable
(batch_method=tuple), so luigi's scheduler hands a worker up to max_batch_size
pending tasks with equal other parameters as ONE task whose field/obj are tuples:
the grid is then loaded once per batch, as in Astra. Only imported if luigi is."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import luigi
import pandas as pd
from _common import fit_files

# In batch mode luigi hands the task tuples where it declared strings, and says so.
warnings.filterwarnings("ignore", message=r"Parameter .* is not of type string")


class FitObservation(luigi.Task):
    workdir = luigi.Parameter()
    root = luigi.Parameter()
    grid = luigi.Parameter(default="demo")  # not batchable: a different grid, another batch
    field = luigi.Parameter(batch_method=tuple)
    obj = luigi.Parameter(batch_method=tuple)
    max_batch_size = 100  # set per run by run()

    def members(self) -> list[tuple[str, str]]:
        if isinstance(self.obj, tuple):
            return list(zip(self.field, self.obj, strict=True))
        return [(self.field, self.obj)]

    def output(self):
        targets = [luigi.LocalTarget(f"{self.workdir}/out/{obj}.json") for _, obj in self.members()]
        return targets if isinstance(self.obj, tuple) else targets[0]

    def run(self):
        from starbatch.offline.demo import apstar_relpath

        members = [(obj, apstar_relpath(field, obj)) for field, obj in self.members()]
        teff = fit_files(Path(self.workdir), Path(self.root), members)
        for obj, value in teff.items():
            with luigi.LocalTarget(f"{self.workdir}/out/{obj}.json").open("w") as fh:
                json.dump({"obj": obj, "teff": value}, fh)


def run(workdir: Path, root: Path, stars: pd.DataFrame, batch_size: int, cores: int) -> dict:
    """Schedule every star's task with ``cores`` luigi workers; {obj: teff}."""
    FitObservation.max_batch_size = batch_size
    tasks = [
        FitObservation(workdir=str(workdir), root=str(root), field=f, obj=o)
        for f, o in zip(stars["field"], stars["obj"], strict=True)
    ]
    result = luigi.build(
        tasks, workers=cores, local_scheduler=True, log_level="WARNING", detailed_summary=True
    )
    if not result.scheduling_succeeded:
        raise RuntimeError(f"luigi run failed:\n{result.summary_text}")
    teff = {}
    for path in (Path(workdir) / "out").glob("*.json"):
        record = json.loads(path.read_text())
        teff[record["obj"]] = record["teff"]
    return teff
