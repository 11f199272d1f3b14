"""The registry of analyses. Adding one: write a module here with an Analysis
subclass and list it in ANALYSES. Modules must import heavy libraries (torch, ...)
inside `load`, since planning imports this registry for every table."""

from __future__ import annotations

from ..analysis import Analysis
from .apogeenet import ApogeeNet
from .cannon import Cannon
from .gridfit import GridFit
from .snr import SnrEstimate
from .visits import visit_variant

ANALYSES: dict[str, type[Analysis]] = {
    cls.name: cls
    for cls in (
        GridFit,
        SnrEstimate,
        ApogeeNet,
        Cannon,
        # The same analyses on apVisit files (rest frame, resampled to the apStar grid).
        visit_variant(GridFit),
        visit_variant(ApogeeNet),
        visit_variant(Cannon),
    )
}


def get_analysis(name: str) -> type[Analysis]:
    try:
        return ANALYSES[name]
    except KeyError:
        raise ValueError(
            f"unknown analysis {name!r}; known: {', '.join(sorted(ANALYSES))}"
        ) from None
