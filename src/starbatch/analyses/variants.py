"""Variants of the label analyses on other data products: the same analysis
(parameters, model, columns) reading another file kind, declared in one line each in
the registry. Products already on the apStar grid (DR19 apStar, Astra's rest-frame
mwmStar/mwmVisit APOGEE spectra) need nothing else; apVisit spectra are first moved to
the rest frame and resampled onto the apStar grid (starbatch.methods.resample.
visit_to_apstar: shift by the header VRAD, linear interpolation)."""

from __future__ import annotations

from collections.abc import Sequence

from starbatch.engine import flags
from starbatch.engine.analysis import Analysis, Task
from starbatch.engine.dataproduct import DataProduct


def variant(base: type[Analysis], product: DataProduct, suffix: str, **attrs) -> type[Analysis]:
    """A subclass of ``base`` named ``<base.name>_<suffix>`` reading ``product``."""
    doc = f"{base.name} on {product.name} spectra."
    return type(
        f"{base.__name__}_{suffix}",
        (base,),
        {
            "name": f"{base.name}_{suffix}",
            "product": product,
            "__doc__": doc,
            "__module__": __name__,
            **attrs,
        },
    )


def visit_variant(base: type[Analysis], product: DataProduct, suffix: str) -> type[Analysis]:
    """``variant`` for apVisit files: each visit is shifted to the rest frame and
    resampled onto the apStar grid before ``base`` analyses it."""

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

    return variant(base, product, suffix, analyse_many=analyse_many)
