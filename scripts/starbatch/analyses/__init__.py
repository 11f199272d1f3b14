"""The registry of analyses. Adding one: write a module here with an Analysis
subclass and list it in ANALYSES. Modules must import heavy libraries (torch, ...)
inside `load`, since planning imports this registry for every table."""

from __future__ import annotations

from ..analysis import Analysis
from .gridfit import GridFit
from .snr import SnrEstimate

ANALYSES: dict[str, type[Analysis]] = {cls.name: cls for cls in (GridFit, SnrEstimate)}


def get_analysis(name: str) -> type[Analysis]:
    try:
        return ANALYSES[name]
    except KeyError:
        raise ValueError(
            f"unknown analysis {name!r}; known: {', '.join(sorted(ANALYSES))}"
        ) from None
