"""The robustness benchmark: every label analysis on held-out spectra made with
perturbations training never used (offline.augment.perturbed_star: other continuum
families, line-spread widths outside the training range, RV offsets, correlated
heavy-tailed noise), per analysis and S/N, and the targets they are held to."""

from __future__ import annotations

from collections.abc import Sequence

from starbatch.analyses.registry import LABEL_ANALYSES
from starbatch.methods.emulator import Emulator

from .augment import perturbed_star
from .evaluation import accuracy

# |bias| at S/N 100, every analysis (label units).
MAX_BIAS_AT_100 = {"teff": 30.0, "logg": 0.05, "feh": 0.03}
# At S/N 50 the scatter of apogeenet within this factor of cannon's.
MAX_SCATTER_RATIO_AT_50 = 1.5


def robustness(
    emulator: Emulator, n: int, snrs: Sequence[float], seed: int, names=LABEL_ANALYSES
) -> tuple[list[dict], dict]:
    """Rows and raw estimates as evaluation.accuracy, on perturbed spectra."""
    return accuracy(emulator, n, snrs, seed, names, star=perturbed_star)


def check_targets(rows: list[dict]) -> list[dict]:
    """One row per target: what, measured, limit, ok (targets whose S/N or analyses were
    not run are left out)."""
    by = {(r["analysis"], float(r["snr"]), r["label"]): r for r in rows}
    out = []
    for (analysis, snr, label), r in sorted(by.items()):
        if snr == 100.0 and r["bias"] is not None:
            limit = MAX_BIAS_AT_100[label]
            what = f"{analysis} |bias| {label} at S/N 100"
            out.append(_target(what, abs(r["bias"]), limit))
    for label in MAX_BIAS_AT_100:
        net, cannon = by.get(("apogeenet", 50.0, label)), by.get(("cannon", 50.0, label))
        if net and cannon and cannon["scatter"] > 0:
            ratio = net["scatter"] / cannon["scatter"]
            what = f"apogeenet / cannon scatter {label} at S/N 50"
            out.append(_target(what, ratio, MAX_SCATTER_RATIO_AT_50))
    return out


def _target(what: str, measured: float, limit: float) -> dict:
    return {"target": what, "measured": round(measured, 4), "limit": limit, "ok": measured <= limit}
