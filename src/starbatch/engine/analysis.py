"""The analysis SDK: what a new analysis declares, and the Task it is handed.

An analysis says which data product it reads, which task parameters it takes
(type, default, significant or not), how to load its expensive part once per
batch (`load`), and how to analyse one observation (`analyse`) or many at once
(`analyse_many`, for vectorised methods). The batch runner hands it tasks one
at a time or in chunks, so the same code serves a batch of 1 or of 10,000.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import flags
from .dataproduct import DataProduct
from .params import Parameter


@dataclass(frozen=True)
class Column:
    """A result column: written to FITS with its unit and description."""

    name: str
    unit: str = ""
    description: str = ""
    dtype: str = "f8"


class UnusableInput(ValueError):
    """An input that cannot be analysed (unreadable file, no usable pixels, wrong grid):
    a flagged row, never a failed batch. The message names the file and the reason."""

    def __init__(self, message: str, flag: int = flags.READ_ERROR):
        super().__init__(message)
        self.flag = flag


@dataclass
class Task:
    """One analysis applied to one observation (Astra's 'task')."""

    line: int  # table line, for messages
    keys: dict  # observation parameters
    params: dict  # all task parameters, parsed
    path: Path  # absolute path of the data product
    spectrum: Any = None  # what the product's reader returned, read before analyse()
    extra: dict = field(default_factory=dict)


class Analysis:
    """Subclass, set the class attributes, implement `load` and `analyse`."""

    name: ClassVar[str]
    product: ClassVar[DataProduct]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    # Recorded in every result row and header; raise it when results change.
    version: ClassVar[str] = "1"
    # How many tasks analyse_many receives at once (bounds memory when vectorised).
    chunk_size: ClassVar[int] = 1
    # What one batch job needs before anything was measured (keys of DEFAULT_RESOURCES;
    # docs/cluster.md). The config's analyses.<name> keys override them.
    resources: ClassVar[Mapping[str, float]] = {}

    @classmethod
    def resource(cls, key: str) -> float:
        return cls.resources.get(key, DEFAULT_RESOURCES[key])

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
        if type(self).analyse_many is Analysis.analyse_many:  # contract_problems says so
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


@dataclass(frozen=True)
class Declaration:
    """What an analysis declares, as plain data: enough to build its tasks and write its
    result table without importing it. A batch job's supervisor gets it from the worker
    process that imports the analysis (engine/worker.py), as JSON."""

    name: str
    version: str
    key_names: tuple[str, ...]
    # (name, significant, default) of every parameter, the product's read ones first
    parameters: tuple[tuple[str, bool, Any], ...]
    columns: tuple[Column, ...]
    chunk_size: int
    resources: Mapping[str, float]

    @classmethod
    def of(cls, analysis: type[Analysis]) -> Declaration:
        return cls(
            name=analysis.name,
            version=str(analysis.version),
            key_names=tuple(analysis.product.key_names),
            parameters=tuple(
                (p.name, p.significant, None if p.required else p.default)
                for p in analysis.all_parameters()
            ),
            columns=tuple(analysis.columns),
            chunk_size=int(analysis.chunk_size),
            resources={k: analysis.resource(k) for k in DEFAULT_RESOURCES},
        )

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["columns"] = [asdict(c) for c in self.columns]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping) -> Declaration:
        return cls(
            name=doc["name"],
            version=doc["version"],
            key_names=tuple(doc["key_names"]),
            parameters=tuple(tuple(p) for p in doc["parameters"]),
            columns=tuple(Column(**c) for c in doc["columns"]),
            chunk_size=int(doc["chunk_size"]),
            resources=dict(doc["resources"]),
        )

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.parameters)

    def insignificant_defaults(self) -> dict:
        return {name: default for name, significant, default in self.parameters if not significant}


