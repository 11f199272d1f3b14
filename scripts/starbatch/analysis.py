"""The analysis SDK: what a new analysis declares, and the Task it is handed.

An analysis says which data product it reads, which task parameters it takes
(type, default, significant or not), how to load its expensive part once per
batch (`load`), and how to analyse one observation (`analyse`) or many at once
(`analyse_many`, for vectorised methods). The batch runner hands it tasks one
at a time or in chunks, so the same code serves a batch of 1 or of 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .params import Parameter
from .products import DataProduct
from .spectrum import Spectrum


@dataclass(frozen=True)
class Column:
    """A result column: written to FITS with its unit and description."""

    name: str
    unit: str = ""
    description: str = ""
    dtype: str = "f8"


@dataclass
class Task:
    """One analysis applied to one observation (Astra's 'task')."""

    line: int  # table line, for messages
    keys: dict  # observation parameters
    params: dict  # all task parameters, parsed
    path: Path  # absolute path of the data product
    spectrum: Spectrum | None = None  # read by the runner before analyse()
    extra: dict = field(default_factory=dict)


class Analysis:
    """Subclass, set the class attributes, implement `load` and `analyse`."""

    name: ClassVar[str]
    product: ClassVar[DataProduct]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    # How many tasks analyse_many receives at once (bounds memory when vectorised).
    chunk_size: ClassVar[int] = 1

    @classmethod
    def all_parameters(cls) -> tuple[Parameter, ...]:
        return tuple(cls.product.read_parameters) + tuple(cls.parameters)

    @classmethod
    def significant_names(cls) -> tuple[str, ...]:
        return tuple(p.name for p in cls.all_parameters() if p.significant)

    @classmethod
    def model_files(cls, params: Mapping[str, Any]) -> list[str]:
        """Files (relative to the workflow directory) that `load` reads; the
        workflow makes them inputs of the batch job, building them if a rule can."""
        return []

    def load(self, params: Mapping[str, Any]) -> Any:
        """The expensive set-up, done once per batch. ``params`` holds the batch's
        significant parameters and, for insignificant ones, the first member's value."""
        return None

    def analyse(self, model: Any, task: Task) -> dict:
        """Results for one task: a dict of column values, optionally 'flag' bits.
        Analyses that only implement analyse_many get this for free."""
        if type(self).analyse_many is Analysis.analyse_many:
            raise NotImplementedError(f"{type(self).__name__} implements neither analyse method")
        result = self.analyse_many(model, [task])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def analyse_many(self, model: Any, tasks: Sequence[Task]) -> list[dict | Exception]:
        """Results for several tasks; override to vectorise. An Exception in the
        returned list flags that task alone."""
        out: list[dict | Exception] = []
        for task in tasks:
            try:
                out.append(self.analyse(model, task))
            except Exception as exc:  # one bad spectrum must not end the batch
                out.append(exc)
        return out
