"""Which Snakemake targets to force so that failed observations are retried."""

from __future__ import annotations

import csv
from pathlib import Path


def _rows(path: str | Path) -> list[dict]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def rerun_targets(failed_csv: str | Path, skipped_csv: str | Path) -> list[str]:
    batches = dict.fromkeys(row["batch"] for row in _rows(failed_csv) if row.get("batch"))
    targets = [f"results/batches/{b}.fits" for b in batches]
    if _rows(skipped_csv):
        targets.insert(0, "plan")
    return targets


def count_rows(path: str | Path) -> int | None:
    """Data rows of a CSV, or None if it does not exist."""
    return len(_rows(path)) if Path(path).exists() else None