# A batch job's needs for an analysis that declares none: memory (MB), set-up seconds,
# seconds per observation (the time limit is setup + n * per_obs), threads, GPUs.
DEFAULT_RESOURCES = {
    "mem_mb": 4000,
    "runtime_setup_s": 300,
    "runtime_per_obs_s": 10.0,
    "threads": 1,
    "gpu": 0,
}

# Columns every result table has; an analysis may not declare them.
BOOKKEEPING = ("analysis", "batch", "source", "line", "path")
TRAILING = ("flag", "flag_names", "error", "time_s", "setup_share_s")
# What a row was made from (so a status check can tell a stale row).
PROVENANCE = (
    "input_size",
    "input_mtime_ns",
    "input_checksum",
    "input_datasum",
    "model_files",
    "model_sha256",
    "analysis_version",
)
PARAMETER_TYPES = (int, float, bool, str)
ANALYSIS_NAME = re.compile(r"[A-Za-z0-9_]+")


def contract_problems(cls: type) -> list[str]:
    """What keeps ``cls`` from being a usable analysis, each with what to fix
    (empty: it follows the contract). Checked before any work starts."""
    if not (isinstance(cls, type) and issubclass(cls, Analysis)):
        return [f"{cls!r} is not a subclass of starbatch.engine.analysis.Analysis"]
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("no `name`: set the class attribute the table's analysis column names")
    elif not ANALYSIS_NAME.fullmatch(name):
        problems.append(f"name {name!r}: use letters, digits and _ only (it is part of batch IDs)")
    product = getattr(cls, "product", None)
    if not isinstance(product, DataProduct):
        problems.append(
            "no `product`: set it to the DataProduct it reads, e.g. starbatch.sdss.products.APSTAR"
        )
        return problems
    seen = set(product.key_names)
    for p in tuple(product.read_parameters) + tuple(getattr(cls, "parameters", ())):
        if not isinstance(p, Parameter):
            problems.append(f"parameters: {p!r} is not a starbatch.engine.params.Parameter")
            continue
        if p.type not in PARAMETER_TYPES:
            problems.append(
                f"parameter {p.name!r} has type {getattr(p.type, '__name__', p.type)!r}; "
                "use int, float, bool or str"
            )
        if p.name in seen:
            problems.append(f"parameter {p.name!r} is declared twice (or is an observation key)")
        elif p.type in PARAMETER_TYPES and not (
            p.required or p.default is None or isinstance(p.default, p.type)
        ):
            if not (p.type is float and isinstance(p.default, int)):
                problems.append(
                    f"parameter {p.name!r}: default {p.default!r} is not a {p.type.__name__}"
                )
        if p.name in BOOKKEEPING + TRAILING + PROVENANCE:
            problems.append(f"parameter {p.name!r} clashes with a bookkeeping column; rename it")
        seen.add(p.name)
    for c in getattr(cls, "columns", ()):
        if not isinstance(c, Column):
            problems.append(f"columns: {c!r} is not a starbatch.engine.analysis.Column")
        elif c.name in BOOKKEEPING + TRAILING + PROVENANCE or c.name in seen:
            problems.append(f"column {c.name!r} clashes with a bookkeeping column or parameter")
        else:
            try:
                np.dtype(c.dtype)
            except TypeError:
                problems.append(f"column {c.name!r}: dtype {c.dtype!r} is not a numpy dtype")
    unknown = sorted(set(getattr(cls, "resources", {})) - set(DEFAULT_RESOURCES))
    if unknown:
        problems.append(f"resources: unknown keys {unknown}; known: {sorted(DEFAULT_RESOURCES)}")
    if not isinstance(getattr(cls, "version", ""), str):
        problems.append(f"version must be a string, got {cls.version!r}")
    chunk = getattr(cls, "chunk_size", 1)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        problems.append(f"chunk_size must be an integer >= 1, got {chunk!r}")
    if cls.analyse is Analysis.analyse and cls.analyse_many is Analysis.analyse_many:
        problems.append("implements neither analyse(model, task) nor analyse_many(model, tasks)")
    return problems
