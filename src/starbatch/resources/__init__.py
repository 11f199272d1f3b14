"""Data files shipped inside the package (found the same way from a checkout and from
an installed wheel): the committed models, the apStar-grid emulator, the label prior,
four real DR17 spectra, and the files `starbatch init` and `starbatch demo` start a
project from. Each folder's README gives its provenance. Imports nothing of starbatch."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
EMULATOR = HERE / "emulator" / "apstar-cannon.npz"
PRIOR = HERE / "priors" / "dr17-rgb-labels-subsample.npz"
# Two apStar and two apVisit files of DR17, in the SAS layout.
REAL_SAS = HERE / "real" / "sas"
PROJECT = HERE / "project"
# Models trained in a project (the train_* rules) are written here, relative to the
# working directory, and take precedence over the shipped ones of the same name.
PROJECT_MODELS = Path("resources/models")


def model_path(filename: str) -> str:
    """The project's own model file if it has one, else the shipped one."""
    local = PROJECT_MODELS / filename
    return str(local) if local.exists() else str(MODELS / filename)


def project_models_state() -> str:
    """The project's own model files, by name, size and mtime: one appearing replaces
    a shipped file (model_path), so a plan must notice (engine/plan/record.py)."""
    if not PROJECT_MODELS.is_dir():
        return ""
    return ";".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in sorted(PROJECT_MODELS.iterdir())
        if p.is_file()
    )


def training_config(filename: str) -> str:
    """The project's own training config if it has one, else the shipped one."""
    return model_path(filename)
