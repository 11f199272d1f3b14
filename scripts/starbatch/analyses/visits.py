"""apVisit variants of the apStar analyses: the same analysis (parameters, model, columns)
on a single visit, after moving the visit to the rest frame and resampling it onto the
apStar grid (starbatch.methods.resample.visit_to_apstar: shift by the header VRAD, linear
interpolation). Named ``<analysis>_visit``; the observation keys are the ApVisitFile ones."""

from __future__ import annotations

from collections.abc import Sequence

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Task
from starbatch.sdss.products import APVISIT


def visit_variant(base: type[Analysis]) -> type[Analysis]:
    """A subclass of ``base`` reading apVisit files."""

    def analyse_many(self, model, tasks: Sequence[Task]) -> list:
        from starbatch.methods.resample import visit_to_apstar

        out: list = [None] * len(tasks)
        ok = []
        for i, task in enumerate(tasks):
            try:
                task.spectrum = visit_to_apstar(task.spectrum)
                ok.append(i)
            except ValueError as exc:
                exc.flag = getattr(exc, "flag", flags.BAD_DATA)
                out[i] = exc
        results = base.analyse_many(self, model, [tasks[i] for i in ok]) if ok else []
        for i, result in zip(ok, results, strict=True):
            out[i] = result
        return out

    return type(
        f"{base.__name__}Visit",
        (base,),
        {
            "name": f"{base.name}_visit",
            "product": APVISIT,
            "analyse_many": analyse_many,
            "__doc__": f"{base.name} on an apVisit spectrum resampled to the rest-frame "
            "apStar grid.",
            "__module__": __name__,
        },
    )
