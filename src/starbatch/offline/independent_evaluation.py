"""The independent evaluation: every label analysis on the apStar files that
offline.independent made (another code path, labels uniform over the declared valid
range, stars outside every model), read by the reader a batch job uses and analysed
through the analyses' own load / analyse_many, against the targets of docs/evaluation.md."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from starbatch.analyses.registry import BUILTIN, LABEL_ANALYSES
from starbatch.engine.flags import describe
from starbatch.methods.emulator import LABEL_NAMES

from .evaluation import default_params, estimates, make_tasks, run
from .stats import label_stats

IN_RANGE = ("giant", "dwarf")
# |median(estimate - truth)| over the in-range stars at S/N >= 100 (label units).
MAX_BIAS = {"teff": 50.0, "logg": 0.08, "feh": 0.05}
# Robust std of (estimate - truth) / error, every label and S/N.
PULL_RANGE = (0.7, 1.5)
# At least this share of each out-of-range kind flagged, at most this of in-range stars.
MIN_FLAGGED_OUT = 5 / 6
MAX_FLAGGED_IN = 0.02


def read_set(directory: str | Path) -> tuple[list[dict], list]:
    """(truth rows, spectra) of a set written by offline.independent, each file read by
    the apStar reader of the analyses' product."""
    directory = Path(directory)
    with open(directory / "truth.csv", newline="") as fh:
        truth = list(csv.DictReader(fh))
    product = BUILTIN["gridfit"].product
    root = directory / "sas/dr17/apogee/spectro/redux/dr17/stars/apo25m"
    spectra = [product.read(root / r["field"] / f"apStar-dr17-{r['obj']}.fits") for r in truth]
    return truth, spectra


def evaluate(directory, names: Sequence[str] = LABEL_ANALYSES) -> dict:
    """{analysis: {"truth", "kind", "snr", "values", "errors", "flag"}} over the set."""
    truth, spectra = read_set(directory)
    labels = np.array([[float(r[k]) for k in LABEL_NAMES] for r in truth])
    kinds = np.array([r["kind"] for r in truth])
    snr = np.array([float(r["snr"]) for r in truth])
    out = {}
    for name in names:
        cls = BUILTIN[name]
        params = default_params(cls)
        analysis = cls()
        results = run(analysis, analysis.load(params), make_tasks(spectra, params), cls.chunk_size)
        values, errors, flag = estimates(results)
        out[name] = {
            "truth": labels,
            "kind": kinds,
            "snr": snr,
            "values": values,
            "errors": errors,
            "flag": flag,
        }
    return out


def summarise(results: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(per analysis/S/N/label rows, per analysis/kind flag rows, target rows)."""
    rows, flag_rows, targets = [], [], []
    for name, r in results.items():
        inside = np.isin(r["kind"], IN_RANGE)
        for snr in np.unique(r["snr"]):
            sel = inside & (r["snr"] == snr)
            stats = label_stats(r["truth"][sel], r["values"][sel], r["errors"][sel])
            for label in LABEL_NAMES:
                rows.append({"analysis": name, "snr": float(snr), "label": label, **stats[label]})
                lo, hi = PULL_RANGE
                pull = stats[label]["pull"]
                what = f"{name} pull {label} at S/N {snr:g}"
                targets.append(_target(what, pull, f"{lo}-{hi}", lo <= pull <= hi))
        high = inside & (r["snr"] >= 100)
        bias = label_stats(r["truth"][high], r["values"][high])
        for label in LABEL_NAMES:
            b, limit = bias[label]["bias"], MAX_BIAS[label]
            what = f"{name} |median bias| {label} at S/N >= 100"
            targets.append(_target(what, abs(b), limit, abs(b) <= limit))
        for kind in np.unique(r["kind"]):
            sel = r["kind"] == kind
            flagged = r["flag"][sel] != 0
            names = sorted({n for f in r["flag"][sel] for n in describe(int(f)).split("; ") if n})
            flag_rows.append(
                {
                    "analysis": name,
                    "kind": kind,
                    "n": int(sel.sum()),
                    "flagged": int(flagged.sum()),
                    "flags": ", ".join(names),
                }
            )
            share = flagged.mean()
            if kind in IN_RANGE:
                what = f"{name} {kind}s (in range) flagged"
                ok = share <= MAX_FLAGGED_IN
                targets.append(_target(what, share, f"<= {MAX_FLAGGED_IN}", ok))
            else:
                what = f"{name} {kind} (out of range) flagged"
                ok = share >= MIN_FLAGGED_OUT - 1e-9
                targets.append(_target(what, share, f">= {MIN_FLAGGED_OUT:.3f}", ok))
    return rows, flag_rows, targets


def headline(results: dict) -> list[dict]:
    """The issue's table: per analysis, median bias at S/N >= 100, pull pooled over S/N,
    and hot stars flagged."""
    out = []
    for name, r in results.items():
        inside = np.isin(r["kind"], IN_RANGE)
        high = inside & (r["snr"] >= 100)
        bias = label_stats(r["truth"][high], r["values"][high])
        pooled = label_stats(r["truth"][inside], r["values"][inside], r["errors"][inside])
        hot = np.char.startswith(r["kind"].astype(str), "hot")
        out.append(
            {
                "analysis": name,
                "median bias at S/N >= 100: Teff / logg / [Fe/H]": (
                    f"{bias['teff']['bias']:+.1f} K / {bias['logg']['bias']:+.3f} / "
                    f"{bias['feh']['bias']:+.3f}"
                ),
                "pull (all S/N): Teff / logg / [Fe/H]": " / ".join(
                    f"{pooled[k]['pull']:.2f}" for k in LABEL_NAMES
                ),
                "hot stars flagged": f"{int((r['flag'][hot] != 0).sum())} of {int(hot.sum())}",
                "in-range flagged": f"{int((r['flag'][inside] != 0).sum())} of {int(inside.sum())}",
            }
        )
    return out


def _target(what: str, measured, limit, ok: bool) -> dict:
    return {"target": what, "measured": round(float(measured), 4), "limit": limit, "ok": bool(ok)}
