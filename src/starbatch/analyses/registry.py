"""The registry: {analysis name: Analysis subclass}, from the built-in analyses plus
users' own, found without editing starbatch:

- ``analysis_modules`` (a config key): Python files (relative to the working directory)
  or importable module names, each defining Analysis subclasses;
- the entry-point group ``starbatch.analyses`` of installed packages: each entry point
  names an Analysis subclass or a module defining them.

Every problem (a module that fails to import, a class that breaks the contract, a name
that clashes) is reported at once, naming the module and what to fix, before any work
starts."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from starbatch.engine.analysis import Analysis, contract_problems
from starbatch.sdss import products as P

from .apogeenet import ApogeeNet
from .cannon import Cannon
from .gridfit import GridFit
from .snr import SnrEstimate
from .variants import variant, visit_variant

ENTRY_POINT_GROUP = "starbatch.analyses"
# The analyses that estimate stellar labels (each also on the other products, below).
LABEL_ANALYSES = ("gridfit", "apogeenet", "cannon")
# Suffix -> (product, how to make the variant). DR16/DR17 apStar is the base analysis.
VARIANTS = {
    "visit": (P.APVISIT, visit_variant),  # DR16/DR17 apVisit, resampled to the apStar grid
    "dr19": (P.APSTAR_DR19, variant),  # DR19 apStar (HEALPix layout)
    "visit_dr19": (P.APVISIT_DR19, visit_variant),  # DR19 apVisit
    "mwm": (P.MWMSTAR, variant),  # Astra's mwmStar: the APOGEE co-add
    "mwmvisit": (P.MWMVISIT, variant),  # Astra's mwmVisit: one rest-frame APOGEE visit
}

BUILTIN: dict[str, type[Analysis]] = {
    cls.name: cls
    for base in (GridFit, ApogeeNet, Cannon)
    for cls in (
        base,
        *(make(base, product, suffix) for suffix, (product, make) in VARIANTS.items()),
    )
}
BUILTIN[SnrEstimate.name] = SnrEstimate


def family(analysis: str) -> tuple[str, str] | None:
    """(label analysis, product suffix) of an analysis name, e.g. gridfit_mwm ->
    ("gridfit", "mwm"), cannon -> ("cannon", "apstar"); None for others (snr)."""
    for base in LABEL_ANALYSES:
        if analysis == base:
            return base, "apstar"
        suffix = analysis[len(base) + 1 :]
        if analysis.startswith(base + "_") and suffix in VARIANTS:
            return base, suffix
    return None


class RegistryError(ValueError):
    """Users' analyses that cannot be registered; the message lists each problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        text = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) with the analyses:\n{text}")


def _import(spec: str) -> ModuleType:
    """A module from a file path (ends in .py or names an existing file) or a name."""
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no such file (relative to {Path.cwd()})")
        # Named by the file's place, so two users' x.py never replace each other.
        where = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        name = f"starbatch_user.{path.stem}_{where}"
        if name in sys.modules:
            return sys.modules[name]  # listed twice: one module
        module_spec = importlib.util.spec_from_file_location(name, path.resolve())
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling-free reflection need it
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(spec)


def analyses_in(module: ModuleType) -> list[type[Analysis]]:
    """The Analysis subclasses a module defines (not those it imports); a class meant
    only as a base for others says so with ``abstract = True``."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Analysis)
        and obj.__module__ == module.__name__
        and not obj.__dict__.get("abstract", False)
    ]


def _entry_point_classes(problems: list[str]) -> list[tuple[str, type]]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP}"
        try:
            obj = ep.load()
        except Exception as exc:  # any import error of someone else's package
            problems.append(f"{where}: failed to import: {type(exc).__name__}: {exc}")
            continue
        classes = analyses_in(obj) if isinstance(obj, ModuleType) else [obj]
        if not classes:
            problems.append(f"{where}: defines no Analysis subclass")
        found += [(where, cls) for cls in classes]
    return found


def load_registry(
    modules: Iterable[str] = (), use_entry_points: bool = True
) -> dict[str, type[Analysis]]:
    """Built-in analyses plus those of ``modules`` and of the entry points."""
    problems: list[str] = []
    found: list[tuple[str, type]] = []
    for spec in modules:
        where = f"analysis_modules: {spec!r}"
        try:
            module = _import(str(spec))
        except Exception as exc:  # a user's module may raise anything on import
            problems.append(f"{where}: failed to import: {type(exc).__name__}: {exc}")
            continue
        classes = analyses_in(module)
        if not classes:
            problems.append(
                f"{where}: defines no Analysis subclass (docs/analyses.md: Your own analysis)"
            )
        found += [(where, cls) for cls in classes]
    if use_entry_points:
        found += _entry_point_classes(problems)

    registry = dict(BUILTIN)
    origin = {name: "starbatch (built in)" for name in BUILTIN}
    for where, cls in found:
        label = f"{where}, class {getattr(cls, '__name__', cls)!r}"
        broken = contract_problems(cls)
        if broken:
            problems += [f"{label}: {p}" for p in broken]
            continue
        if cls.name in registry and registry[cls.name] is not cls:
            problems.append(
                f"{label}: analysis name {cls.name!r} is already taken by {origin[cls.name]}; "
                "choose another name"
            )
            continue
        registry[cls.name] = cls
        origin[cls.name] = where
    if problems:
        raise RegistryError(problems)
    return registry
